// Flow-match Euler schedule: golden parity with diffusers (component_scheduler), strength
// slicing with Python's float rounding, unsupported options, per-row steps.
#include "engine/sched/flow_match.h"
#include "engine/util/status.h"
#include "tests/vae/vae_test_util.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

sched::FlowMatchConfig golden_config() {
  return sched::FlowMatchConfig::from_json_file(golden_path("pipeline/scheduler/scheduler_config.json"));
}

torch::Tensor to_tensor(const std::vector<float>& v) {
  return torch::tensor(std::vector<float>(v.begin(), v.end()), torch::kFloat32);
}

}  // namespace

TEST(FlowMatchConfig, ReadsGoldenConfig) {
  auto c = golden_config();
  EXPECT_EQ(c.num_train_timesteps, 1000);
  EXPECT_EQ(c.shift, 3.0);
  EXPECT_TRUE(c.use_dynamic_shifting);
  EXPECT_EQ(c.base_shift, 0.5);
  EXPECT_EQ(c.max_shift, 1.15);
  EXPECT_EQ(c.base_image_seq_len, 256);
  EXPECT_EQ(c.max_image_seq_len, 4096);
}

TEST(FlowMatchConfig, RejectsOptionsWeDoNotImplement) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"use_karras_sigmas", "true"},    {"use_exponential_sigmas", "true"}, {"use_beta_sigmas", "true"},
      {"invert_sigmas", "true"},        {"shift_terminal", "0.1"},          {"stochastic_sampling", "true"},
      {"time_shift_type", "\"linear\""},
  };
  auto base = read_json(golden_path("pipeline/scheduler/scheduler_config.json"));
  for (const auto& [field, value] : cases) {
    auto j = base;
    j[field] = nlohmann::json::parse(value);
    TempFile f(j.dump());
    try {
      sched::FlowMatchConfig::from_json_file(f.path());
      ADD_FAILURE() << field << " = " << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(f.path()), std::string::npos) << e.what();
    }
  }
  // The defaults, written out explicitly, are fine.
  auto j = base;
  j["use_karras_sigmas"] = false;
  j["shift_terminal"] = nullptr;
  j["time_shift_type"] = "exponential";
  j["invert_sigmas"] = false;
  TempFile ok(j.dump());
  EXPECT_NO_THROW(sched::FlowMatchConfig::from_json_file(ok.path()));
}

TEST(FlowMatch, CalculateShiftIsPythonFloat64) {
  auto cfg = golden_config();
  GoldenCase c("component_scheduler");
  for (const auto& s : c.meta.at("schedules")) {
    // Same float64 operations in the same order: bit-identical to the stored Python float.
    EXPECT_EQ(sched::calculate_shift(cfg, s.at("image_seq_len").get<int64_t>()), s.at("mu").get<double>())
        << "image_seq_len " << s.at("image_seq_len");
  }
  EXPECT_EQ(sched::image_seq_len(64, 96, 8), 24);
  EXPECT_EQ(sched::image_seq_len(1024, 1024, 8), 4096);
  EXPECT_EQ(sched::image_seq_len(70, 100, 8), 4 * 6);  // floors like the pipeline
}

TEST(FlowMatch, SchedulesMatchReference) {
  auto cfg = golden_config();
  GoldenCase c("component_scheduler");
  for (const auto& s : c.meta.at("schedules")) {
    const int64_t n = s.at("num_inference_steps").get<int64_t>();
    auto sch = sched::make_schedule(cfg, n, s.at("image_seq_len").get<int64_t>());
    const std::string idx = std::to_string(s.at("index").get<int>());
    ASSERT_EQ(static_cast<int64_t>(sch.sigmas.size()), n + 1);
    ASSERT_EQ(sch.begin_index, 0);
    ASSERT_EQ(sch.num_steps(), n);
    EXPECT_TENSOR_NEAR(to_tensor(sch.sigmas), c.t("sigmas_" + idx), c.tol("sigmas_*"));
    EXPECT_TENSOR_NEAR(to_tensor(sch.timesteps), c.t("timesteps_" + idx), c.tol("timesteps_*"));
    // The recipe is float32 numpy / torch arithmetic we reproduce exactly: expect no difference.
    EXPECT_TRUE(torch::equal(to_tensor(sch.sigmas), c.t("sigmas_" + idx))) << "sigmas_" << idx;
    EXPECT_TRUE(torch::equal(to_tensor(sch.timesteps), c.t("timesteps_" + idx))) << "timesteps_" << idx;
    EXPECT_EQ(sch.sigmas.back(), 0.0f);
  }
}

