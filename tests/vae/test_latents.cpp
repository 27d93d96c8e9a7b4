// Latent layout of the Fill pipeline: golden parity (component_pack and the pipeline cases'
// intermediate tensors), repeat rules, and other VAE scale factors.
#include "engine/sched/flow_match.h"
#include "engine/sched/latents.h"
#include "engine/util/status.h"
#include "tests/vae/vae_test_util.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

models::VaeConfig golden_vae_config() {
  return models::VaeConfig::from_json_file(golden_path("pipeline/vae/config.json"));
}

}  // namespace

TEST(Latents, PackUnpackAndIdsMatchReference) {
  GoldenCase c("component_pack");
  const int64_t H = c.meta.at("height").get<int64_t>(), W = c.meta.at("width").get<int64_t>();
  torch::Tensor packed = sched::pack_latents(c.t("latents"));
  EXPECT_TRUE(torch::equal(packed, c.t("packed")));
  torch::Tensor unpacked = sched::unpack_latents(c.t("packed"), H, W, 8);
  EXPECT_TRUE(torch::equal(unpacked, c.t("unpacked")));
  EXPECT_TRUE(torch::equal(unpacked, c.t("latents")));
  torch::Tensor ids = sched::latent_image_ids(sched::latent_side(H, 8) / 2, sched::latent_side(W, 8) / 2);
  EXPECT_TRUE(torch::equal(ids, c.t("latent_image_ids")));
  EXPECT_EQ(sched::latent_side(64, 8), 8);
  EXPECT_EQ(sched::latent_side(100, 8), 12);  // 2 * (100 // 16)
  EXPECT_THROW(sched::pack_latents(torch::zeros({1, 16, 7, 8})), Error);
  EXPECT_THROW(sched::unpack_latents(packed, H + 16, W, 8), Error);
}

TEST(Latents, MaskAndConditionMatchReference) {
  GoldenCase c("component_pack");
  const auto vcfg = golden_vae_config();
  const torch::Tensor& mask = c.t("mask");
  EXPECT_TRUE(torch::equal(c.t("init_image") * (1 - mask), c.t("masked_image")));
  // num_images_per_prompt 2 from one image and one mask.
  torch::Tensor mask_latents = sched::pack_mask(sched::repeat_to_batch(mask, 2, "mask"), vcfg.vae_scale_factor());
  EXPECT_TRUE(torch::equal(mask_latents, c.t("mask_latents")));

  // From the stored posterior and eps: masked_image_latents within tolerance, mask exact.
  torch::Tensor sample = c.t("masked_image_posterior_mean") + c.t("masked_image_posterior_std") * c.t("vae_sample_eps");
  torch::Tensor cond = sched::fill_condition(sample, mask, 2, vcfg);
  const int64_t lat_ch = 4 * vcfg.latent_channels;
  ASSERT_EQ(cond.sizes(), (std::vector<int64_t>{2, 24, lat_ch + 4 * 64}));
  EXPECT_TENSOR_NEAR(cond.narrow(2, 0, lat_ch), c.t("masked_image_latents"), c.tol("masked_image_latents"));
  EXPECT_TRUE(torch::equal(cond.narrow(2, lat_ch, 256), c.t("mask_latents")));
}

TEST(Latents, ConditionEndToEndThroughTheVae) {
  GoldenCase c("component_pack");
  auto vae = load_golden_vae();
  torch::Tensor masked = c.t("init_image") * (1 - c.t("mask"));
  auto post = vae->encode(masked);
  EXPECT_TENSOR_NEAR(post.mean, c.t("masked_image_posterior_mean"), c.tol("masked_image_posterior_mean"));
  EXPECT_TENSOR_NEAR(post.std, c.t("masked_image_posterior_std"), c.tol("masked_image_posterior_std"));
  torch::Tensor cond = sched::fill_condition(post.sample(c.t("vae_sample_eps")), c.t("mask"), 2, vae->config());
  EXPECT_TENSOR_NEAR(cond.narrow(2, 0, 64), c.t("masked_image_latents"), c.tol("masked_image_latents"));
  EXPECT_TRUE(torch::equal(cond.narrow(2, 64, 256), c.t("mask_latents")));
}

