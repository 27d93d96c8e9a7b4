// CLIP text encoder: golden parity with transformers' CLIPTextModel fed the stored ids
// (component_clip), strict loading, the pooled-token rule, reduced precision.
#include <set>

#include "engine/models/clip_text.h"
#include "engine/models/layers.h"
#include "tests/encoders/encoder_test_util.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

const std::string kClipDir = "pipeline/text_encoder";

models::ClipTextModel golden_clip(torch::ScalarType dtype = torch::kFloat32) {
  return models::load_clip_text_model(golden_path(kClipDir), TensorPlacement{torch::kCPU, dtype});
}

}  // namespace

TEST(ClipText, ConfigIsReadFromJson) {
  auto c = models::ClipTextConfig::from_json_file(golden_path(kClipDir + "/config.json"));
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 2);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.max_position_embeddings, 77);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(c.hidden_act, models::ClipActivation::kQuickGelu);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
}

TEST(ClipText, MatchesReferenceFromStoredIds) {
  torch::NoGradGuard ng;
  GoldenCase c("component_clip");
  auto out = golden_clip()->forward(c.t("input_ids"));
  EXPECT_TENSOR_NEAR(out.last_hidden_state, c.t("last_hidden_state"), c.tol("last_hidden_state"));
  EXPECT_TENSOR_NEAR(out.pooled, c.t("pooler_output"), c.tol("pooler_output"));
}

TEST(ClipText, RowsAreIndependent) {
  torch::NoGradGuard ng;
  GoldenCase c("component_clip");
  auto model = golden_clip();
  auto all = model->forward(c.t("input_ids"));
  for (int64_t r : {0, 3, 7}) {
    auto one = model->forward(c.t("input_ids").narrow(0, r, 1));
    EXPECT_TENSOR_NEAR(one.pooled, all.pooled.narrow(0, r, 1), 1e-5);
  }
}

TEST(ClipText, EveryCheckpointKeyIsConsumed) {
  auto model = models::ClipTextModel(models::ClipTextConfig::from_json_file(golden_path(kClipDir + "/config.json")));
  auto weights = WeightStore::open_dir(golden_path(kClipDir));
  std::set<std::string> params, keys;
  for (const auto& p : model->named_parameters()) params.insert(p.key());
  for (const auto& b : model->named_buffers()) params.insert(b.key());
  for (const auto& k : weights.keys()) keys.insert(k);
  EXPECT_EQ(params, keys);
  EXPECT_TRUE(params.count("text_model.encoder.layers.1.self_attn.out_proj.bias"));
  EXPECT_TRUE(params.count("text_model.final_layer_norm.weight"));
}

TEST(ClipText, LegacyPositionIdsAreIgnoredOtherKeysAreNot) {
  torch::NoGradGuard ng;
  auto tensors = golden_tensors("text_encoder");
  const auto config = golden_config("text_encoder");
  GoldenCase c("component_clip");
  {
    // Older transformers saved the position_ids buffer.
    ScratchDir dir("clip_posids");
    auto with_ids = tensors;
    with_ids["text_model.embeddings.position_ids"] = torch::arange(77, torch::kLong).unsqueeze(0);
    write_component(dir.path(), config, with_ids);
    auto model = models::load_clip_text_model(dir.path(), {});
    EXPECT_TENSOR_NEAR(model->forward(c.t("input_ids")).pooled, c.t("pooler_output"), c.tol("pooler_output"));
  }
  {
    ScratchDir dir("clip_extra");
    auto extra = tensors;
    extra["text_projection.weight"] = torch::zeros({32, 32});
    write_component(dir.path(), config, extra);
    auto [code, msg] = error_of([&] { models::load_clip_text_model(dir.path(), {}); });
    EXPECT_EQ(code, StatusCode::kDataLoss);
    EXPECT_NE(msg.find("text_projection.weight"), std::string::npos) << msg;
  }
  {
    ScratchDir dir("clip_missing");
    auto missing = tensors;
    missing.erase("text_model.encoder.layers.1.mlp.fc2.bias");
    write_component(dir.path(), config, missing);
    auto [code, msg] = error_of([&] { models::load_clip_text_model(dir.path(), {}); });
    EXPECT_EQ(code, StatusCode::kDataLoss);
    EXPECT_NE(msg.find("text_model.encoder.layers.1.mlp.fc2.bias"), std::string::npos) << msg;
  }
}

