#include "engine/models/attention.h"

#include <torch/version.h>

#include <algorithm>
#include <limits>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define ONEREWARD_HAVE_SDPA 1
#endif

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define ONEREWARD_HAVE_DLSYM 1
#endif

namespace onereward::models {
namespace {

// ---------------------------------------------------------------------------------------------
// Blocked CPU attention (the path for libtorch without SDPA).
//
// Work is split into items of (batch, head, block of query rows). For each item the score
// tile [rows, Sk] stays small enough to live in cache, so the softmax and the second matmul
// read it from there instead of from a full [B, H, Sq, Sk] tensor in memory. Both matmuls
// run through BLAS (mm_out).
//
// The items are independent, so they are spread over worker threads that each run a whole
// item (GEMM, softmax, GEMM) single-threaded. Parallelising only the matmuls (what BLAS does
// on its own) leaves the softmax, O(Sq * Sk * heads), on libtorch's intra-op threads, which
// with an OpenBLAS build are often fewer than the cores BLAS uses; raising libtorch's thread
// count instead makes both pools compete for the same cores.
//
// Worker count: the cores OpenBLAS uses divided by libtorch's intra-op threads (each
// worker's element-wise ops still use libtorch's pool). While workers run, OpenBLAS is held
// at one thread so their GEMMs do not fight over its pool. With any other BLAS (whose thread
// count follows libtorch's, e.g. MKL) the items run in order on the calling thread, as do
// problems too small to repay starting threads. An item's values do not depend on which
// worker runs it; a single-threaded BLAS may round differently from a multi-threaded one by
// an ulp, so one worker and several can differ at that level, and several never differ.
// ---------------------------------------------------------------------------------------------

// OpenBLAS's process-wide thread count, found at run time when the BLAS that libtorch calls
// is OpenBLAS (it exports these symbols); both null otherwise.
struct OpenBlasThreadFns {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;
};

const OpenBlasThreadFns& openblas_thread_fns() {
  static const OpenBlasThreadFns fns = [] {
    OpenBlasThreadFns f;
#ifdef ONEREWARD_HAVE_DLSYM
    f.get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    f.set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (f.get == nullptr || f.set == nullptr) f = OpenBlasThreadFns{};
#endif
    return f;
  }();
  return fns;
}

// Holds OpenBLAS at one thread for its lifetime. Holders may overlap (attention running on
// several caller threads); the first saves the thread count, the last restores it.
class SerialBlasScope {
 public:
  SerialBlasScope() {
    const auto& fns = openblas_thread_fns();
    if (fns.set == nullptr) return;
    std::lock_guard<std::mutex> lock(mu());
    if (holders()++ == 0) {
      saved() = fns.get();
      fns.set(1);
    }
  }
  ~SerialBlasScope() {
    const auto& fns = openblas_thread_fns();
    if (fns.set == nullptr) return;
    std::lock_guard<std::mutex> lock(mu());
    if (--holders() == 0) fns.set(saved());
  }
  SerialBlasScope(const SerialBlasScope&) = delete;
  SerialBlasScope& operator=(const SerialBlasScope&) = delete;