// The pipeline cases store every intermediate of the reference run: check the stages this
// module owns (schedule, image latents, initial latents, conditioning, Euler steps fed the
// stored noise predictions, decode) against them, with the stored random draws injected.
class PipelineStages : public ::testing::TestWithParam<std::string> {};

TEST_P(PipelineStages, MatchReference) {
  GoldenCase c(GetParam());
  auto vae = load_golden_vae();
  const auto& vcfg = vae->config();
  const int64_t f = vae->vae_scale_factor();
  const int64_t H = c.meta.at("height").get<int64_t>(), W = c.meta.at("width").get<int64_t>();
  const int64_t steps = c.meta.at("num_inference_steps").get<int64_t>();
  const double strength = c.meta.at("strength").get<double>();
  const torch::Tensor& noise = c.t("rng1_noise");
  const int64_t B = noise.size(0);

  auto scfg = sched::FlowMatchConfig::from_json_file(golden_path("pipeline/scheduler/scheduler_config.json"));
  auto sch = sched::make_schedule(scfg, steps, sched::image_seq_len(H, W, f), strength);
  std::vector<float> sig(sch.sigmas.begin(), sch.sigmas.end());
  EXPECT_TRUE(torch::equal(torch::tensor(sig), c.t("sigmas")));
  std::vector<float> ts = sch.run_timesteps();
  EXPECT_TENSOR_NEAR(torch::tensor(ts), c.t("timesteps"), 1e-3);

  // Image latents and the noised starting point.
  auto post = vae->encode(c.t("init_image"));
  torch::Tensor image_latents = sched::scale_vae_latents(post.sample(c.t("rng0_vae_sample_eps")), vcfg);
  EXPECT_TENSOR_NEAR(image_latents, c.t("image_latents"), c.tol("initial_latents"));
  torch::Tensor init = sched::initial_latents(post.sample(c.t("rng0_vae_sample_eps")), noise,
                                              torch::full({B}, sch.initial_sigma()), vcfg);
  EXPECT_TENSOR_NEAR(init, c.t("initial_latents"), c.tol("initial_latents"));
  // Given the reference's image latents, the noising is exact.
  torch::Tensor init_exact = sched::pack_latents(
      sched::scale_noise(sched::repeat_to_batch(c.t("image_latents"), B, "image"), noise, sch.initial_sigma()));
  EXPECT_TRUE(torch::equal(init_exact, c.t("initial_latents")));

  // Conditioning.
  EXPECT_TRUE(torch::equal(sched::latent_image_ids(sched::latent_side(H, f) / 2, sched::latent_side(W, f) / 2),
                           c.t("latent_image_ids")));
  torch::Tensor mask = c.t("mask_image");
  auto mpost = vae->encode(c.t("init_image") * (1 - mask));
  torch::Tensor cond = sched::fill_condition(mpost.sample(c.t("rng2_vae_sample_eps")), mask, B, vcfg);
  EXPECT_TENSOR_NEAR(cond, c.t("masked_image_latents"), c.tol("masked_image_latents"));
  const int64_t lat_ch = 4 * vcfg.latent_channels;
  EXPECT_TRUE(torch::equal(cond.narrow(2, lat_ch, cond.size(2) - lat_ch), c.t("mask_latents")));

  // Euler steps with the stored noise predictions.
  torch::Tensor x = c.t("initial_latents");
  for (int64_t i = 0; i < sch.num_steps(); ++i) {
    const std::string s = std::to_string(i);
    x = sched::euler_step(x, c.t("noise_pred_step" + s), torch::full({B}, sch.sigma(i)),
                          torch::full({B}, sch.sigma_next(i)));
    EXPECT_TRUE(torch::equal(x, c.t("latents_step" + s))) << "step " << i << " max diff "
                                                           << max_abs_diff(x, c.t("latents_step" + s));
  }
  EXPECT_TRUE(torch::equal(x, c.t("final_latents")));

  // Decode.
  torch::Tensor z = sched::unscale_vae_latents(sched::unpack_latents(c.t("final_latents"), H, W, f), vcfg);
  EXPECT_TENSOR_NEAR(vae->decode(z), c.t("decoded"), c.tol("decoded"));
}

