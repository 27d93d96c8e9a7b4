// CLIP text encoder (transformers CLIPTextModel), FLUX's `text_encoder`: only its pooled
// output conditions the transformer. Module names mirror the checkpoint keys:
//   text_model.embeddings.{token,position}_embedding.weight
//   text_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, mlp.fc1, mlp.fc2, layer_norm2}
//   text_model.final_layer_norm
// Reference: transformers modeling_clip.py (main @ d6751d91, 2024-08-16).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/checkpoint/weights.h"

namespace onereward::models {

/// Activations CLIP configs use (`hidden_act`).
enum class ClipActivation {
  kQuickGelu,  ///< "quick_gelu": x * sigmoid(1.702 x) (OpenAI CLIP, FLUX)
  kGelu,       ///< "gelu": exact erf GELU
  kGeluNew,    ///< "gelu_new": 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x³))) written out
  kGeluTanh,   ///< "gelu_pytorch_tanh" / "gelu_fast": torch's fused tanh approximation
  kRelu,       ///< "relu"
};

/// Typed view of a CLIPTextConfig config.json (every size comes from here).
struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t max_position_embeddings = 77;
  double layer_norm_eps = 1e-5;
  ClipActivation hidden_act = ClipActivation::kQuickGelu;
  std::string hidden_act_name = "quick_gelu";  ///< as written in config.json
  /// Decides where the pooled output is taken (see ClipTextModelImpl::forward). FLUX's
  /// config keeps the legacy value 2; transformers' default is 49407.
  int64_t eos_token_id = 49407;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  static ClipTextConfig from_json_file(const std::string& path);
  /// A transformers-compatible config.json object (for writing tiny pipelines).
  nlohmann::json to_json() const;
};

/// Outputs of one CLIP text forward.
struct ClipTextOutput {
  torch::Tensor last_hidden_state;  ///< [B, S, hidden] after final_layer_norm
  torch::Tensor pooled;             ///< [B, hidden] (transformers' pooler_output)
};

class ClipTextTransformerImpl;

/// CLIPTextModel: its only child is `text_model` (CLIPTextTransformer), as in the checkpoint.
class ClipTextModelImpl : public torch::nn::Module {
 public:
  explicit ClipTextModelImpl(const ClipTextConfig& cfg);
  // input_ids: [B, S] int64 (S <= max_position_embeddings; FLUX passes 77 padded ids and no
  // attention mask, only the causal one) -> {[B, S, hidden], [B, hidden]}
  ClipTextOutput forward(const torch::Tensor& input_ids);
  const ClipTextConfig& config() const { return cfg_; }

 private:
  ClipTextConfig cfg_;
  std::shared_ptr<ClipTextTransformerImpl> text_model;
};
TORCH_MODULE(ClipTextModel);

/// Reads `dir`/config.json, builds the model and loads `dir`'s safetensors strictly onto
/// `placement`. The non-persistent `text_model.embeddings.position_ids` buffer that older
/// checkpoints contain is ignored; any other missing or unexpected key is an Error naming it.
ClipTextModel load_clip_text_model(const std::string& dir, const TensorPlacement& placement);

}  // namespace onereward::models