  // OpenBLAS's thread count outside any scope (0 when the BLAS is not OpenBLAS).
  static int blas_threads() {
    const auto& fns = openblas_thread_fns();
    if (fns.get == nullptr) return 0;
    std::lock_guard<std::mutex> lock(mu());
    return holders() > 0 ? saved() : fns.get();
  }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static int& holders() {
    static int n = 0;
    return n;
  }
  static int& saved() {
    static int n = 1;
    return n;
  }
};

// Below this many matmul FLOPs the whole attention takes well under a millisecond and
// starting threads would cost more than it saves (text encoders' short prompts).
constexpr double kMinParallelFlops = 8e6;

// Score tile per worker: ~2 MiB of fp32 scores, about a core's L2 here. 1 MiB and 0.5 MiB
// tiles were no faster at head dim 16 and slower at head dim 128 (shorter GEMMs).
constexpr int64_t kTileElems = int64_t{1} << 19;

int attention_workers(int64_t items, double flops) {
  if (items < 2 || at::in_parallel_region()) return 1;
  if (const char* env = std::getenv("ONEREWARD_ATTENTION_THREADS")) {
    const int64_t v = std::atoll(env);
    if (v > 0) return static_cast<int>(std::min<int64_t>(v, items));
  }
  if (flops < kMinParallelFlops) return 1;
  const int64_t n = SerialBlasScope::blas_threads() / std::max(1, at::get_num_threads());
  return static_cast<int>(std::clamp<int64_t>(n, 1, items));
}

}  // namespace

torch::Tensor blocked_cpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    double scale, const torch::Tensor& bias, bool causal, int workers) {
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

  const int64_t block = std::max<int64_t>(16, std::min<int64_t>(Sq, kTileElems / std::max<int64_t>(Sk, 1)));
  const int64_t blocks = (Sq + block - 1) / block;
  const int64_t items = B * H * blocks;
  auto score_opts = q.options().dtype(low_precision ? torch::kFloat32 : q.scalar_type());
  torch::Tensor causal_mask;
  if (causal) {
    causal_mask = torch::full({Sq, Sk}, -std::numeric_limits<float>::infinity(), score_opts).triu(1);
  }
  if (!q.is_cpu()) {
    workers = 1;  // other devices parallelise inside each op
  } else if (workers <= 0) {
    workers = attention_workers(items, 4.0 * B * H * Sq * Sk * D);
  }
  workers = static_cast<int>(std::clamp<int64_t>(workers, 1, std::max<int64_t>(items, 1)));

  // Items in (b, h, block) order: consecutive items share K and V.
  std::atomic<int64_t> next{0};
  auto run_items = [&] {
    torch::Tensor scores = torch::empty({block, Sk}, q.options());
    torch::Tensor probs = torch::empty({block, Sk}, score_opts);
    for (int64_t i = next.fetch_add(1); i < items; i = next.fetch_add(1)) {
      const int64_t bh = i / blocks, r0 = (i % blocks) * block;
      const int64_t b = bh / H, h = bh % H;
      const int64_t n = std::min(block, Sq - r0);
      torch::Tensor s = scores.narrow(0, 0, n);
      at::mm_out(s, qh[b][h].narrow(0, r0, n), kh[b][h].t());
      torch::Tensor sf = low_precision ? s.to(torch::kFloat32) : s;
      if (bias_b.defined()) sf.add_(bias_b[b][h].narrow(0, r0, n));
      if (causal) sf.add_(causal_mask.narrow(0, r0, n));
      torch::Tensor p = probs.narrow(0, 0, n);
      at::_softmax_out(p, sf, /*dim=*/1, /*half_to_float=*/false);
      torch::Tensor pv = low_precision ? p.to(q.scalar_type()) : p;
      // [n, D] rows of out[b, :, h, :] (row stride H*D).
      torch::Tensor o = out.select(0, b).select(1, h).narrow(0, r0, n);
      at::mm_out(o, pv, vh[b][h]);
    }
  };

  if (workers == 1) {
    run_items();
  } else {
    SerialBlasScope serial_blas;
    const at::ThreadLocalState tls;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(workers - 1));
    for (int w = 1; w < workers; ++w) {
      try {
        threads.emplace_back([&, w] {
          try {
            at::ThreadLocalStateGuard guard(tls);
            run_items();
          } catch (...) {
            errors[static_cast<size_t>(w)] = std::current_exception();
            next.store(items);
          }
        });
      } catch (const std::system_error&) {
        break;  // no more threads: the ones started (and this one) take all the items
      }
    }
    try {
      run_items();
    } catch (...) {
      errors[0] = std::current_exception();
      next.store(items);
    }
    for (auto& t : threads) t.join();
    for (auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }
  return out.view({B, Sq, H * D});
}

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
  return blocked_cpu_attention(q, k, v, scale, bias, causal, /*workers=*/0);
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
