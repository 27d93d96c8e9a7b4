// Golden parity of the FLUX transformer against diffusers (component_transformer case),
// and strict loading: every checkpoint key is consumed by a module.
#include <set>

#include "engine/models/flux_transformer.h"
#include "golden.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

models::FluxTransformer load_golden_transformer(const std::string& rel = "pipeline/transformer") {
  auto cfg = models::FluxTransformerConfig::from_json_file(golden_path(rel + "/config.json"));
  models::FluxTransformer model(cfg);
  auto weights = WeightStore::open_dir(golden_path(rel));
  load_module_strict(*model, weights, LoadOptions{});
  return model;
}

// The stored inputs of the component_transformer case.
models::FluxInputs golden_inputs(const GoldenCase& c) {
  models::FluxInputs in;
  in.hidden_states = c.t("hidden_states");
  in.encoder_hidden_states = c.t("encoder_hidden_states");
  in.pooled_projections = c.t("pooled_projections");
  in.timestep = c.t("timestep");
  in.guidance = c.t("guidance");
  in.img_ids = c.t("img_ids");
  in.txt_ids = c.t("txt_ids");
  return in;
}

}  // namespace

TEST(FluxTransformer, MatchesReferenceOutput) {
  torch::NoGradGuard ng;
  auto model = load_golden_transformer();
  GoldenCase c("component_transformer");
  models::FluxInputs in = golden_inputs(c);
  torch::Tensor out = model->forward(in);
  EXPECT_TENSOR_NEAR(out, c.t("output"), c.tol("output"));
}

TEST(FluxTransformer, RowsAreIndependent) {
  // Per-row timesteps/guidance: running rows separately equals running them batched.
  torch::NoGradGuard ng;
  auto model = load_golden_transformer();
  GoldenCase c("component_transformer");
  models::FluxInputs in = golden_inputs(c);
  torch::Tensor both = model->forward(in);
  for (int64_t r = 0; r < 2; ++r) {
    models::FluxInputs one = in;
    one.hidden_states = in.hidden_states.narrow(0, r, 1);
    one.encoder_hidden_states = in.encoder_hidden_states.narrow(0, r, 1);
    one.pooled_projections = in.pooled_projections.narrow(0, r, 1);
    one.timestep = in.timestep.narrow(0, r, 1);
    one.guidance = in.guidance.narrow(0, r, 1);
    EXPECT_TENSOR_NEAR(model->forward(one), both.narrow(0, r, 1), 1e-5);
  }
}

TEST(FluxTransformer, EveryCheckpointKeyIsConsumed) {
  auto cfg = models::FluxTransformerConfig::from_json_file(golden_path("pipeline/transformer/config.json"));
  models::FluxTransformer model(cfg);
  auto weights = WeightStore::open_dir(golden_path("pipeline/transformer"));
  std::set<std::string> params;
  for (const auto& p : model->named_parameters()) params.insert(p.key());
  std::set<std::string> keys;
  for (const auto& k : weights.keys()) keys.insert(k);
  EXPECT_EQ(params, keys);
  EXPECT_EQ(weights.files().size(), 2u) << "the golden transformer is sharded into two files";
}

TEST(FluxTransformer, MissingAndUnexpectedKeysAreNamed) {
  auto cfg = models::FluxTransformerConfig::from_json_file(golden_path("pipeline/transformer/config.json"));
  auto weights = WeightStore::open_dir(golden_path("pipeline/transformer"));
  {
    auto more = cfg;
    more.num_single_layers += 1;
    models::FluxTransformer model(more);
    try {
      load_module_strict(*model, weights, LoadOptions{});
      FAIL() << "expected a missing-key error";
    } catch (const onereward::Error& e) {
      EXPECT_NE(std::string(e.what()).find("missing key 'single_transformer_blocks." +
                                           std::to_string(cfg.num_single_layers)),
                std::string::npos)
          << e.what();
    }
  }
  {
    auto fewer = cfg;
    fewer.num_layers -= 1;
    models::FluxTransformer model(fewer);
    try {
      load_module_strict(*model, weights, LoadOptions{});
      FAIL() << "expected an unexpected-key error";
    } catch (const onereward::Error& e) {
      EXPECT_NE(std::string(e.what()).find("unexpected key 'transformer_blocks." + std::to_string(fewer.num_layers)),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(FluxTransformer, VariantsShareTheArchitecture) {
  for (const char* rel : {"variants/flux.1-fill-dev-OneReward-transformer",
                          "variants/flux.1-fill-dev-OneRewardDynamic-transformer"}) {
    EXPECT_NO_THROW(load_golden_transformer(rel)) << rel;
  }
}

TEST(FluxTransformer, Bfloat16StaysCloseToFloat32) {
  torch::NoGradGuard ng;
  auto cfg = models::FluxTransformerConfig::from_json_file(golden_path("pipeline/transformer/config.json"));
  models::FluxTransformer model(cfg);
  auto weights = WeightStore::open_dir(golden_path("pipeline/transformer"));
  LoadOptions opts;
  opts.placement.dtype = torch::kBFloat16;
  load_module_strict(*model, weights, opts);
  GoldenCase c("component_transformer");
  models::FluxInputs in = golden_inputs(c);
  torch::Tensor out = model->forward(in).to(torch::kFloat32);
  EXPECT_EQ(model->forward(in).scalar_type(), torch::kBFloat16);
  // bf16 has 8 mantissa bits: relative error ~1e-2 of the output scale.
  const double scale = c.t("output").abs().max().item<double>();
  EXPECT_TENSOR_NEAR(out, c.t("output"), 0.05 * scale);
}
