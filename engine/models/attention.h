// Scaled dot-product attention and rotary position embeddings shared by the models.
#pragma once

#include <utility>
#include <vector>

#include <torch/torch.h>

namespace onereward::models {

/// softmax(q·kᵀ·scale + bias [+ causal mask]) · v.
/// q: [B, Sq, H, D], k/v: [B, Sk, H, D], bias: broadcastable to [B, H, Sq, Sk] or undefined.
/// Returns [B, Sq, H*D]. Softmax runs in float32 for reduced-precision inputs.
/// On libtorch >= 2.1 this uses at::scaled_dot_product_attention (flash / memory-efficient
/// kernels on CUDA); on older libtorch a blocked CPU path keeps the score tile in cache.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                        const torch::Tensor& bias = {}, bool causal = false);

/// FLUX 3-axis rotary embedding (diffusers FluxPosEmbed): ids [S, n_axes] -> (cos, sin),
/// each [S, sum(axes_dims)] float32, interleaved-real layout (repeat_interleave 2).
std::pair<torch::Tensor, torch::Tensor> flux_rope(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims,
                                                  double theta = 10000.0);

/// Applies rotary embedding to x: [B, S, H, D] with cos/sin [S, D] (pairs (2i, 2i+1) rotate).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace onereward::models
