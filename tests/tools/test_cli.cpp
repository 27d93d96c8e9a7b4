// The offline tool from the command line alone: `generate` reproduces every golden pipeline
// case (all but the two-prompt call, which the flags cannot express), bad input exits
// non-zero with a one-line reason, `encode-prompt`, `make-tiny` and `inspect` work.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/engine/golden.h"

namespace fs = std::filesystem;
using namespace onereward;
using namespace onereward::testing;

namespace {

struct ToolRun {
  int code = -1;
  std::string output;  // stdout + stderr
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

ToolRun run_tool(const std::vector<std::string>& args) {
  std::string cmd = ONEREWARD_ENGINE_TOOL;
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " 2>&1";
  ToolRun r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}


std::string str(const nlohmann::json& j) {
  std::ostringstream os;
  if (j.is_number_float()) os << j.get<double>();
  else if (j.is_string()) return j.get<std::string>();
  else os << j;
  return os.str();
}

void check_generate(const std::string& name) {
  GoldenCase c(name);
  const auto& m = c.meta;
  TempDir tmp;
  const std::string task = m["task"];
  std::vector<std::string> args = {"generate", "--model", golden_path("pipeline"), "--task",
                                   task == "object_removal" ? "remove" : task.rfind("extend", 0) == 0 ? "extend" : "fill",
                                   "--image", c.dir + "/image.png", "--mask", c.dir + "/mask.png",
                                   "--prompt", str(m["prompt"]), "--negative-prompt", str(m["negative_prompt"]),
                                   "--steps", str(m["num_inference_steps"]), "--true-cfg", str(m["true_cfg"]),
                                   "--guidance", str(m["guidance_scale"]), "--seed", str(m["seed"]),
                                   "--strength", str(m["strength"]), "--width", str(m["width"]),
                                   "--height", str(m["height"]), "--num-images", str(m["num_images_per_prompt"]),
                                   "--out", tmp.path() + "/out.png", "--out-tensors", tmp.path() + "/out.safetensors"};
  if (m["transformer"] != "pipeline/transformer") {
    args.push_back("--transformer");
    args.push_back(golden_path(m["transformer"]));
  }
  if (!m["lora"].is_null()) {
    args.push_back("--lora");
    args.push_back(golden_path(m["lora"]["path"]) + ":" + str(m["lora"]["adapter_weight"]));
  }
  ToolRun r = run_tool(args);
  ASSERT_EQ(r.code, 0) << r.output;
  auto t = load_tensors(tmp.path() + "/out.safetensors");
  EXPECT_TENSOR_NEAR(t.at("latents"), c.t("final_latents"), c.tol("final_latents"));
  EXPECT_TENSOR_NEAR(t.at("image").permute({0, 2, 3, 1}), c.t("image"), c.tol("image"));
  EXPECT_TRUE(fs::exists(tmp.path() + "/out.png"));
  if (m["num_images_per_prompt"].get<int>() > 1) EXPECT_TRUE(fs::exists(tmp.path() + "/out_1.png"));
}

}  // namespace

TEST(GenerateCli, FillOneReward) { check_generate("fill_onereward_64x64"); }
TEST(GenerateCli, FillDynamic) { check_generate("fill_dynamic_64x64"); }
TEST(GenerateCli, FillNoCfg) { check_generate("fill_nocfg_base_64x64"); }
TEST(GenerateCli, FillStrength) { check_generate("fill_strength06_onereward_64x64"); }
TEST(GenerateCli, FillTwoImages) { check_generate("fill_nipp2_base_64x64"); }
TEST(GenerateCli, FillResize) { check_generate("fill_resize_onereward_64x64_from_80x72"); }
TEST(GenerateCli, ExtendPrompt) { check_generate("extend_prompt_onereward_64x96"); }
TEST(GenerateCli, ExtendNoPrompt) { check_generate("extend_noprompt_base_96x64"); }
TEST(GenerateCli, Remove) { check_generate("removal_onereward_64x64"); }
TEST(GenerateCli, RemoveLora) { check_generate("removal_lora_onereward_64x64"); }

TEST(GenerateCli, BadInputExitsWithOneLineReason) {
  TempDir tmp;
  const std::string img = golden_path("cases/fill_onereward_64x64/image.png");
  const std::string mask = golden_path("cases/fill_onereward_64x64/mask.png");
  const std::string other_mask = golden_path("cases/extend_prompt_onereward_64x96/mask.png");
  fs::path garbage = fs::path(tmp.path()) / "garbage.png";
  std::ofstream(garbage) << "not an image";
  const std::string model = golden_path("pipeline");
  const std::string out = tmp.path() + "/o.png";
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  } cases[] = {
      {{"generate", "--model", model, "--image", "/nonexistent.png", "--mask", mask, "--prompt", "x", "--out", out},
       "nonexistent.png"},
      {{"generate", "--model", model, "--image", garbage.string(), "--mask", mask, "--prompt", "x", "--out", out},
       "--image"},
      {{"generate", "--model", model, "--image", img, "--mask", other_mask, "--prompt", "x", "--out", out},
       "mask size"},
      {{"generate", "--model", model, "--image", img, "--mask", mask, "--prompt", "x", "--steps", "0", "--out", out},
       "--steps"},
      {{"generate", "--model", model, "--image", img, "--mask", mask, "--prompt", "x", "--strength", "2", "--out", out},
       "strength"},
      {{"generate", "--model", model, "--image", img, "--task", "extend", "--extend", "1,2", "--out", out}, "--extend"},
      {{"generate", "--model", model, "--image", img, "--task", "paint", "--mask", mask, "--out", out}, "--task"},
      {{"generate", "--model", "/nonexistent", "--image", img, "--mask", mask, "--prompt", "x", "--out", out},
       "/nonexistent"},
  };
  for (const auto& c : cases) {
    ToolRun r = run_tool(c.args);
    EXPECT_NE(r.code, 0) << c.needle;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line: " << r.output;
  }
}

