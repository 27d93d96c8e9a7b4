// `onereward-engine generate`: one job, no server. Flags are a contract (docs/DESIGN):
// --model DIR [--transformer DIR] [--lora FILE[:WEIGHT]]... --task fill|extend|remove
// --image PNG [--mask PNG] [--prompt S] [--negative-prompt S] [--steps N] [--true-cfg F]
// [--guidance F] [--seed N] [--strength F] [--width W] [--height H] [--num-images N]
// [--extend L,T,R,B] --out PNG [--out-tensors FILE] [--device cpu|cuda] [--dtype fp32|bf16]
#include <filesystem>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "engine/checkpoint/weights.h"
#include "engine/image/image.h"
#include "engine/pipeline/engine.h"
#include "engine/tools/commands.h"

namespace fs = std::filesystem;

namespace onereward::tools {
namespace {

struct GenerateArgs {
  std::string model, transformer, task = "fill", image, mask, out, out_tensors, extend;
  std::vector<std::string> loras;
  std::string prompt;
  bool has_prompt = false;
  std::string negative_prompt = kDefaultNegativePrompt;
  int steps = 50, width = 0, height = 0, num_images = 1;
  float true_cfg = 4.0f, guidance = 1.0f, strength = 1.0f;
  uint64_t seed = 0;
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
  int cpu_cache_mib = -1;  // EngineOptions' automatic limit
};

// "a,b,c,d" -> margins; false on a malformed value.
bool parse_margins(const std::string& s, Margins* m) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      int x = std::stoi(item, &used);
      if (used != item.size()) return false;
      v.push_back(x);
    } catch (...) {
      return false;
    }
  }
  if (v.size() != 4) return false;
  *m = {v[0], v[1], v[2], v[3]};
  return true;
}

// Output path for image i of n: out.png, out_1.png, ...
std::string indexed_path(const std::string& out, size_t i) {
  if (i == 0) return out;
  fs::path p(out);
  return (p.parent_path() / (p.stem().string() + "_" + std::to_string(i) + p.extension().string())).string();
}

int fail(const std::string& msg) {
  std::cerr << "error: " << msg << "\n";
  return 2;
}

