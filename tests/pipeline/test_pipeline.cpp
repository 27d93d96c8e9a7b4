// Every golden pipeline case end to end through the engine API (prepare / step / finish),
// drawing noise from the seed: final latents and the float image within the MANIFEST's
// tolerances, the 8-bit image within 1. Plus batching independence and bf16 closeness.
#include <memory>

#include "engine/image/image.h"
#include "engine/models/cpu_buffer_cache.h"
#include "engine/pipeline/engine.h"
#include "tests/engine/golden.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

Engine& golden_engine() {
  static std::unique_ptr<Engine> engine = [] {
    EngineOptions o;
    o.model_dir = golden_path("pipeline");
    o.variants["onereward"] = golden_path("variants/flux.1-fill-dev-OneReward-transformer");
    o.variants["onereward-dynamic"] = golden_path("variants/flux.1-fill-dev-OneRewardDynamic-transformer");
    o.loras.push_back({"object-removal", golden_path("variants/flux.1-fill-dev-object-removal-lora")});
    auto e = Engine::load(o);
    if (!e.ok()) throw std::runtime_error(e.status().to_string());
    return std::move(e).value();
  }();
  return *engine;
}

std::vector<std::string> as_list(const nlohmann::json& j) {
  if (j.is_array()) return j.get<std::vector<std::string>>();
  return {j.get<std::string>()};
}

FillRequest request_for(const GoldenCase& c) {
  const auto& m = c.meta;
  FillRequest r;
  const std::string task = m["task"];
  r.task = task == "object_removal" ? Task::kRemove : task.rfind("extend", 0) == 0 ? Task::kExtend : Task::kFill;
  r.image = image::read_file(c.dir + "/" + m["inputs"]["image"].get<std::string>());
  r.mask = image::read_file(c.dir + "/" + m["inputs"]["mask"].get<std::string>());
  r.prompts = as_list(m["prompt"]);
  r.negative_prompts = as_list(m["negative_prompt"]);
  r.steps = m["num_inference_steps"];
  r.true_cfg = m["true_cfg"];
  r.guidance_scale = m["guidance_scale"];
  r.strength = m["strength"];
  r.seed = m["seed"];
  r.width = m["width"];
  r.height = m["height"];
  r.num_images = m["num_images_per_prompt"];
  const std::string variant = m["variant"];
  r.variant = variant == "onereward_dynamic" ? "onereward-dynamic" : variant;
  if (!m["lora"].is_null()) r.adapters.push_back({"object-removal", m["lora"]["adapter_weight"].get<float>()});
  r.keep_tensors = true;
  return r;
}

void check_case(const std::string& name) {
  GoldenCase c(name);
  FillRequest r = request_for(c);
  auto out = golden_engine().run(r);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const FillOutput& o = out.value();
  torch::Tensor lat = torch::from_blob(const_cast<float*>(o.latents.data()), o.latents_shape, torch::kFloat32);
  EXPECT_TENSOR_NEAR(lat, c.t("final_latents"), c.tol("final_latents"));
  torch::Tensor img = torch::from_blob(const_cast<float*>(o.image_f32.data()), o.image_shape, torch::kFloat32);
  EXPECT_TENSOR_NEAR(img.permute({0, 2, 3, 1}), c.t("image"), c.tol("image"));
  // 8-bit output: within 1 of expected.png / expected_<i>.png.
  for (size_t i = 0; i < o.images.size(); ++i) {
    const std::string png = c.dir + (i == 0 ? "/expected.png" : "/expected_" + std::to_string(i) + ".png");
    image::Image e = image::read_file(png);
    ASSERT_EQ(e.width, o.images[i].width);
    ASSERT_EQ(e.height, o.images[i].height);
    int worst = 0;
    for (size_t k = 0; k < e.rgb.size(); ++k) worst = std::max(worst, std::abs(int(e.rgb[k]) - int(o.images[i].rgb[k])));
    EXPECT_LE(worst, 1) << png;
  }
}

}  // namespace

TEST(GoldenPipeline, FillOneReward) { check_case("fill_onereward_64x64"); }
TEST(GoldenPipeline, FillDynamic) { check_case("fill_dynamic_64x64"); }
TEST(GoldenPipeline, FillNoCfgGuidance30) { check_case("fill_nocfg_base_64x64"); }
TEST(GoldenPipeline, FillStrength06) { check_case("fill_strength06_onereward_64x64"); }
TEST(GoldenPipeline, FillTwoImagesPerPrompt) { check_case("fill_nipp2_base_64x64"); }
TEST(GoldenPipeline, FillTwoPromptsInOneCall) { check_case("fill_batch2prompts_base_64x64"); }
TEST(GoldenPipeline, FillResizedInput) { check_case("fill_resize_onereward_64x64_from_80x72"); }
TEST(GoldenPipeline, ExtendWithPrompt) { check_case("extend_prompt_onereward_64x96"); }
TEST(GoldenPipeline, ExtendWithoutPrompt) { check_case("extend_noprompt_base_96x64"); }
TEST(GoldenPipeline, Remove) { check_case("removal_onereward_64x64"); }
TEST(GoldenPipeline, RemoveWithLora) { check_case("removal_lora_onereward_64x64"); }

TEST(GoldenPipeline, ExtendFromMarginsEqualsGrownCanvas) {
  // The original image plus margins builds the same canvas and mask as the golden inputs.
  GoldenCase c("extend_prompt_onereward_64x96");
  FillRequest grown = request_for(c);
  FillRequest margins = grown;
  margins.mask.reset();
  // Margins measured from the golden canvas: 24 left/right, 16 top/bottom around 48x32 content.
  margins.extend = {24, 16, 24, 16};
  image::Image content(48, 32);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 48; ++x)
      std::copy_n(grown.image.at(x + 24, y + 16), 3, content.at(x, y));
  margins.image = content;
  auto a = golden_engine().run(grown);
  auto b = golden_engine().run(margins);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.value().latents, b.value().latents);
}

