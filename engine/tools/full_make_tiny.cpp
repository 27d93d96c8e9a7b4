// `onereward-engine make-tiny --out DIR [--preset tiny|bench] [--seed N]`: writes a random
// FluxFillPipeline in diffusers layout (configs, safetensors weights, the real CLIP and T5
// tokenizer files) that every tool and the server load like a real checkpoint.
//   tiny:  the golden reference's shapes (inner dim 32, 2+2 blocks, a 4-level 16..64 VAE).
//   bench: the FLUX.1-Fill-dev transformer with 2 double / 4 single blocks and 8 heads of 128,
//          FLUX.1's real VAE, and text encoders of the real output widths but one layer.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "engine/checkpoint/weights.h"
#include "engine/models/clip_text.h"
#include "engine/models/flux_transformer.h"
#include "engine/models/t5_encoder.h"
#include "engine/models/vae.h"
#include "engine/tools/commands.h"
#include "engine/tools/presets.h"
#include "engine/util/status.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace onereward::tools {
namespace {

void write_json(const fs::path& p, const json& j) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p);
  if (!out) throw_error(StatusCode::kNotFound, p.string() + ": cannot write");
  out << j.dump(2) << "\n";
}

void save_module(torch::nn::Module& m, const fs::path& file) {
  std::map<std::string, torch::Tensor> t;
  for (const auto& p : m.named_parameters(true)) t[p.key()] = p.value();
  for (const auto& b : m.named_buffers(true)) t[b.key()] = b.value();
  save_tensors(file.string(), t, {{"format", "pt"}});
}

int run_make_tiny(const std::string& out, const std::string& preset, uint64_t seed, const std::string& tokenizers) {
  try {
    torch::NoGradGuard ng;
    const bool bench = preset == "bench";
    if (!bench && preset != "tiny") return std::cerr << "error: --preset must be tiny or bench\n", 2;
    const fs::path root(out);
    fs::create_directories(root);
    for (const char* t : {"tokenizer", "tokenizer_2"}) {
      const fs::path src = fs::path(tokenizers) / t;
      if (!fs::is_directory(src)) throw_error(StatusCode::kNotFound, src.string() + ": tokenizer files not found");
      fs::create_directories(root / t);
      fs::copy(src, root / t, fs::copy_options::overwrite_existing | fs::copy_options::recursive);
    }
    write_json(root / "model_index.json",
               {{"_class_name", "FluxFillPipeline"},
                {"scheduler", {"diffusers", "FlowMatchEulerDiscreteScheduler"}},
                {"text_encoder", {"transformers", "CLIPTextModel"}},
                {"text_encoder_2", {"transformers", "T5EncoderModel"}},
                {"tokenizer", {"transformers", "CLIPTokenizer"}},
                {"tokenizer_2", {"transformers", "T5TokenizerFast"}},
                {"transformer", {"diffusers", "FluxTransformer2DModel"}},
                {"vae", {"diffusers", "AutoencoderKL"}}});
    write_json(root / "scheduler" / "scheduler_config.json",
               {{"_class_name", "FlowMatchEulerDiscreteScheduler"}, {"base_image_seq_len", 256}, {"base_shift", 0.5},
                {"max_image_seq_len", 4096}, {"max_shift", 1.15}, {"num_train_timesteps", 1000}, {"shift", 3.0},
                {"use_dynamic_shifting", true}});

    const PipelinePreset pp = pipeline_preset(preset);
    const auto& tcfg = pp.transformer;
    write_json(root / "transformer" / "config.json", tcfg.to_json());
    {
      models::FluxTransformer m(models::FluxTransformerConfig::from_json_file((root / "transformer/config.json").string()));
      models::randomize_parameters(*m, seed + 1);
      save_module(*m, root / "transformer" / "diffusion_pytorch_model.safetensors");
    }
    write_json(root / "vae" / "config.json", pp.vae.to_json());
    {
      models::AutoencoderKL m(models::VaeConfig::from_json_file((root / "vae/config.json").string()));
      models::randomize_parameters(*m, seed + 2);
      save_module(*m, root / "vae" / "diffusion_pytorch_model.safetensors");
    }
    write_json(root / "text_encoder" / "config.json", pp.clip.to_json());
    {
      models::ClipTextModel m(models::ClipTextConfig::from_json_file((root / "text_encoder/config.json").string()));
      models::randomize_parameters(*m, seed + 3);
      save_module(*m, root / "text_encoder" / "model.safetensors");
    }
    write_json(root / "text_encoder_2" / "config.json", pp.t5.to_json());
    {
      models::T5EncoderModel m(models::T5EncoderConfig::from_json_file((root / "text_encoder_2/config.json").string()));
      models::randomize_parameters(*m, seed + 4);
      save_module(*m, root / "text_encoder_2" / "model.safetensors");
    }
    std::cerr << "wrote " << preset << " pipeline to " << out << "\n";
    return 0;
  } catch (...) {
    std::cerr << "error: " << status_from_current_exception().message() << "\n";
    return 1;
  }
}

}  // namespace

void register_make_tiny(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("make-tiny", "Write a random pipeline in diffusers layout (tiny or bench preset)");
  auto out = std::make_shared<std::string>();
  auto preset = std::make_shared<std::string>("tiny");
  auto seed = std::make_shared<uint64_t>(0);
  auto tok = std::make_shared<std::string>(ONEREWARD_ASSETS_DIR);
  cmd->add_option("--out", *out, "output directory")->required();
  cmd->add_option("--preset", *preset, "tiny or bench")->capture_default_str();
  cmd->add_option("--seed", *seed, "weight seed")->capture_default_str();
  cmd->add_option("--tokenizers", *tok, "folder holding tokenizer/ and tokenizer_2/")->capture_default_str();
  cmd->callback([=] { *exit_code = run_make_tiny(*out, *preset, *seed, *tok); });
}

}  // namespace onereward::tools