int run_generate(const GenerateArgs& a) {
  FillRequest r;
  if (a.task == "fill") r.task = Task::kFill;
  else if (a.task == "extend") r.task = Task::kExtend;
  else if (a.task == "remove") r.task = Task::kRemove;
  else return fail("--task must be fill, extend or remove (got '" + a.task + "')");
  if (a.steps < 1 || a.steps > 1000) return fail("--steps must be in [1, 1000]");
  if (a.num_images < 1 || a.num_images > 16) return fail("--num-images must be in [1, 16]");
  if (a.width < 0 || a.height < 0) return fail("--width/--height must be >= 0");

  EngineOptions o;
  o.model_dir = a.model;
  if (!a.transformer.empty()) o.variants["base"] = a.transformer;
  o.device = a.device;
  o.dtype = a.dtype;
  o.threads = a.threads;
  o.cpu_buffer_cache_bytes = static_cast<int64_t>(a.cpu_cache_mib) * (int64_t{1} << 20);
  for (size_t i = 0; i < a.loras.size(); ++i) {
    std::string spec = a.loras[i];
    float w = 1.0f;
    // FILE[:WEIGHT] — the weight is after the last ':' when it parses as a number.
    auto colon = spec.rfind(':');
    if (colon != std::string::npos) {
      try {
        size_t used = 0;
        const std::string tail = spec.substr(colon + 1);
        float v = std::stof(tail, &used);
        if (used == tail.size()) {
          w = v;
          spec = spec.substr(0, colon);
        }
      } catch (...) {
      }
    }
    if (!fs::exists(spec)) return fail("--lora " + spec + ": file not found");
    const std::string name = "lora" + std::to_string(i);
    o.loras.push_back({name, spec});
    r.adapters.push_back({name, w});
  }

  try {
    r.image = image::read_file(a.image);
  } catch (const Error& e) {
    return fail("--image: " + std::string(e.what()));
  }
  if (!a.mask.empty()) {
    try {
      r.mask = image::read_file(a.mask);
    } catch (const Error& e) {
      return fail("--mask: " + std::string(e.what()));
    }
  }
  if (!a.extend.empty() && !parse_margins(a.extend, &r.extend))
    return fail("--extend must be L,T,R,B (four integers), got '" + a.extend + "'");
  if (r.task == Task::kExtend && a.extend.empty() && !r.mask) return fail("--task extend needs --extend or --mask");
  if (r.task != Task::kExtend && !r.mask) return fail("--task " + a.task + " needs --mask");
  if (a.has_prompt) r.prompts = {a.prompt};
  else if (r.task == Task::kFill) return fail("--task fill needs --prompt");
  r.negative_prompts = {a.negative_prompt};
  r.steps = a.steps;
  r.true_cfg = a.true_cfg;
  r.guidance_scale = a.guidance;
  r.strength = a.strength;
  r.seed = a.seed;
  r.width = a.width;
  r.height = a.height;
  r.num_images = a.num_images;
  r.keep_tensors = !a.out_tensors.empty();

  auto engine = Engine::load(o);
  if (!engine.ok()) return fail(engine.status().message());
  auto out = engine.value()->run(r);
  if (!out.ok()) return fail(out.status().message());
  const FillOutput& res = out.value();
  try {
    for (size_t i = 0; i < res.images.size(); ++i) image::write_file(res.images[i], indexed_path(a.out, i));
    if (!a.out_tensors.empty()) {
      std::map<std::string, torch::Tensor> t;
      t["image"] = torch::tensor(res.image_f32).view(res.image_shape);
      t["latents"] = torch::tensor(res.latents).view(res.latents_shape);
      save_tensors(a.out_tensors, t);
    }
  } catch (const Error& e) {
    return fail(e.what());
  }
  std::cerr << "generated " << res.images.size() << " image(s) " << res.width << "x" << res.height << " seed "
            << res.seed << ": text " << res.timings.text_ms << " ms, vae encode " << res.timings.vae_encode_ms
            << " ms, denoise " << res.timings.denoise_ms << " ms, vae decode " << res.timings.vae_decode_ms
            << " ms\n";
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("generate", "Run one fill / extend / remove job without a server");
  auto a = std::make_shared<GenerateArgs>();
  cmd->add_option("--model", a->model, "diffusers FluxFillPipeline directory")->required();
  cmd->add_option("--transformer", a->transformer, "transformer directory replacing MODEL/transformer");
  cmd->add_option("--lora", a->loras, "LoRA file (pytorch_lora_weights.safetensors)[:WEIGHT]; repeatable");
  cmd->add_option("--task", a->task, "fill, extend or remove")->capture_default_str();
  cmd->add_option("--image", a->image, "input image (PNG/JPEG/WebP)")->required();
  cmd->add_option("--mask", a->mask, "mask image, white = regenerate (fill/remove; extend without --extend)");
  auto* prompt = cmd->add_option("--prompt", a->prompt,
                                 "prompt (default for remove: 'remove'; extend: 'high-definition, perfect composition')");
  cmd->add_option("--negative-prompt", a->negative_prompt, "negative prompt (true CFG)")->capture_default_str();
  cmd->add_option("--steps", a->steps, "denoising steps")->capture_default_str();
  cmd->add_option("--true-cfg", a->true_cfg, "true CFG scale (<= 1 disables the negative branch)")->capture_default_str();
  cmd->add_option("--guidance", a->guidance, "distilled guidance scale")->capture_default_str();
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->add_option("--strength", a->strength, "img2img strength in (0, 1]")->capture_default_str();
  cmd->add_option("--width", a->width, "output width (0 = from the image, floored to a multiple of 16)");
  cmd->add_option("--height", a->height, "output height (0 = from the image, floored to a multiple of 16)");
  cmd->add_option("--num-images", a->num_images, "images per prompt")->capture_default_str();
  cmd->add_option("--extend", a->extend, "extend margins in pixels: L,T,R,B");
  cmd->add_option("--out", a->out, "output image (PNG/JPEG/WebP by extension; image i > 0 gets _i)")->required();
  cmd->add_option("--out-tensors", a->out_tensors, "also write float32 `image` [N,3,H,W] and packed `latents`");
  cmd->add_option("--device", a->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "fp32 or bf16")->capture_default_str();
  cmd->add_option("--threads", a->threads, "intra-op threads (0 = default)");
  cmd->add_option("--cpu-buffer-cache-mib", a->cpu_cache_mib,
                  "on CPU, keep freed tensor buffers for reuse while live + kept stay within this; "
                  "-1: half of the memory left (RAM or cgroup limit); 0: libtorch's allocator")
      ->capture_default_str();
  cmd->callback([a, exit_code, prompt] {
    a->has_prompt = prompt->count() > 0;
    *exit_code = run_generate(*a);
  });
}

}  // namespace onereward::tools