TEST(FlowMatch, StrengthSlicesLikeThePipeline) {
  auto cfg = golden_config();
  GoldenCase c("component_scheduler");
  const auto& ex = c.meta.at("strength_example");
  auto sch = sched::make_schedule(cfg, ex.at("num_inference_steps").get<int64_t>(),
                                  ex.at("image_seq_len").get<int64_t>(), ex.at("strength").get<double>());
  EXPECT_EQ(sch.begin_index, ex.at("t_start").get<int64_t>());
  EXPECT_TENSOR_NEAR(to_tensor(sch.run_timesteps()), c.t("strength_timesteps"), c.tol("strength_timesteps"));
  EXPECT_EQ(sch.num_steps(), 3);
  EXPECT_EQ(sch.timestep(0), sch.timesteps[1]);
  EXPECT_EQ(sch.sigma(0), sch.sigmas[1]);
  EXPECT_EQ(sch.sigma_next(2), 0.0f);
  EXPECT_EQ(sch.initial_sigma(), sch.sigmas[1]);

  // Python float rounding: 25 * 0.56 = 14.000000000000002, int(25 - 14.000000000000002) = 10
  // (not the 11 exact arithmetic would give).
  EXPECT_EQ(sched::make_schedule(cfg, 25, 256, 0.56).begin_index, 10);
  EXPECT_EQ(sched::make_schedule(cfg, 10, 256, 0.3).begin_index, 7);  // 10 * 0.3 == 3.0 exactly
  // 3 * 0.7 = 2.0999999999999996 -> int(0.9000000000000004) = 0.
  EXPECT_EQ(sched::make_schedule(cfg, 3, 256, 0.7).begin_index, 0);
  EXPECT_EQ(sched::make_schedule(cfg, 50, 256, 1.0).begin_index, 0);
  EXPECT_EQ(sched::make_schedule(cfg, 50, 256, 0.5).begin_index, 25);
  EXPECT_THROW(sched::make_schedule(cfg, 4, 256, 0.0), Error);   // no step left
  EXPECT_EQ(sched::make_schedule(cfg, 4, 256, 0.1).begin_index, 3);  // int(4 - 0.4) = 3: one step
}

TEST(FlowMatch, StrengthEdgeCases) {
  auto cfg = golden_config();
  EXPECT_EQ(sched::make_schedule(cfg, 4, 256, 0.25).begin_index, 3);  // one step
  EXPECT_EQ(sched::make_schedule(cfg, 4, 256, 0.25).num_steps(), 1);
  EXPECT_THROW(sched::make_schedule(cfg, 4, 256, -0.1), Error);
  EXPECT_THROW(sched::make_schedule(cfg, 4, 256, 1.5), Error);
  EXPECT_THROW(sched::make_schedule(cfg, 0, 256, 1.0), Error);
}

TEST(FlowMatch, StaticShift) {
  auto cfg = golden_config();
  cfg.use_dynamic_shifting = false;  // shift 3: s' = 3s / (1 + 2s)
  auto sch = sched::make_schedule(cfg, 4, 1);
  // linspace(1, 0.25, 4) = 1, 0.75, 0.5, 0.25 -> 1, 0.9, 0.75, 0.5 (each correctly rounded).
  EXPECT_EQ(sch.sigmas, (std::vector<float>{1.0f, 0.9f, 0.75f, 0.5f, 0.0f}));
  EXPECT_EQ(sch.timesteps, (std::vector<float>{1000.0f, 900.0f, 750.0f, 500.0f}));
  cfg.shift = 1.0;  // identity
  EXPECT_EQ(sched::make_schedule(cfg, 4, 1).sigmas, (std::vector<float>{1.0f, 0.75f, 0.5f, 0.25f, 0.0f}));
}