TEST(EncodePromptCli, WritesIdsAndEmbeddings) {
  TempDir tmp;
  GoldenCase c("component_t5");
  ToolRun r = run_tool({"encode-prompt", "--model", golden_path("pipeline"), "--prompt", "nsfw", "--out-tensors",
                    tmp.path() + "/e.safetensors"});
  ASSERT_EQ(r.code, 0) << r.output;
  auto t = load_tensors(tmp.path() + "/e.safetensors");
  EXPECT_EQ(t.at("clip_input_ids").scalar_type(), torch::kInt64);
  EXPECT_EQ(t.at("t5_input_ids").sizes(), (std::vector<int64_t>{1, 512}));
  EXPECT_TRUE(t.at("t5_input_ids")[0].equal(c.t("input_ids")[1]));  // prompt 1 of the case is "nsfw"
  EXPECT_TENSOR_NEAR(t.at("prompt_embeds")[0], c.t("prompt_embeds")[1], c.tol("prompt_embeds"));
  GoldenCase clip("component_clip");
  EXPECT_TRUE(t.at("clip_input_ids")[0].equal(clip.t("input_ids")[1]));
  EXPECT_TENSOR_NEAR(t.at("pooled_prompt_embeds")[0], clip.t("pooler_output")[1], clip.tol("pooler_output"));
}

TEST(MakeTinyCli, WritesAPipelineEveryToolLoads) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/tiny";
  ToolRun r = run_tool({"make-tiny", "--out", dir, "--preset", "tiny", "--seed", "3"});
  ASSERT_EQ(r.code, 0) << r.output;
  ToolRun i = run_tool({"inspect", dir});
  EXPECT_EQ(i.code, 0) << i.output;
  EXPECT_NE(i.output.find("FluxTransformer2DModel"), std::string::npos) << i.output;
  ToolRun g = run_tool({"generate", "--model", dir, "--image", golden_path("cases/fill_onereward_64x64/image.png"),
                    "--mask", golden_path("cases/fill_onereward_64x64/mask.png"), "--prompt", "a boat", "--steps",
                    "2", "--seed", "1", "--out", tmp.path() + "/o.png"});
  EXPECT_EQ(g.code, 0) << g.output;
  EXPECT_TRUE(fs::exists(tmp.path() + "/o.png"));
}

TEST(BenchCli, StagesRunAndReportEveryStage) {
  // A smoke run (no timing asserted): every stage appears in the table and the JSON.
  TempDir tmp;
  ToolRun r = run_tool({"bench", "--what", "transformer,stages", "--presets", "tiny", "--sizes", "64", "--rows", "1,2",
                        "--iters", "1", "--warmup", "0", "--json", tmp.file("b.json")});
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* stage : {"transformer forward", "text encode", "vae encode", "vae decode", "denoise step"})
    EXPECT_NE(r.output.find(stage), std::string::npos) << stage << "\n" << r.output;
  auto j = read_json(tmp.file("b.json"));
  EXPECT_GT(j["matmul_peak_gflops"].get<double>(), 0);
  EXPECT_EQ(j["rows"].size(), 2u + 1u + 2u + 2u);  // forward x2 rows, text, vae enc/dec, step x2 rows
}

TEST(InspectCli, GoldenPipelineAndBrokenDirectory) {
  ToolRun r = run_tool({"inspect", golden_path("pipeline")});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("sharded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("text_encoder_2"), std::string::npos);
  TempDir tmp;
  fs::create_directories(tmp.path() + "/transformer");
  std::ofstream(tmp.path() + "/model_index.json") << R"({"_class_name":"FluxFillPipeline","transformer":["diffusers","FluxTransformer2DModel"],"vae":["diffusers","AutoencoderKL"]})";
  std::ofstream(tmp.path() + "/transformer/config.json") << "{broken";
  ToolRun b = run_tool({"inspect", tmp.path()});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.output.find("not valid JSON"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("MISSING"), std::string::npos) << b.output;
}
