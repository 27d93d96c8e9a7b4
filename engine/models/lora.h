// LoRA adapters for the FLUX transformer, applied unmerged and per batch row
// (y = x·Wᵀ + w_row · (alpha/r) · (x·Aᵀ)·Bᵀ), so base weights stay shared and read-only and
// jobs with different adapters or weights can share one transformer call.
//
// Accepted key formats (all map to the transformer's module paths):
//   diffusers / PEFT:  transformer.<module>.lora_A.weight, .lora_B.weight [, transformer.<module>.alpha]
//   PEFT raw:          base_model.model.<module>.lora_A.weight ... or <module>.lora_A.weight
//   down/up naming:    <prefix><module>.lora_down.weight, .lora_up.weight [, <module>.alpha]
// Not accepted (an error names the first such key): kohya `lora_unet_*` names, BFL-style
// fused-qkv names (double_blocks.N.img_attn.qkv), and text-encoder adapters.
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>

#include "engine/models/flux_transformer.h"

namespace onereward::models {

struct LoraModule {
  torch::Tensor down;  ///< lora_A [r, in]
  torch::Tensor up;    ///< lora_B [out, r]
  double scale = 1.0;  ///< alpha / r (1 without alpha, as diffusers/PEFT default lora_alpha = r)
};

struct LoraAdapter {
  std::string name;
  std::string path;
  int64_t rank = 0;
  std::map<std::string, LoraModule> modules;  ///< transformer module path -> weights
};

/// Reads a LoRA safetensors file (or a directory holding pytorch_lora_weights.safetensors).
/// Errors (kDataLoss / kNotFound) name the file and the offending key.
LoraAdapter load_lora(const std::string& name, const std::string& path);

/// Attaches the adapter to `model` in `slot`. Every adapter module must name a Linear of the
/// model with matching shapes, else Error(kDataLoss) naming the key.
void attach_lora(FluxTransformerImpl& model, const LoraAdapter& adapter, size_t slot);

}  // namespace onereward::models
