// Building blocks shared by the models: a Linear with unmerged per-row LoRA adapters,
// weight-only RMS norm, and the per-forward context that carries adapter weights per row.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

namespace onereward::models {

/// Per-forward state shared by every layer of one model call.
struct ForwardContext {
  /// adapter_rows[slot]: float tensor [B] with the weight of adapter `slot` for each batch row
  /// (undefined when no row uses that adapter). Slots are the model's adapter indices.
  std::vector<torch::Tensor> adapter_rows;
};

/// y = x·Wᵀ + b, plus Σ_adapters w_row · scale · (x·Aᵀ)·Bᵀ (unmerged LoRA, per batch row).
/// Parameter names match torch.nn.Linear (`weight` [out, in], `bias` [out]).
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool with_bias = true);
  // x: [B, ..., in] -> [B, ..., out]
  torch::Tensor forward(const torch::Tensor& x, const ForwardContext* ctx = nullptr);

  /// Attaches adapter `slot` (A = lora_A [r, in], B = lora_B [out, r], scale = alpha / r).
  void set_adapter(size_t slot, torch::Tensor down, torch::Tensor up, double scale);
  void clear_adapters() { adapters_.clear(); }
  bool has_adapter(size_t slot) const { return slot < adapters_.size() && adapters_[slot].down.defined(); }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  torch::Tensor weight;
  torch::Tensor bias;

 private:
  struct Lora {
    torch::Tensor down, up;
    double scale = 1.0;
  };
  int64_t in_, out_;
  std::vector<Lora> adapters_;
};
TORCH_MODULE(Linear);

/// RMS norm with a learned scale (`weight` [dim]); computed in float32 like the reference.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

/// LayerNorm with optional affine parameters (`weight`, `bias`).
class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps, bool affine);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  int64_t dim_;
  double eps_;
};
TORCH_MODULE(LayerNorm);

/// Registers a child `name` holding just a `weight` [rows, dim] (an nn.Embedding in the
/// reference, so the key reads `<name>.weight`) and returns that parameter.
torch::Tensor register_embedding(torch::nn::Module& parent, const std::string& name, int64_t rows, int64_t dim);

/// Sinusoidal timestep embedding (diffusers get_timestep_embedding with
/// flip_sin_to_cos=True, downscale_freq_shift=0, scale=1, max_period=10000).
// t: [B] -> [B, dim] float32
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim);

/// Visits every Linear of a module tree with its dotted path ("transformer_blocks.0.attn.to_q").
void for_each_linear(torch::nn::Module& root, const std::function<void(const std::string&, LinearImpl&)>& fn);

/// Fills parameters with PyTorch-default-like random values (for tiny/bench models):
/// matrices U(±1/sqrt(fan_in)), their biases likewise, 1-D norm weights 1, norm biases 0.
void randomize_parameters(torch::nn::Module& module, uint64_t seed);

/// Total number of parameter elements.
int64_t count_parameters(torch::nn::Module& module);

}  // namespace onereward::models