TEST(ClipText, PooledTokenFollowsEosTokenId) {
  // transformers: eos_token_id == 2 (legacy, FLUX) -> argmax(input_ids); otherwise the first
  // position equal to eos_token_id (0 when absent).
  torch::NoGradGuard ng;
  models::ClipTextConfig cfg;
  cfg.vocab_size = 100;
  cfg.hidden_size = 16;
  cfg.intermediate_size = 32;
  cfg.num_hidden_layers = 1;
  cfg.num_attention_heads = 2;
  cfg.max_position_embeddings = 8;
  torch::Tensor ids =
      torch::tensor({5, 7, 99, 3, 99, 99, 99, 99, 1, 42, 7, 99, 99, 99, 99, 99}, torch::kLong).view({2, 8});
  struct Case {
    int64_t eos;
    std::vector<int64_t> pos;
  };
  for (const Case& k : {Case{2, {2, 3}}, Case{7, {1, 2}}, Case{99, {2, 3}}, Case{50, {0, 0}}}) {
    cfg.eos_token_id = k.eos;
    models::ClipTextModel model(cfg);
    models::randomize_parameters(*model, 7);
    auto out = model->forward(ids);
    for (int64_t b = 0; b < 2; ++b) {
      EXPECT_TRUE(torch::equal(out.pooled[b], out.last_hidden_state[b][k.pos[b]]))
          << "eos_token_id " << k.eos << " row " << b;
    }
  }
}

TEST(ClipText, ActivationsAndConfigErrors) {
  ScratchDir dir("clip_cfg");
  auto config = golden_config("text_encoder");
  config["hidden_act"] = "gelu";
  std::ofstream(dir.path() + "/config.json") << config.dump();
  EXPECT_EQ(models::ClipTextConfig::from_json_file(dir.path() + "/config.json").hidden_act,
            models::ClipActivation::kGelu);
  config["hidden_act"] = "mish";
  std::ofstream(dir.path() + "/config.json") << config.dump();
  auto [code, msg] = error_of([&] { models::ClipTextConfig::from_json_file(dir.path() + "/config.json"); });
  EXPECT_EQ(code, StatusCode::kDataLoss);
  EXPECT_NE(msg.find("hidden_act"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  config["hidden_act"] = "quick_gelu";
  config["num_attention_heads"] = 3;
  std::ofstream(dir.path() + "/config.json") << config.dump();
  std::tie(code, msg) = error_of([&] { models::ClipTextConfig::from_json_file(dir.path() + "/config.json"); });
  EXPECT_NE(msg.find("num_attention_heads"), std::string::npos) << msg;
}

TEST(ClipText, ConfigRoundTripsThroughJson) {
  auto c = models::ClipTextConfig::from_json_file(golden_path(kClipDir + "/config.json"));
  ScratchDir dir("clip_rt");
  std::ofstream(dir.path() + "/config.json") << c.to_json().dump();
  auto d = models::ClipTextConfig::from_json_file(dir.path() + "/config.json");
  EXPECT_EQ(d.hidden_size, c.hidden_size);
  EXPECT_EQ(d.eos_token_id, c.eos_token_id);
  EXPECT_EQ(d.hidden_act_name, c.hidden_act_name);
  EXPECT_EQ(d.num_hidden_layers, c.num_hidden_layers);
}

TEST(ClipText, RejectsBadIds) {
  torch::NoGradGuard ng;
  auto model = golden_clip();
  auto bad = torch::full({1, 77}, 49408, torch::kLong);
  EXPECT_EQ(error_of([&] { model->forward(bad); }).first, StatusCode::kInvalidArgument);
  auto too_long = torch::zeros({1, 78}, torch::kLong);
  EXPECT_EQ(error_of([&] { model->forward(too_long); }).first, StatusCode::kInvalidArgument);
  auto as_float = torch::zeros({1, 77});
  EXPECT_EQ(error_of([&] { model->forward(as_float); }).first, StatusCode::kInvalidArgument);
}

// bf16 weights and activations against the fp32 model. Tolerance: 3e-2 absolute on
// outputs of magnitude <= ~4 (a few bf16 ulps: bf16 keeps 8 significant bits, ~0.4 %).
TEST(ClipText, Bf16StaysCloseToFp32) {
  torch::NoGradGuard ng;
  GoldenCase c("component_clip");
  auto ref = golden_clip()->forward(c.t("input_ids"));
  auto out = golden_clip(torch::kBFloat16)->forward(c.t("input_ids"));
  EXPECT_EQ(out.pooled.scalar_type(), torch::kBFloat16);
  const double scale = std::max(1.0, ref.last_hidden_state.abs().max().item<double>());
  EXPECT_TENSOR_NEAR(out.pooled.to(torch::kFloat32), ref.pooled, 3e-2 * scale);
  EXPECT_TENSOR_NEAR(out.last_hidden_state.to(torch::kFloat32), ref.last_hidden_state, 3e-2 * scale);
}
