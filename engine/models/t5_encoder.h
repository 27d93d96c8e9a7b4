// T5 v1.1 encoder (transformers T5EncoderModel), FLUX's `text_encoder_2`: its last hidden
// state is the transformer's text sequence. Module names mirror the checkpoint keys:
//   shared.weight                        (the only embedding stored; encoder.embed_tokens is tied)
//   encoder.block.N.layer.0.SelfAttention.{q,k,v,o}.weight
//   encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight   (block 0 only, shared)
//   encoder.block.N.layer.0.layer_norm.weight
//   encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo | wi,wo}.weight
//   encoder.block.N.layer.1.layer_norm.weight
//   encoder.final_layer_norm.weight
// Reference: transformers modeling_t5.py (main @ d6751d91, 2024-08-16).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint/weights.h"

namespace onereward::models {

/// Feed-forward activations T5 configs use (`dense_act_fn`).
enum class T5Activation {
  kRelu,      ///< "relu" (original T5)
  kGeluNew,   ///< "gelu_new": 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x³))) written out
  kGeluTanh,  ///< "gelu_pytorch_tanh": torch's fused tanh approximation (same formula)
  kGelu,      ///< "gelu": exact erf GELU
  kSilu,      ///< "silu" / "swish"
};

/// Typed view of a T5Config config.json.
struct T5EncoderConfig {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t num_layers = 6;
  int64_t num_heads = 8;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  /// As T5Config resolves them: derived from feed_forward_proj ("relu", "gated-gelu" ->
  /// gelu_new + gated, "gated-X" -> X + gated), then overridden by explicit `dense_act_fn` /
  /// `is_gated_act` fields (FLUX: "gated-gelu" with dense_act_fn "gelu_pytorch_tanh").
  std::string feed_forward_proj = "relu";
  std::string dense_act_fn = "relu";
  T5Activation act = T5Activation::kRelu;
  bool is_gated_act = false;

  int64_t inner_dim() const { return num_heads * d_kv; }
  static T5EncoderConfig from_json_file(const std::string& path);
  /// A transformers-compatible config.json object (for writing tiny pipelines).
  nlohmann::json to_json() const;
};

/// transformers T5Attention._relative_position_bucket, ported op for op (including the
/// float32 log and the truncating cast) so the bucket of every offset matches exactly.
/// relative_position: int64 tensor (memory - query position) -> int64 buckets, same shape.
torch::Tensor t5_relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                          int64_t num_buckets, int64_t max_distance);

class T5StackImpl;

class T5EncoderModelImpl : public torch::nn::Module {
 public:
  explicit T5EncoderModelImpl(const T5EncoderConfig& cfg);
  // input_ids: [B, S] int64 (no attention mask: FLUX attends the padding too) -> [B, S, d_model]
  torch::Tensor forward(const torch::Tensor& input_ids);
  /// Position bias of block 0 for a length-S sequence: [1, num_heads, S, S] in the weights'
  /// dtype (every block adds the same bias). It depends only on S and the bias table, so it
  /// is computed once per length and kept (a few lengths at most; 32 MiB for T5-XXL at
  /// S = 512 in bf16). Computing it costs more than the whole tiny encoder's forward.
  torch::Tensor position_bias(int64_t seq_len);
  const T5EncoderConfig& config() const { return cfg_; }

  /// transformers keeps `wo` in float32 when loading in float16 (T5's _keep_in_fp32_modules:
  /// T5-XXL's FF output overflows fp16). Call after loading fp16 weights; the FF input is then
  /// cast to fp32 and the residual stream becomes fp32 from the first FF on, as in the
  /// reference. (bf16 is not affected, there as here.)
  void keep_wo_in_fp32();

  torch::Tensor shared;  ///< [vocab, d_model] token embedding (the `shared` module's weight)

 private:
  torch::Tensor compute_position_bias(int64_t seq_len);

  T5EncoderConfig cfg_;
  std::shared_ptr<T5StackImpl> encoder;

  struct BiasEntry {
    int64_t seq_len;
    torch::Tensor table;  ///< alias of the bias table's storage it was computed from
    torch::Tensor bias;
  };
  std::mutex bias_mu_;  ///< forwards may run concurrently from several threads
  std::vector<BiasEntry> bias_cache_;
};
TORCH_MODULE(T5EncoderModel);

/// Reads `dir`/config.json, builds the encoder and loads `dir`'s safetensors strictly onto
/// `placement`. Tolerated, as transformers' T5EncoderModel does: a stored
/// `encoder.embed_tokens.weight` (tied to `shared.weight`; used as `shared` when that is
/// absent) and `decoder.*` / `lm_head.*` keys of a full encoder-decoder checkpoint. Applies
/// keep_wo_in_fp32() for float16 placements.
T5EncoderModel load_t5_encoder(const std::string& dir, const TensorPlacement& placement);

}  // namespace onereward::models
