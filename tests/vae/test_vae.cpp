// AutoencoderKL: golden parity with diffusers (component_vae), strict loading, bf16 vs fp32,
// slicing/tiling options, and configs of other sizes.
#include <set>

#include "engine/models/layers.h"
#include "engine/models/vae.h"
#include "engine/util/status.h"
#include "tests/vae/vae_test_util.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

std::set<std::string> param_names(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters()) out.insert(p.key());
  return out;
}

// A deliberately different shape: 3 blocks (scale 4), 4 groups, 2 resnets per down block,
// quant convs on, no mid attention, null shift, 4 latent channels.
const char* kOtherConfig = R"({
  "_class_name": "AutoencoderKL",
  "act_fn": "silu",
  "block_out_channels": [8, 16, 24],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "in_channels": 3, "out_channels": 3, "latent_channels": 4,
  "layers_per_block": 2, "norm_num_groups": 4,
  "scaling_factor": 0.5, "shift_factor": null,
  "use_quant_conv": true, "use_post_quant_conv": true,
  "mid_block_add_attention": false, "sample_size": 64
})";

std::string with_field(const std::string& field, const std::string& value) {
  auto j = nlohmann::json::parse(kOtherConfig);
  j[field] = nlohmann::json::parse(value);
  return j.dump();
}

}  // namespace

TEST(VaeConfig, ReadsGoldenConfig) {
  auto c = models::VaeConfig::from_json_file(golden_path("pipeline/vae/config.json"));
  EXPECT_EQ(c.block_out_channels, (std::vector<int64_t>{16, 32, 32, 64}));
  EXPECT_EQ(c.vae_scale_factor(), 8);
  EXPECT_EQ(c.latent_channels, 16);
  EXPECT_EQ(c.norm_num_groups, 8);
  EXPECT_EQ(c.layers_per_block, 1);
  EXPECT_DOUBLE_EQ(c.scaling_factor, 0.3611);
  EXPECT_DOUBLE_EQ(c.shift_factor, 0.1159);
  EXPECT_FALSE(c.use_quant_conv);
  EXPECT_FALSE(c.use_post_quant_conv);
  EXPECT_TRUE(c.mid_block_add_attention);
  EXPECT_TRUE(c.force_upcast);
  EXPECT_EQ(c.sample_size, 1024);
}

TEST(VaeConfig, NullShiftReadsAsZero) {
  TempFile f(kOtherConfig);
  auto c = models::VaeConfig::from_json_file(f.path());
  EXPECT_EQ(c.shift_factor, 0.0);
  EXPECT_EQ(c.vae_scale_factor(), 4);
}

TEST(VaeConfig, UnsupportedValuesNameTheField) {
  struct Case {
    std::string field, value;
  };
  const std::vector<Case> cases = {
      {"down_block_types", R"(["DownEncoderBlock2D", "AttnDownEncoderBlock2D", "DownEncoderBlock2D"])"},
      {"up_block_types", R"(["UpDecoderBlock2D", "UpDecoderBlock2D", "UpBlock2D"])"},
      {"act_fn", R"("tanh")"},
      {"norm_num_groups", "5"},  // does not divide 8
      {"block_out_channels", "[8, 16]"},  // block type lists no longer match
  };
  for (const auto& c : cases) {
    TempFile f(with_field(c.field, c.value));
    try {
      models::VaeConfig::from_json_file(f.path());
      ADD_FAILURE() << c.field << " = " << c.value << " was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(f.path()), std::string::npos) << msg;
      // block_out_channels [8, 16] is reported on the block type list it no longer matches.
      const std::string expect_field = c.field == "block_out_channels" ? "down_block_types" : c.field;
      EXPECT_NE(msg.find(expect_field), std::string::npos) << msg;
    }
  }
}

TEST(Vae, MatchesReference) {
  auto vae = load_golden_vae();
  GoldenCase c("component_vae");
  auto post = vae->encode(c.t("image"));
  EXPECT_TENSOR_NEAR(post.mean, c.t("latent_mean"), c.tol("latent_mean"));
  EXPECT_TENSOR_NEAR(post.std, c.t("latent_std"), c.tol("latent_std"));
  EXPECT_TENSOR_NEAR(post.logvar, c.t("latent_logvar"), c.tol("latent_logvar"));
  torch::Tensor decoded = vae->decode(c.t("decode_input"));
  EXPECT_TENSOR_NEAR(decoded, c.t("decoded"), c.tol("decoded"));
  EXPECT_EQ(decoded.scalar_type(), torch::kFloat32);
}

