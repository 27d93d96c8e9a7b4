// T5 encoder: golden parity with transformers' T5EncoderModel fed the stored ids
// (component_t5), relative position buckets, config resolution, strict loading with the
// tied embedding, reduced precision.
#include <set>

#include "engine/models/layers.h"
#include "engine/models/t5_encoder.h"
#include "tests/encoders/encoder_test_util.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

const std::string kT5Dir = "pipeline/text_encoder_2";

models::T5EncoderModel golden_t5(torch::ScalarType dtype = torch::kFloat32) {
  return models::load_t5_encoder(golden_path(kT5Dir), TensorPlacement{torch::kCPU, dtype});
}

models::T5EncoderConfig config_from(const nlohmann::json& j) {
  ScratchDir dir("t5_cfg");
  std::ofstream(dir.path() + "/config.json") << j.dump();
  return models::T5EncoderConfig::from_json_file(dir.path() + "/config.json");
}

}  // namespace

TEST(T5Encoder, ConfigIsReadFromJson) {
  auto c = models::T5EncoderConfig::from_json_file(golden_path(kT5Dir + "/config.json"));
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.d_kv, 8);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.d_ff, 64);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.relative_attention_num_buckets, 32);
  EXPECT_EQ(c.relative_attention_max_distance, 128);
  EXPECT_TRUE(c.is_gated_act);
  EXPECT_EQ(c.act, models::T5Activation::kGeluTanh);  // explicit dense_act_fn wins over "gated-gelu"
}

TEST(T5Encoder, FeedForwardProjResolvesLikeT5Config) {
  nlohmann::json j = {{"d_model", 8}, {"d_kv", 4}, {"num_heads", 2}, {"d_ff", 16}, {"num_layers", 1}};
  j["feed_forward_proj"] = "gated-gelu";  // backwards-compatibility rule: gelu_new
  auto c = config_from(j);
  EXPECT_TRUE(c.is_gated_act);
  EXPECT_EQ(c.act, models::T5Activation::kGeluNew);
  j["feed_forward_proj"] = "relu";
  c = config_from(j);
  EXPECT_FALSE(c.is_gated_act);
  EXPECT_EQ(c.act, models::T5Activation::kRelu);
  j["feed_forward_proj"] = "gated-silu";
  c = config_from(j);
  EXPECT_TRUE(c.is_gated_act);
  EXPECT_EQ(c.act, models::T5Activation::kSilu);
  j["feed_forward_proj"] = "fancy-gelu";
  auto [code, msg] = error_of([&] { config_from(j); });
  EXPECT_EQ(code, StatusCode::kDataLoss);
  EXPECT_NE(msg.find("feed_forward_proj"), std::string::npos) << msg;
  j["feed_forward_proj"] = "gated-gelu";
  j["dense_act_fn"] = "tanhshrink";
  std::tie(code, msg) = error_of([&] { config_from(j); });
  EXPECT_NE(msg.find("dense_act_fn"), std::string::npos) << msg;
}

