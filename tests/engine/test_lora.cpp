// LoRA files: the accepted key formats load to the same adapter, alpha scales it, and the
// unmerged per-row application equals the merged weight W + w*(alpha/r)*B·A for the rows
// that use it while leaving other rows untouched. Unsupported formats are named.
#include "engine/models/lora.h"
#include "golden.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

const std::string kLora = "variants/flux.1-fill-dev-object-removal-lora/pytorch_lora_weights.safetensors";

models::FluxTransformer golden_transformer() {
  auto cfg = models::FluxTransformerConfig::from_json_file(golden_path("pipeline/transformer/config.json"));
  models::FluxTransformer m(cfg);
  load_module_strict(*m, WeightStore::open_dir(golden_path("pipeline/transformer")), LoadOptions{});
  return m;
}

// Rewrites the golden (diffusers-format) LoRA with another key naming.
std::string rewrite(const TempDir& tmp, const std::string& prefix, const std::string& down, const std::string& up,
                    double alpha) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, v] : load_tensors(golden_path(kLora))) {
    std::string m = k.substr(std::string("transformer.").size());
    const bool is_down = m.find(".lora_A.weight") != std::string::npos;
    m = m.substr(0, m.rfind(".lora_"));
    out[prefix + m + (is_down ? down : up)] = v;
    if (alpha > 0) out[prefix + m + ".alpha"] = torch::tensor(alpha);
  }
  const std::string path = tmp.file("lora.safetensors");
  save_tensors(path, out);
  return path;
}

}  // namespace

TEST(Lora, KeyFormatsLoadTheSameAdapter) {
  TempDir tmp;
  auto ref = models::load_lora("a", golden_path(kLora));
  EXPECT_EQ(ref.rank, 4);
  for (const auto& [prefix, down, up] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"base_model.model.", ".lora_A.weight", ".lora_B.weight"},
           {"", ".lora_A.weight", ".lora_B.weight"},
           {"transformer.", ".lora_down.weight", ".lora_up.weight"}}) {
    auto a = models::load_lora("b", rewrite(tmp, prefix, down, up, 0));
    ASSERT_EQ(a.modules.size(), ref.modules.size()) << prefix << down;
    for (const auto& [m, w] : ref.modules) {
      EXPECT_TRUE(a.modules.at(m).down.equal(w.down)) << m;
      EXPECT_TRUE(a.modules.at(m).up.equal(w.up)) << m;
      EXPECT_EQ(a.modules.at(m).scale, 1.0);
    }
  }
  auto scaled = models::load_lora("c", rewrite(tmp, "transformer.", ".lora_A.weight", ".lora_B.weight", 8.0));
  EXPECT_DOUBLE_EQ(scaled.modules.begin()->second.scale, 8.0 / 4.0);  // alpha / r
}

TEST(Lora, UnsupportedFormatsAreNamed) {
  TempDir tmp;
  save_tensors(tmp.file("k.safetensors"), {{"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", torch::ones({4, 8})}});
  try {
    models::load_lora("k", tmp.file("k.safetensors"));
    FAIL();
  } catch (const onereward::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lora_unet_double_blocks_0_img_attn_qkv"), std::string::npos) << e.what();
  }
  save_tensors(tmp.file("m.safetensors"), {{"transformer.no_such_layer.lora_A.weight", torch::ones({4, 8})},
                                           {"transformer.no_such_layer.lora_B.weight", torch::ones({8, 4})}});
  auto m = golden_transformer();
  try {
    models::attach_lora(*m, models::load_lora("m", tmp.file("m.safetensors")), 0);
    FAIL();
  } catch (const onereward::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_layer"), std::string::npos) << e.what();
  }
}

TEST(Lora, UnmergedPerRowEqualsMergedWeights) {
  torch::NoGradGuard ng;
  GoldenCase c("component_transformer");
  models::FluxInputs in;
  in.hidden_states = c.t("hidden_states");
  in.encoder_hidden_states = c.t("encoder_hidden_states");
  in.pooled_projections = c.t("pooled_projections");
  in.timestep = c.t("timestep");
  in.guidance = c.t("guidance");
  in.img_ids = c.t("img_ids");
  in.txt_ids = c.t("txt_ids");
  auto adapter = models::load_lora("removal", golden_path(kLora));

  auto unmerged = golden_transformer();
  models::attach_lora(*unmerged, adapter, 0);
  models::ForwardContext ctx;
  ctx.adapter_rows = {torch::tensor({0.0f, 0.7f})};  // row 0 without, row 1 with weight 0.7
  in.ctx = &ctx;
  torch::Tensor mixed = unmerged->forward(in);

  auto base = golden_transformer();
  in.ctx = nullptr;
  torch::Tensor plain = base->forward(in);
  auto merged = golden_transformer();
  models::for_each_linear(*merged, [&](const std::string& path, models::LinearImpl& l) {
    auto it = adapter.modules.find(path);
    if (it != adapter.modules.end()) l.weight.add_(torch::mm(it->second.up, it->second.down) * (0.7 * it->second.scale));
  });
  torch::Tensor with = merged->forward(in);
  EXPECT_TENSOR_NEAR(mixed[0], plain[0], 1e-6);
  EXPECT_TENSOR_NEAR(mixed[1], with[1], 1e-5);
  EXPECT_GT(max_abs_diff(with[1], plain[1]), 1e-3) << "the adapter must change the output";
}