TEST(Vae, EveryCheckpointKeyIsConsumed) {
  auto cfg = models::VaeConfig::from_json_file(golden_path("pipeline/vae/config.json"));
  models::AutoencoderKL vae(cfg);
  auto weights = WeightStore::open_dir(golden_path("pipeline/vae"));
  const auto key_list = weights.keys();
  std::set<std::string> keys(key_list.begin(), key_list.end());
  EXPECT_EQ(param_names(*vae), keys);
  EXPECT_TRUE(vae->named_buffers().is_empty());
}

TEST(Vae, MissingKeyIsNamed) {
  // A config that wants quant convs cannot load the golden (quant-conv-free) checkpoint.
  auto cfg = models::VaeConfig::from_json_file(golden_path("pipeline/vae/config.json"));
  cfg.use_quant_conv = true;
  models::AutoencoderKL vae(cfg);
  try {
    load_module_strict(*vae, WeightStore::open_dir(golden_path("pipeline/vae")), LoadOptions{});
    ADD_FAILURE() << "loaded without quant_conv weights";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find("quant_conv.weight"), std::string::npos) << e.what();
  }
}

TEST(Vae, Bf16IsCloseToFp32) {
  // bf16 keeps 8 mantissa bits (relative step 2^-8 ~ 0.4%), so after ~40 layers expect
  // errors of a few percent of the values' range: we allow 0.05 of max|ref| + 0.02.
  auto vae32 = load_golden_vae(torch::kFloat32);
  auto vae16 = load_golden_vae(torch::kBFloat16);
  GoldenCase c("component_vae");
  auto p32 = vae32->encode(c.t("image"));
  auto p16 = vae16->encode(c.t("image"));
  ASSERT_EQ(p16.mean.scalar_type(), torch::kBFloat16);
  auto tol = [](const torch::Tensor& ref) { return 0.05 * ref.abs().max().item<double>() + 0.02; };
  EXPECT_TENSOR_NEAR(p16.mean, p32.mean, tol(p32.mean));
  EXPECT_TENSOR_NEAR(p16.std, p32.std, tol(p32.std));
  torch::Tensor d32 = vae32->decode(c.t("decode_input"));
  torch::Tensor d16 = vae16->decode(c.t("decode_input"));
  ASSERT_EQ(d16.scalar_type(), torch::kBFloat16);
  EXPECT_TENSOR_NEAR(d16, d32, tol(d32));
  std::printf("bf16 vs fp32 max abs diff: mean %.4g (max|ref| %.3g), std %.4g, decoded %.4g (max|ref| %.3g)\n",
              max_abs_diff(p16.mean, p32.mean), p32.mean.abs().max().item<double>(), max_abs_diff(p16.std, p32.std),
              max_abs_diff(d16, d32), d32.abs().max().item<double>());
}

TEST(Vae, PosteriorSampleIsMeanPlusStdEps) {
  auto vae = load_golden_vae();
  GoldenCase c("component_vae");
  auto post = vae->encode(c.t("image"));
  torch::Tensor eps = torch::randn(post.mean.sizes());
  EXPECT_TRUE(torch::equal(post.sample(eps), post.mean + post.std * eps));
  EXPECT_THROW(post.sample(torch::randn({1, 2, 3, 4})), Error);
}

TEST(Vae, SlicingMatchesWholeBatch) {
  auto vae = load_golden_vae();
  GoldenCase c("component_vae");
  torch::Tensor img = torch::cat({c.t("image"), c.t("image").flip(3)});
  torch::Tensor z = torch::cat({c.t("decode_input"), c.t("decode_input") * 0.5});
  models::VaeRunOptions sliced;
  sliced.slicing = true;
  auto whole = vae->encode(img);
  auto parts = vae->encode(img, sliced);
  EXPECT_TENSOR_NEAR(parts.mean, whole.mean, 1e-5);
  EXPECT_TENSOR_NEAR(parts.logvar, whole.logvar, 1e-5);
  EXPECT_TENSOR_NEAR(vae->decode(z, sliced), vae->decode(z), 1e-5);
  // Row 0 of the batch equals the single-image golden result.
  EXPECT_TENSOR_NEAR(vae->decode(z, sliced).narrow(0, 0, 1), c.t("decoded"), c.tol("decoded"));
}