TEST(T5Encoder, NonGatedFeedForwardUsesWi) {
  models::T5EncoderConfig c;
  c.d_model = 8, c.d_kv = 4, c.num_heads = 2, c.d_ff = 16, c.num_layers = 2, c.vocab_size = 10;
  models::T5EncoderModel m(c);
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  EXPECT_TRUE(names.count("encoder.block.1.layer.1.DenseReluDense.wi.weight"));
  EXPECT_FALSE(names.count("encoder.block.1.layer.1.DenseReluDense.wi_0.weight"));
  EXPECT_TRUE(names.count("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
  EXPECT_FALSE(names.count("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"));
  models::randomize_parameters(*m, 3);
  torch::NoGradGuard ng;
  auto out = m->forward(torch::tensor({{1, 2, 3, 0}}, torch::kLong));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 8}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
}

TEST(T5Encoder, RelativePositionBuckets) {
  // Bidirectional, 32 buckets, max_distance 128: 16 buckets per direction, offsets < 8 exact,
  // then 8 + floor(log(|d| / 8) / log(16) * 8) capped at 15; positive offsets add 16.
  const std::vector<int64_t> d = {0, 1, -1, 7, -7, 8, -8, 11, -12, 16, -16, 31, -32, 64, -127, -128, 1000, -1000};
  const std::vector<int64_t> want = {0, 17, 1, 23, 7, 24, 8, 24, 9, 26, 10, 27, 12, 30, 15, 15, 31, 15};
  torch::Tensor got = models::t5_relative_position_bucket(torch::tensor(d, torch::kLong), true, 32, 128);
  for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(got[i].item<int64_t>(), want[i]) << "offset " << d[i];
  // Unidirectional (decoder) form: only non-positive offsets count, 32 buckets.
  torch::Tensor uni =
      models::t5_relative_position_bucket(torch::tensor({5, 0, -3, -16, -20, -200}, torch::kLong), false, 32, 128);
  const std::vector<int64_t> want_uni = {0, 0, 3, 16, 17, 31};
  for (size_t i = 0; i < want_uni.size(); ++i) EXPECT_EQ(uni[i].item<int64_t>(), want_uni[i]) << i;
}

TEST(T5Encoder, MatchesReferenceFromStoredIds) {
  torch::NoGradGuard ng;
  GoldenCase c("component_t5");
  auto out = golden_t5()->forward(c.t("input_ids"));
  EXPECT_TENSOR_NEAR(out, c.t("prompt_embeds"), c.tol("prompt_embeds"));
}

TEST(T5Encoder, RowsAreIndependent) {
  torch::NoGradGuard ng;
  GoldenCase c("component_t5");
  auto model = golden_t5();
  auto all = model->forward(c.t("input_ids"));
  for (int64_t r : {0, 3}) {
    EXPECT_TENSOR_NEAR(model->forward(c.t("input_ids").narrow(0, r, 1)), all.narrow(0, r, 1), 1e-5);
  }
}

TEST(T5Encoder, EveryCheckpointKeyIsConsumed) {
  models::T5EncoderModel model(models::T5EncoderConfig::from_json_file(golden_path(kT5Dir + "/config.json")));
  auto weights = WeightStore::open_dir(golden_path(kT5Dir));
  std::set<std::string> params, keys;
  for (const auto& p : model->named_parameters()) params.insert(p.key());
  for (const auto& k : weights.keys()) keys.insert(k);
  EXPECT_EQ(params, keys);  // encoder.embed_tokens is tied to shared: neither side has it
  EXPECT_TRUE(keys.count("shared.weight"));
  EXPECT_FALSE(keys.count("encoder.embed_tokens.weight"));
}

TEST(T5Encoder, TiedAndDecoderKeysAreToleratedOthersAreNot) {
  torch::NoGradGuard ng;
  auto tensors = golden_tensors("text_encoder_2");
  const auto config = golden_config("text_encoder_2");
  GoldenCase c("component_t5");
  auto ids = c.t("input_ids").narrow(0, 3, 2);
  auto expected = c.t("prompt_embeds").narrow(0, 3, 2);
  const double tol = c.tol("prompt_embeds");
  {
    // Both copies of the tied embedding plus decoder / lm_head keys (a full T5 checkpoint).
    ScratchDir dir("t5_full");
    auto full = tensors;
    full["encoder.embed_tokens.weight"] = tensors.at("shared.weight");
    full["decoder.final_layer_norm.weight"] = torch::ones({32});
    full["lm_head.weight"] = torch::zeros({32128, 32});
    write_component(dir.path(), config, full);
    EXPECT_TENSOR_NEAR(models::load_t5_encoder(dir.path(), {})->forward(ids), expected, tol);
  }
  {
    // Only the encoder's copy stored: used as `shared`.
    ScratchDir dir("t5_embed_only");
    auto only = tensors;
    only["encoder.embed_tokens.weight"] = only.at("shared.weight");
    only.erase("shared.weight");
    write_component(dir.path(), config, only);
    EXPECT_TENSOR_NEAR(models::load_t5_encoder(dir.path(), {})->forward(ids), expected, tol);
  }
  {
    ScratchDir dir("t5_bias_everywhere");
    auto extra = tensors;
    extra["encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"] = torch::zeros({32, 4});
    write_component(dir.path(), config, extra);
    auto [code, msg] = error_of([&] { models::load_t5_encoder(dir.path(), {}); });
    EXPECT_EQ(code, StatusCode::kDataLoss);
    EXPECT_NE(msg.find("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"), std::string::npos)
        << msg;
  }
  {
    ScratchDir dir("t5_missing");
    auto missing = tensors;
    missing.erase("encoder.block.1.layer.1.DenseReluDense.wi_1.weight");
    write_component(dir.path(), config, missing);
    auto [code, msg] = error_of([&] { models::load_t5_encoder(dir.path(), {}); });
    EXPECT_EQ(code, StatusCode::kDataLoss);
    EXPECT_NE(msg.find("encoder.block.1.layer.1.DenseReluDense.wi_1.weight"), std::string::npos) << msg;
  }
}

TEST(T5Encoder, RejectsBadIds) {
  torch::NoGradGuard ng;
  auto model = golden_t5();
  EXPECT_EQ(error_of([&] {
              model->forward(torch::full({1, 8}, 32128, torch::kLong));
            }).first,
            StatusCode::kInvalidArgument);
  EXPECT_EQ(error_of([&] {
              model->forward(torch::full({1, 8}, -1, torch::kLong));
            }).first,
            StatusCode::kInvalidArgument);
}

// bf16 weights and activations against fp32. Tolerance: 3e-2 x max(1, max|ref|): the
// outputs are final-RMS-normed (magnitude ~1-4) and bf16 keeps 8 significant bits.
TEST(T5Encoder, Bf16StaysCloseToFp32) {
  torch::NoGradGuard ng;
  GoldenCase c("component_t5");
  auto ids = c.t("input_ids");
  auto ref = golden_t5()->forward(ids);
  auto out = golden_t5(torch::kBFloat16)->forward(ids);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  const double scale = std::max(1.0, ref.abs().max().item<double>());
  EXPECT_TENSOR_NEAR(out.to(torch::kFloat32), ref, 3e-2 * scale);
}

// fp16: transformers keeps `wo` in fp32 (T5's _keep_in_fp32_modules), so the residual
// stream turns fp32 after the first feed-forward; the output follows the final norm's
// fp16 weight.
TEST(T5Encoder, Fp16KeepsWoInFp32) {
  torch::NoGradGuard ng;
  GoldenCase c("component_t5");
  auto model = golden_t5(torch::kHalf);
  for (const auto& p : model->named_parameters()) {
    const bool wo = p.key().find("DenseReluDense.wo") != std::string::npos;
    EXPECT_EQ(p.value().scalar_type(), wo ? torch::kFloat32 : torch::kHalf) << p.key();
  }
  // The fp16 forward itself needs float16 matmuls, which libtorch 1.13 lacks on CPU; the
  // placement check above is what this machine can verify.
}

TEST(T5Encoder, ConfigRoundTripsThroughJson) {
  auto c = models::T5EncoderConfig::from_json_file(golden_path(kT5Dir + "/config.json"));
  auto d = config_from(c.to_json());
  EXPECT_EQ(d.d_model, c.d_model);
  EXPECT_EQ(d.act, c.act);
  EXPECT_EQ(d.is_gated_act, c.is_gated_act);
  EXPECT_EQ(d.relative_attention_max_distance, c.relative_attention_max_distance);
}

TEST(T5Encoder, PositionBiasIsKeptPerLengthAndFollowsReloads) {
  torch::NoGradGuard ng;
  auto model = golden_t5();
  torch::Tensor b16 = model->position_bias(16);
  EXPECT_EQ(b16.sizes(), (std::vector<int64_t>{1, 4, 16, 16}));
  EXPECT_TRUE(model->position_bias(16).is_same(b16));
  EXPECT_EQ(model->position_bias(8).size(2), 8);
  // bias[h, i, j] = table[bucket(j - i), h]
  auto table =
      golden_tensors("text_encoder_2").at("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  EXPECT_EQ(b16[0][2][3][4].item<float>(), table[17][2].item<float>());  // offset +1
  EXPECT_EQ(b16[0][1][5][0].item<float>(), table[5][1].item<float>());   // offset -5
  // Reloading other weights into the same module recomputes it.
  auto tensors = golden_tensors("text_encoder_2");
  tensors["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].zero_();
  ScratchDir dir("t5_zero_bias");
  write_component(dir.path(), golden_config("text_encoder_2"), tensors);
  load_module_strict(*model, WeightStore::open_dir(dir.path()), LoadOptions{});
  EXPECT_EQ(model->position_bias(16).abs().max().item<float>(), 0.0f);
}