TEST(EngineBatching, StepResultIndependentOfBatchmates) {
  // The same job alone and batched with a different job (other prompt, seed, true_cfg,
  // task) ends with the same latents within float tolerance.
  Engine& e = golden_engine();
  FillRequest a = request_for(GoldenCase("fill_onereward_64x64"));
  FillRequest b = request_for(GoldenCase("removal_onereward_64x64"));
  b.seed = 77;
  b.true_cfg = 1.0f;
  b.steps = 5;
  auto alone = e.run(a);
  ASSERT_TRUE(alone.ok());
  auto ja = e.prepare(a), jb = e.prepare(b);
  ASSERT_TRUE(ja.ok() && jb.ok());
  EXPECT_EQ(Engine::state(*ja.value()).group_key, Engine::state(*jb.value()).group_key);
  EXPECT_EQ(Engine::state(*ja.value()).rows, 2);
  EXPECT_EQ(Engine::state(*jb.value()).rows, 1);
  while (!Engine::state(*ja.value()).done()) {
    std::vector<Job*> batch{ja.value().get()};
    if (!Engine::state(*jb.value()).done()) batch.push_back(jb.value().get());
    ASSERT_TRUE(e.step(batch).ok());
  }
  auto fa = e.finish(*ja.value());
  ASSERT_TRUE(fa.ok());
  torch::Tensor x = torch::tensor(fa.value().latents), y = torch::tensor(alone.value().latents);
  EXPECT_LE(max_abs_diff(x, y), 1e-4);
}

TEST(EngineCpuBuffers, RepeatedJobTakesEveryLargeBufferFromTheCache) {
  // A CPU engine installs the caching allocator (by default with half of the memory left once
  // loaded) and says so in its load log.
  // Once a job shape has run, running it again allocates no large buffer from the system.
  Engine& e = golden_engine();
  const auto installed = models::cpu_buffer_cache_stats();
  ASSERT_TRUE(installed.installed);
  EXPECT_GT(installed.limit_bytes, 0);
  bool logged = false;
  for (const auto& line : e.info().load_log) logged |= line.find("half of the memory left") != std::string::npos;
  EXPECT_TRUE(logged);

  FillRequest r = request_for(GoldenCase("fill_onereward_64x64"));
  r.width = r.height = 256;  // large enough for VAE activations above the cache's threshold
  r.steps = 2;
  auto first = e.run(r);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const auto before = models::cpu_buffer_cache_stats();
  auto second = e.run(r);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  const auto after = models::cpu_buffer_cache_stats();
  EXPECT_GT(after.hits - before.hits, 10);
  EXPECT_EQ(after.misses - before.misses, 0);
  EXPECT_EQ(first.value().image_f32, second.value().image_f32);
  // What the server reports as onereward_device_memory_bytes on CPU: the jobs are done, so
  // nothing large is in use and what the jobs used is kept.
  int64_t in_use = -1, reserved = -1;
  ASSERT_TRUE(e.device_memory(in_use, reserved));
  EXPECT_EQ(in_use, after.in_use_bytes);
  EXPECT_EQ(reserved, after.in_use_bytes + after.cached_bytes);
  EXPECT_GT(reserved - in_use, 0);
}

TEST(EngineValidation, BadInputsNameTheField) {
  Engine& e = golden_engine();
  FillRequest base = request_for(GoldenCase("fill_onereward_64x64"));
  auto expect_invalid = [&](FillRequest r, const std::string& needle) {
    auto j = e.prepare(r);
    ASSERT_FALSE(j.ok()) << needle;
    EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(j.status().message().find(needle), std::string::npos) << j.status().message();
  };
  { auto r = base; r.mask.reset(); expect_invalid(r, "mask"); }
  { auto r = base; r.steps = 0; expect_invalid(r, "steps"); }
  { auto r = base; r.strength = 1.5f; expect_invalid(r, "strength"); }
  { auto r = base; r.variant = "nope"; expect_invalid(r, "variant 'nope'"); }
  { auto r = base; r.adapters = {{"nope", 1.0f}}; expect_invalid(r, "adapter 'nope'"); }
  { auto r = base; r.mask = image::Image(32, 32); expect_invalid(r, "mask size"); }
  { auto r = base; r.image = image::Image(8, 8); r.mask = image::Image(8, 8); r.width = r.height = 0; expect_invalid(r, "at least"); }
  { auto r = base; r.task = Task::kExtend; r.mask.reset(); expect_invalid(r, "margins"); }
}

TEST(EngineDtype, Bfloat16JobStaysCloseToFloat32) {
  // The GPU dtype path on CPU: the same job in bf16 ends near the fp32 reference image.
  // bf16 keeps 8 mantissa bits; over the transformer, 3 steps and the VAE the image
  // ([0, 1]) drifts by a few 1e-2 at most (measured ~0.03); 0.1 bounds it.
  EngineOptions o;
  o.model_dir = golden_path("pipeline");
  o.variants["onereward"] = golden_path("variants/flux.1-fill-dev-OneReward-transformer");
  o.dtype = "bf16";
  auto e = Engine::load(o);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  GoldenCase c("fill_onereward_64x64");
  FillRequest r = request_for(c);
  auto out = e.value()->run(r);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  torch::Tensor img = torch::tensor(out.value().image_f32).view(out.value().image_shape);
  EXPECT_TENSOR_NEAR(img.permute({0, 2, 3, 1}), c.t("image"), 0.1);
}