TEST(Vae, TiledDecodeFollowsDiffusersTiles) {
  // sample_size 32 -> latent tiles of 4, stride 3, blend 8 px, crop 24 px.
  auto cfg = models::VaeConfig::from_json_file(golden_path("pipeline/vae/config.json"));
  cfg.sample_size = 32;
  models::AutoencoderKL vae(cfg);
  load_module_strict(*vae, WeightStore::open_dir(golden_path("pipeline/vae")), LoadOptions{});
  torch::NoGradGuard ng;
  GoldenCase c("component_vae");
  torch::Tensor z = c.t("decode_input");  // [1, 16, 8, 12]
  models::VaeRunOptions tiled;
  tiled.tiling = true;
  torch::Tensor out = vae->decode(z, tiled);
  // Rows: tiles at 0, 3, 6 (sizes 4, 4, 2) -> 24 + 24 + 16 px; columns: 0, 3, 6, 9 -> 24*3 + 24.
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 3, 64, 96}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  // The first tile is never blended: its crop is that tile decoded on its own.
  torch::Tensor first = vae->decode(z.narrow(2, 0, 4).narrow(3, 0, 4));
  EXPECT_TRUE(torch::equal(out.narrow(2, 0, 24).narrow(3, 0, 24), first.narrow(2, 0, 24).narrow(3, 0, 24)));
  // The second tile of the first row is blended only over its first 8 columns.
  torch::Tensor second = vae->decode(z.narrow(2, 0, 4).narrow(3, 3, 4));
  EXPECT_TRUE(torch::equal(out.narrow(2, 0, 24).narrow(3, 24 + 8, 16), second.narrow(2, 0, 24).narrow(3, 8, 16)));
  // Column 24 + x (x < 8) of the output = first[:, 24 + x] * (1 - x/8) + second[:, x] * x/8.
  for (int64_t x = 0; x < 8; ++x) {
    const double t = x / 8.0;
    torch::Tensor want = first.narrow(2, 0, 24).select(3, 24 + x) * (1 - t) + second.narrow(2, 0, 24).select(3, x) * t;
    EXPECT_TRUE(torch::equal(out.narrow(2, 0, 24).select(3, 24 + x), want)) << "column " << x;
  }
  // Off (the default) and a latent that fits one tile both take the plain path.
  EXPECT_TENSOR_NEAR(vae->decode(z), c.t("decoded"), c.tol("decoded"));
  torch::Tensor small = z.narrow(2, 0, 4).narrow(3, 0, 4);
  EXPECT_TRUE(torch::equal(vae->decode(small, tiled), vae->decode(small)));
}

TEST(Vae, OtherSizesBuildAndRun) {
  TempFile f(kOtherConfig);
  auto cfg = models::VaeConfig::from_json_file(f.path());
  models::AutoencoderKL vae(cfg);
  models::randomize_parameters(*vae, 7);
  auto names = param_names(*vae);
  EXPECT_TRUE(names.count("quant_conv.weight"));
  EXPECT_TRUE(names.count("post_quant_conv.bias"));
  EXPECT_TRUE(names.count("encoder.down_blocks.0.resnets.1.conv2.weight"));
  EXPECT_TRUE(names.count("encoder.down_blocks.1.downsamplers.0.conv.weight"));
  EXPECT_FALSE(names.count("encoder.down_blocks.2.downsamplers.0.conv.weight"));  // last block keeps its size
  EXPECT_TRUE(names.count("decoder.up_blocks.0.resnets.2.conv1.weight"));       // layers_per_block + 1
  EXPECT_TRUE(names.count("decoder.up_blocks.1.upsamplers.0.conv.weight"));
  EXPECT_FALSE(names.count("decoder.up_blocks.2.upsamplers.0.conv.weight"));
  EXPECT_TRUE(names.count("encoder.down_blocks.1.resnets.0.conv_shortcut.weight"));  // 8 -> 16
  for (const auto& n : names) EXPECT_EQ(n.find("attentions"), std::string::npos) << n;

  torch::Tensor img = torch::rand({2, 3, 20, 28}) * 2 - 1;
  auto post = vae->encode(img);
  EXPECT_EQ(post.mean.sizes(), (std::vector<int64_t>{2, 4, 5, 7}));
  EXPECT_TRUE(torch::isfinite(post.std).all().item<bool>());
  torch::Tensor dec = vae->decode(post.mean);
  EXPECT_EQ(dec.sizes(), (std::vector<int64_t>{2, 3, 20, 28}));
  EXPECT_TRUE(torch::isfinite(dec).all().item<bool>());
  EXPECT_THROW(vae->encode(torch::zeros({1, 4, 20, 28})), Error);  // wrong channel count
  EXPECT_THROW(vae->decode(torch::zeros({1, 16, 5, 7})), Error);
  EXPECT_THROW(vae->encode(torch::zeros({1, 3, 3, 28})), Error);   // smaller than the scale factor

  // Save the random weights in diffusers layout and load them strictly into a fresh model.
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : vae->named_parameters()) tensors[p.key()] = p.value();
  TempFile st("", ".safetensors");
  save_tensors(st.path(), tensors);
  models::AutoencoderKL again(cfg);
  load_module_strict(*again, WeightStore::open_file(st.path()), LoadOptions{});
  EXPECT_TRUE(torch::equal(again->decode(post.mean), dec));
}
