// `onereward-engine encode-prompt --model DIR --prompt S [--prompt-2 S] --out-tensors F`:
// the text encoders alone; writes clip_input_ids, t5_input_ids (int64), pooled_prompt_embeds
// and prompt_embeds (float32) for one prompt.
#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>

#include "engine/checkpoint/weights.h"
#include "engine/pipeline/prompt_encoder.h"
#include "engine/tools/commands.h"
#include "engine/util/status.h"

namespace onereward::tools {
namespace {

struct EncodeArgs {
  std::string model, prompt, prompt_2, out, device = "cpu", dtype = "fp32";
  bool has_prompt_2 = false;
  int64_t max_sequence_length = 512;
};

int run_encode(const EncodeArgs& a) {
  try {
    c10::InferenceMode guard;
    pipeline::PromptEncoderOptions po;
    po.placement.device = torch::Device(a.device);
    po.placement.dtype = parse_dtype_name(a.dtype);
    if (a.max_sequence_length < 1 || a.max_sequence_length > 512)
      throw_error(StatusCode::kInvalidArgument, "--max-sequence-length must be in [1, 512]");
    auto enc = pipeline::PromptEncoder::load(a.model, po);
    const std::vector<std::string> p{a.prompt};
    const std::vector<std::string> p2 = a.has_prompt_2 ? std::vector<std::string>{a.prompt_2} : std::vector<std::string>{};
    const auto t0 = std::chrono::steady_clock::now();
    pipeline::PromptTokens tok = enc.tokenize(p, p2, a.max_sequence_length);
    pipeline::PromptEmbeds e = enc.encode_tokens(tok);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    save_tensors(a.out, {{"clip_input_ids", tok.clip_input_ids.to(torch::kInt64)},
                         {"t5_input_ids", tok.t5_input_ids.to(torch::kInt64)},
                         {"pooled_prompt_embeds", e.pooled_prompt_embeds.to(torch::kCPU).to(torch::kFloat32)},
                         {"prompt_embeds", e.prompt_embeds.to(torch::kCPU).to(torch::kFloat32)}});
    std::cerr << "encoded in " << ms << " ms -> " << a.out << "\n";
    return 0;
  } catch (...) {
    std::cerr << "error: " << status_from_current_exception().message() << "\n";
    return 1;
  }
}

}  // namespace

void register_encode_prompt(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("encode-prompt", "Run the text encoders on one prompt and save ids and embeddings");
  auto a = std::make_shared<EncodeArgs>();
  cmd->add_option("--model", a->model, "diffusers pipeline directory")->required();
  cmd->add_option("--prompt", a->prompt, "prompt (CLIP; also T5 unless --prompt-2)")->required();
  auto* p2 = cmd->add_option("--prompt-2", a->prompt_2, "T5 prompt (default: --prompt)");
  cmd->add_option("--out-tensors", a->out, "output .safetensors")->required();
  cmd->add_option("--max-sequence-length", a->max_sequence_length, "T5 tokens")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "fp32 or bf16")->capture_default_str();
  cmd->callback([a, exit_code, p2] {
    a->has_prompt_2 = p2->count() > 0;
    *exit_code = run_encode(*a);
  });
}

}  // namespace onereward::tools
