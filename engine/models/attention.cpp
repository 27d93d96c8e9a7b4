#include "engine/models/attention.h"

#include <torch/version.h>

#include <algorithm>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define ONEREWARD_HAVE_SDPA 1
#endif

namespace onereward::models {
namespace {

// Blocked attention for libtorch without SDPA. For each (batch, head) pair and block of
// query rows, the score tile [rows, Sk] stays small enough to live in cache, so the
// softmax and the second matmul read it from there instead of from a full
// [B, H, Sq, Sk] tensor in memory. Both matmuls run through BLAS (mm_out).
[[maybe_unused]] torch::Tensor blocked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                double scale, const torch::Tensor& bias, bool causal) {
  const int64_t B = q.size(0), Sq = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t Sk = k.size(1);
  const bool low_precision = q.scalar_type() != torch::kFloat32 && q.scalar_type() != torch::kFloat64;
  // [B, H, S, D] contiguous, scale folded into q.
  torch::Tensor qh = q.permute({0, 2, 1, 3});
  qh = (scale != 1.0 ? qh * scale : qh).contiguous();
  torch::Tensor kh = k.permute({0, 2, 1, 3}).contiguous();
  torch::Tensor vh = v.permute({0, 2, 1, 3}).contiguous();
  torch::Tensor out = torch::empty({B, Sq, H, D}, q.options());
  torch::Tensor bias_b;
  if (bias.defined()) bias_b = bias.expand({B, H, Sq, Sk});

  // ~2 MiB score tile.
  const int64_t block = std::max<int64_t>(16, std::min<int64_t>(Sq, (1 << 19) / std::max<int64_t>(Sk, 1)));
  auto score_opts = q.options().dtype(low_precision ? torch::kFloat32 : q.scalar_type());
  torch::Tensor scores = torch::empty({block, Sk}, q.options());
  torch::Tensor probs = torch::empty({block, Sk}, score_opts);
  torch::Tensor causal_mask;
  if (causal) {
    causal_mask = torch::full({Sq, Sk}, -std::numeric_limits<float>::infinity(), score_opts).triu(1);
  }
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      torch::Tensor qbh = qh[b][h], kbh = kh[b][h].t(), vbh = vh[b][h];
      torch::Tensor obh = out.select(0, b).select(1, h);  // [Sq, D], row stride H*D
      for (int64_t r0 = 0; r0 < Sq; r0 += block) {
        const int64_t n = std::min(block, Sq - r0);
        torch::Tensor s = scores.narrow(0, 0, n);
        at::mm_out(s, qbh.narrow(0, r0, n), kbh);
        torch::Tensor sf = low_precision ? s.to(torch::kFloat32) : s;
        if (bias_b.defined()) sf.add_(bias_b[b][h].narrow(0, r0, n));
        if (causal) sf.add_(causal_mask.narrow(0, r0, n));
        torch::Tensor p = probs.narrow(0, 0, n);
        at::_softmax_out(p, sf, /*dim=*/1, /*half_to_float=*/false);
        torch::Tensor pv = low_precision ? p.to(q.scalar_type()) : p;
        obh.narrow(0, r0, n).copy_(at::mm(pv, vbh));
      }
    }
  }
  return out.view({B, Sq, H * D});
}

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                        const torch::Tensor& bias, bool causal) {
#ifdef ONEREWARD_HAVE_SDPA
  {
    const int64_t B = q.size(0), Sq = q.size(1), H = q.size(2), D = q.size(3);
    c10::optional<torch::Tensor> mask;
    if (bias.defined()) {
      torch::Tensor m = bias.to(q.scalar_type());
      if (causal) {
        m = m + torch::full({Sq, k.size(1)}, -std::numeric_limits<float>::infinity(), q.options()).triu(1);
      }
      mask = m;
    }
    torch::Tensor o = at::scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                       mask, 0.0, causal && !bias.defined(), scale);
    return o.transpose(1, 2).reshape({B, Sq, H * D});
  }
#else
  return blocked_attention(q, k, v, scale, bias, causal);
#endif
}

std::pair<torch::Tensor, torch::Tensor> flux_rope(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims,
                                                  double theta) {
  // Per axis i: freqs = 1 / theta^(arange(0, d, 2) / d) in float64; angles = pos ⊗ freqs;
  // cos/sin repeated twice along the last dim (interleaved pairs), then cast to float32.
  std::vector<torch::Tensor> coss, sins;
  torch::Tensor pos_all = ids.to(torch::kCPU).to(torch::kFloat64);
  for (size_t i = 0; i < axes_dims.size(); ++i) {
    const int64_t d = axes_dims[i];
    torch::Tensor idx = torch::arange(0, d, 2, torch::kFloat64).narrow(0, 0, d / 2);
    torch::Tensor freqs = 1.0 / torch::pow(theta, idx / static_cast<double>(d));
    // The reference computes pos in the ids' dtype (float32) before promoting.
    torch::Tensor pos = ids.select(1, static_cast<int64_t>(i)).to(torch::kCPU).to(torch::kFloat32).to(torch::kFloat64);
    torch::Tensor ang = torch::outer(pos, freqs);
    coss.push_back(ang.cos().repeat_interleave(2, 1).to(torch::kFloat32));
    sins.push_back(ang.sin().repeat_interleave(2, 1).to(torch::kFloat32));
  }
  return {torch::cat(coss, -1).to(ids.device()), torch::cat(sins, -1).to(ids.device())};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  // out = x * cos + rotate(x) * sin, rotate((a, b)) = (-b, a) on each pair; float32 math.
  const int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor pairs = xf.view({B, S, H, D / 2, 2});
  torch::Tensor rot = torch::stack({pairs.select(-1, 1).neg(), pairs.select(-1, 0)}, -1).view({B, S, H, D});
  torch::Tensor c = cos.view({1, S, 1, D});
  torch::Tensor s = sin.view({1, S, 1, D});
  torch::Tensor out = xf * c + rot * s;
  return out.to(x.scalar_type());
}

}  // namespace onereward::models
