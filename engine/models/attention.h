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
/// kernels on CUDA); on older libtorch the blocked path below keeps the score tile in cache.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                        const torch::Tensor& bias = {}, bool causal = false);

/// The blocked path of attention() (same arguments and result). On CPU tensors its work items,
/// (batch, head, block of query rows), are spread over `workers` threads, each running its own
/// single-threaded GEMMs and softmax; OpenBLAS is held at one thread (process-wide) meanwhile.
/// Results do not depend on the worker count beyond BLAS rounding (a few ulps between one
/// worker with multi-threaded BLAS and several with single-threaded BLAS). workers <= 0
/// chooses: the threads OpenBLAS uses divided by libtorch's intra-op threads; 1 with any other
/// BLAS or under ~8 MFLOP. The environment variable ONEREWARD_ATTENTION_THREADS (a count > 0)
/// overrides that choice at any size. Other devices run the items in order on the calling
/// thread.
torch::Tensor blocked_cpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    double scale, const torch::Tensor& bias = {}, bool causal = false,
                                    int workers = 0);

/// FLUX 3-axis rotary embedding (diffusers FluxPosEmbed): ids [S, n_axes] -> (cos, sin),
/// each [S, sum(axes_dims)] float32, interleaved-real layout (repeat_interleave 2).
std::pair<torch::Tensor, torch::Tensor> flux_rope(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims,
                                                  double theta = 10000.0);

/// Applies rotary embedding to x: [B, S, H, D] with cos/sin [S, D] (pairs (2i, 2i+1) rotate).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace onereward::models