INSTANTIATE_TEST_SUITE_P(Golden, PipelineStages,
                         ::testing::Values("fill_strength06_onereward_64x64", "fill_batch2prompts_base_64x64",
                                           "extend_noprompt_base_96x64", "fill_nipp2_base_64x64"));

TEST(Latents, RepeatRulesMirrorThePipeline) {
  torch::Tensor t = torch::arange(2).view({2, 1});
  EXPECT_TRUE(torch::equal(sched::repeat_to_batch(t, 4, "x"), torch::tensor({0, 1, 0, 1}).view({4, 1})));
  EXPECT_TRUE(torch::equal(sched::repeat_to_batch(t, 2, "x"), t));
  EXPECT_THROW(sched::repeat_to_batch(t, 3, "x"), Error);  // not a multiple
  EXPECT_THROW(sched::repeat_to_batch(t, 1, "x"), Error);  // more rows than the batch
  const auto vcfg = golden_vae_config();
  torch::Tensor sample = torch::randn({2, 16, 4, 4});
  torch::Tensor mask = torch::zeros({3, 1, 32, 32});
  try {
    sched::fill_condition(sample, mask, 4, vcfg);
    ADD_FAILURE() << "3 masks repeated to 4";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mask"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sched::fill_condition(sample, torch::zeros({1, 1, 24, 32}), 2, vcfg), Error);  // size mismatch
}

TEST(Latents, OtherScaleFactorAndChannels) {
  // f = 4, 4 latent channels: the mask folds into 16 channels, packs into 64.
  const int64_t f = 4;
  torch::Tensor mask = torch::zeros({1, 1, 16, 24});
  mask.index_put_({0, 0, 5, 14}, 1.0);  // latent cell (1, 3), offset (dy, dx) = (1, 2)
  torch::Tensor pm = sched::pack_mask(mask, f);
  ASSERT_EQ(pm.sizes(), (std::vector<int64_t>{1, 2 * 3, 4 * f * f}));
  // Latent cell (1, 3) is in token (0, 1) at patch offset (1, 1); channel = (dy*f+dx)*4 + 1*2 + 1.
  auto nz = pm.nonzero();
  ASSERT_EQ(nz.size(0), 1);
  EXPECT_EQ(nz[0][1].item<int64_t>(), 1);
  EXPECT_EQ(nz[0][2].item<int64_t>(), (1 * f + 2) * 4 + 3);
  EXPECT_THROW(sched::pack_mask(torch::zeros({1, 1, 18, 24}), f), Error);  // 18 is not a multiple of 8

  models::VaeConfig vcfg;  // defaults: 4 latent channels
  vcfg.block_out_channels = {8, 8, 8};
  vcfg.down_block_types = {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"};
  vcfg.up_block_types = {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"};
  torch::Tensor cond = sched::fill_condition(torch::randn({1, 4, 4, 6}), mask, 2, vcfg);
  EXPECT_EQ(cond.sizes(), (std::vector<int64_t>{2, 6, 16 + 64}));
  torch::Tensor lat = torch::randn({3, 4, 4, 6});
  EXPECT_TRUE(torch::equal(sched::unpack_latents(sched::pack_latents(lat), 16, 24, f), lat));
  EXPECT_EQ(sched::latent_image_ids(2, 3).sizes(), (std::vector<int64_t>{6, 3}));
}