TEST(FlowMatch, ScaleNoiseMatchesReference) {
  auto cfg = golden_config();
  GoldenCase c("component_scheduler");
  const auto& sc = c.meta.at("schedules").at(1);
  auto sch = sched::make_schedule(cfg, sc.at("num_inference_steps").get<int64_t>(), sc.at("image_seq_len").get<int64_t>());
  torch::Tensor out = sched::scale_noise(c.t("scale_noise_x0"), c.t("scale_noise_noise"), sch.initial_sigma());
  EXPECT_TENSOR_NEAR(out, c.t("scale_noise_out"), c.tol("scale_noise_out"));
  EXPECT_TRUE(torch::equal(out, c.t("scale_noise_out")));
}

TEST(FlowMatch, EulerStepsMatchReference) {
  auto cfg = golden_config();
  GoldenCase c("component_scheduler");
  const auto& sc = c.meta.at("schedules").at(1);
  auto sch = sched::make_schedule(cfg, sc.at("num_inference_steps").get<int64_t>(), sc.at("image_seq_len").get<int64_t>());
  const torch::Tensor& mo = c.t("step_model_output");
  torch::Tensor s0 = sched::euler_step(c.t("step_sample"), mo, sch.sigma(0), sch.sigma_next(0));
  EXPECT_TENSOR_NEAR(s0, c.t("step_out_0"), c.tol("step_out_*"));
  torch::Tensor s1 = sched::euler_step(s0, mo, sch.sigma(1), sch.sigma_next(1));
  EXPECT_TENSOR_NEAR(s1, c.t("step_out_1"), c.tol("step_out_*"));
  EXPECT_TRUE(torch::equal(s0, c.t("step_out_0")));
  EXPECT_TRUE(torch::equal(s1, c.t("step_out_1")));
}

TEST(FlowMatch, PerRowSigmasEqualSeparateSteps) {
  // Two jobs at different steps of different schedules advance in one call.
  auto cfg = golden_config();
  auto a = sched::make_schedule(cfg, 4, 24);
  auto b = sched::make_schedule(cfg, 50, 4096, 0.6);
  torch::Tensor sample = torch::randn({2, 24, 64});
  torch::Tensor mo = torch::randn({2, 24, 64});
  torch::Tensor sig = torch::tensor({a.sigma(1), b.sigma(7)});
  torch::Tensor nxt = torch::tensor({a.sigma_next(1), b.sigma_next(7)});
  torch::Tensor both = sched::euler_step(sample, mo, sig, nxt);
  EXPECT_TRUE(torch::equal(both[0], sched::euler_step(sample[0], mo[0], a.sigma(1), a.sigma_next(1))));
  EXPECT_TRUE(torch::equal(both[1], sched::euler_step(sample[1], mo[1], b.sigma(7), b.sigma_next(7))));
  torch::Tensor x0 = torch::randn({2, 16, 4, 6}), noise = torch::randn({2, 16, 4, 6});
  torch::Tensor n2 = sched::scale_noise(x0, noise, torch::tensor({a.initial_sigma(), b.initial_sigma()}));
  EXPECT_TRUE(torch::equal(n2[1], sched::scale_noise(x0[1], noise[1], b.initial_sigma())));
  EXPECT_THROW(sched::euler_step(sample, mo, torch::zeros({3}), torch::zeros({3})), Error);
}

TEST(FlowMatch, ReducedPrecisionStepReturnsModelDtype) {
  auto cfg = golden_config();
  auto sch = sched::make_schedule(cfg, 4, 24);
  torch::Tensor sample = torch::randn({1, 24, 64});
  torch::Tensor mo = torch::randn({1, 24, 64});
  torch::Tensor ref = sched::euler_step(sample, mo, sch.sigma(0), sch.sigma_next(0));
  torch::Tensor bf = sched::euler_step(sample.to(torch::kBFloat16), mo.to(torch::kBFloat16), sch.sigma(0),
                                       sch.sigma_next(0));
  EXPECT_EQ(bf.scalar_type(), torch::kBFloat16);
  // One bf16 rounding of values ~|4|: <= 2^-7 * 4 relative spacing, plus the inputs' rounding.
  EXPECT_TENSOR_NEAR(bf, ref, 0.05);
}
