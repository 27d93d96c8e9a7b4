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

json transformer_json(const models::FluxTransformerConfig& c) {
  return {{"_class_name", "FluxTransformer2DModel"}, {"attention_head_dim", c.attention_head_dim},
          {"axes_dims_rope", c.axes_dims_rope},      {"guidance_embeds", c.guidance_embeds},
          {"in_channels", c.in_channels},            {"joint_attention_dim", c.joint_attention_dim},
          {"num_attention_heads", c.num_attention_heads}, {"num_layers", c.num_layers},
          {"num_single_layers", c.num_single_layers}, {"out_channels", c.out_channels},
          {"patch_size", 1},                         {"pooled_projection_dim", c.pooled_projection_dim}};
}

json vae_json(bool real) {
  const std::vector<int> ch = real ? std::vector<int>{128, 256, 512, 512} : std::vector<int>{16, 32, 32, 64};
  return {{"_class_name", "AutoencoderKL"},
          {"act_fn", "silu"},
          {"block_out_channels", ch},
          {"down_block_types", std::vector<std::string>(4, "DownEncoderBlock2D")},
          {"up_block_types", std::vector<std::string>(4, "UpDecoderBlock2D")},
          {"force_upcast", true},
          {"in_channels", 3},
          {"out_channels", 3},
          {"latent_channels", 16},
          {"latents_mean", nullptr},
          {"latents_std", nullptr},
          {"layers_per_block", real ? 2 : 1},
          {"mid_block_add_attention", true},
          {"norm_num_groups", real ? 32 : 8},
          {"sample_size", 1024},
          {"scaling_factor", 0.3611},
          {"shift_factor", 0.1159},
          {"use_quant_conv", false},
          {"use_post_quant_conv", false}};
}

json clip_json(int64_t hidden) {
  return {{"architectures", {"CLIPTextModel"}}, {"attention_dropout", 0.0}, {"bos_token_id", 0},
          {"dropout", 0.0}, {"eos_token_id", 2}, {"hidden_act", "quick_gelu"}, {"hidden_size", hidden},
          {"initializer_factor", 1.0}, {"initializer_range", 0.02}, {"intermediate_size", 2 * hidden},
          {"layer_norm_eps", 1e-5}, {"max_position_embeddings", 77}, {"model_type", "clip_text_model"},
          {"num_attention_heads", 2}, {"num_hidden_layers", hidden > 64 ? 1 : 2}, {"pad_token_id", 1},
          {"projection_dim", hidden}, {"torch_dtype", "float32"}, {"vocab_size", 49408}};
}

json t5_json(int64_t d_model) {
  const bool big = d_model > 64;
  return {{"architectures", {"T5EncoderModel"}}, {"d_ff", big ? 256 : 64}, {"d_kv", 8}, {"d_model", d_model},
          {"decoder_start_token_id", 0}, {"dense_act_fn", "gelu_pytorch_tanh"}, {"dropout_rate", 0.1},
          {"eos_token_id", 1}, {"feed_forward_proj", "gated-gelu"}, {"initializer_factor", 1.0},
          {"is_encoder_decoder", true}, {"is_gated_act", true}, {"layer_norm_epsilon", 1e-6},
          {"model_type", "t5"}, {"num_decoder_layers", big ? 1 : 2}, {"num_heads", 4},
          {"num_layers", big ? 1 : 2}, {"pad_token_id", 0}, {"relative_attention_max_distance", 128},
          {"relative_attention_num_buckets", 32}, {"tie_word_embeddings", false}, {"torch_dtype", "float32"},
          {"vocab_size", 32128}};
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

    const auto tcfg = transformer_preset(preset);
    write_json(root / "transformer" / "config.json", transformer_json(tcfg));
    {
      models::FluxTransformer m(models::FluxTransformerConfig::from_json_file((root / "transformer/config.json").string()));
      models::randomize_parameters(*m, seed + 1);
      save_module(*m, root / "transformer" / "diffusion_pytorch_model.safetensors");
    }
    write_json(root / "vae" / "config.json", vae_json(bench));
    {
      models::AutoencoderKL m(models::VaeConfig::from_json_file((root / "vae/config.json").string()));
      models::randomize_parameters(*m, seed + 2);
      save_module(*m, root / "vae" / "diffusion_pytorch_model.safetensors");
    }
    write_json(root / "text_encoder" / "config.json", clip_json(tcfg.pooled_projection_dim));
    {
      models::ClipTextModel m(models::ClipTextConfig::from_json_file((root / "text_encoder/config.json").string()));
      models::randomize_parameters(*m, seed + 3);
      save_module(*m, root / "text_encoder" / "model.safetensors");
    }
    write_json(root / "text_encoder_2" / "config.json", t5_json(tcfg.joint_attention_dim));
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
