// The blocked CPU attention kernel against the plain math path (float64 softmax(q·kᵀ·s + bias)·v),
// and its independence from the worker count: every (batch, head, row block) item computes the
// same values whichever worker runs it. With more than one worker the GEMMs run on a
// single-threaded BLAS, whose rounding may differ from the multi-threaded BLAS of a single
// worker by an ulp; any two multi-worker runs are bitwise equal.
#include <dlfcn.h>

#include <functional>
#include <initializer_list>
#include <limits>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "engine/models/attention.h"
#include "golden.h"

using namespace onereward;
using namespace onereward::testing;

namespace {

// softmax(q·kᵀ·scale + bias [+ causal]) · v in float64, [B, Sq, H*D].
torch::Tensor math_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                             const torch::Tensor& bias = {}, bool causal = false) {
  const int64_t B = q.size(0), Sq = q.size(1), H = q.size(2), D = q.size(3), Sk = k.size(1);
  auto qd = q.to(torch::kFloat64).permute({0, 2, 1, 3});
  auto kd = k.to(torch::kFloat64).permute({0, 2, 1, 3});
  auto vd = v.to(torch::kFloat64).permute({0, 2, 1, 3});
  auto s = torch::matmul(qd, kd.transpose(-1, -2)) * scale;
  if (bias.defined()) s = s + bias.to(torch::kFloat64);
  if (causal) {
    s = s + torch::full({Sq, Sk}, -std::numeric_limits<double>::infinity(), s.options()).triu(1);
  }
  auto o = torch::matmul(torch::softmax(s, -1), vd);  // [B, H, Sq, D]
  return o.permute({0, 2, 1, 3}).reshape({B, Sq, H * D});
}

struct Qkv {
  torch::Tensor q, k, v;
};

Qkv random_qkv(int64_t B, int64_t Sq, int64_t Sk, int64_t H, int64_t D, torch::ScalarType dtype = torch::kFloat32) {
  torch::manual_seed(1234);
  auto o = torch::TensorOptions().dtype(dtype);
  // Scaled up so the softmax is far from uniform.
  return {(torch::randn({B, Sq, H, D}) * 2).to(o), (torch::randn({B, Sk, H, D}) * 2).to(o),
          torch::randn({B, Sk, H, D}).to(o)};
}

// Runs with 2, 3, ... workers equal each other bitwise and the one-worker run to float rounding.
void expect_worker_independent(const torch::Tensor& one, const std::function<torch::Tensor(int)>& run,
                               std::initializer_list<int> counts) {
  torch::Tensor first;
  for (int workers : counts) {
    torch::Tensor o = run(workers);
    EXPECT_TENSOR_NEAR(o, one, 1e-5);
    if (!first.defined()) {
      first = o;
    } else {
      EXPECT_TRUE(torch::equal(o, first)) << "workers=" << workers << " max diff " << max_abs_diff(o, first);
    }
  }
}

using OpenBlasGet = int (*)();
OpenBlasGet openblas_get() {
  return reinterpret_cast<OpenBlasGet>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
}

}  // namespace

TEST(BlockedAttention, MatchesMathPathAcrossWorkerCounts) {
  torch::NoGradGuard ng;
  // 1024 keys: 512-row blocks, 2 per (batch, head), 12 items.
  auto [q, k, v] = random_qkv(2, 1024, 1024, 3, 16);
  const double scale = 0.25;
  torch::Tensor ref = math_attention(q, k, v, scale);
  torch::Tensor one = models::blocked_cpu_attention(q, k, v, scale, {}, false, /*workers=*/1);
  ASSERT_EQ(one.sizes(), (std::vector<int64_t>{2, 1024, 48}));
  ASSERT_EQ(one.scalar_type(), torch::kFloat32);
  EXPECT_TENSOR_NEAR(one, ref.to(torch::kFloat32), 3e-5);
  expect_worker_independent(
      one, [&](int w) { return models::blocked_cpu_attention(q, k, v, scale, {}, false, w); }, {2, 3, 5, 64});
  EXPECT_TENSOR_NEAR(models::blocked_cpu_attention(q, k, v, scale), one, 1e-5);  // automatic count
}

TEST(BlockedAttention, RaggedBlocksCrossAttentionAndBias) {
  torch::NoGradGuard ng;
  // 2000 keys: 262-row blocks, so 300 queries end in a partial block.
  auto [q, k, v] = random_qkv(2, 300, 2000, 2, 8);
  // T5-style position bias broadcast over the batch.
  torch::Tensor bias = torch::randn({1, 2, 300, 2000});
  torch::Tensor ref = math_attention(q, k, v, 1.0, bias);
  torch::Tensor one = models::blocked_cpu_attention(q, k, v, 1.0, bias, false, 1);
  EXPECT_TENSOR_NEAR(one, ref.to(torch::kFloat32), 3e-5);
  expect_worker_independent(
      one, [&](int w) { return models::blocked_cpu_attention(q, k, v, 1.0, bias, false, w); }, {2, 3, 7});
}

TEST(BlockedAttention, CausalWithAndWithoutBias) {
  torch::NoGradGuard ng;
  auto [q, k, v] = random_qkv(1, 600, 600, 4, 32);
  const double scale = 1.0 / std::sqrt(32.0);
  torch::Tensor ref = math_attention(q, k, v, scale, {}, true);
  torch::Tensor one = models::blocked_cpu_attention(q, k, v, scale, {}, true, 1);
  EXPECT_TENSOR_NEAR(one, ref.to(torch::kFloat32), 3e-5);
  expect_worker_independent(
      one, [&](int w) { return models::blocked_cpu_attention(q, k, v, scale, {}, true, w); }, {2, 3});

  torch::Tensor bias = torch::randn({1, 4, 1, 600});
  torch::Tensor ref_b = math_attention(q, k, v, scale, bias, true);
  torch::Tensor one_b = models::blocked_cpu_attention(q, k, v, scale, bias, true, 1);
  EXPECT_TENSOR_NEAR(one_b, ref_b.to(torch::kFloat32), 3e-5);
  expect_worker_independent(
      one_b, [&](int w) { return models::blocked_cpu_attention(q, k, v, scale, bias, true, w); }, {2, 3});
}

TEST(BlockedAttention, Bfloat16SoftmaxInFloat32) {
  torch::NoGradGuard ng;
  auto [q, k, v] = random_qkv(2, 520, 520, 2, 16, torch::kBFloat16);
  const double scale = 0.25;
  torch::Tensor ref = math_attention(q, k, v, scale);
  torch::Tensor one = models::blocked_cpu_attention(q, k, v, scale, {}, false, 1);
  ASSERT_EQ(one.scalar_type(), torch::kBFloat16);
  // bf16 scores (logits of magnitude ~4) and probabilities: several bf16 ulps of the output.
  EXPECT_TENSOR_NEAR(one.to(torch::kFloat32), ref.to(torch::kFloat32), 1e-1);
  // bf16 GEMMs are libtorch's own kernels, not BLAS: every worker count is bitwise equal.
  for (int workers : {2, 3}) {
    EXPECT_TRUE(torch::equal(models::blocked_cpu_attention(q, k, v, scale, {}, false, workers), one));
  }
}

TEST(BlockedAttention, WorkersInheritInferenceMode) {
  // Inputs and output are inference tensors; worker threads must run in inference mode too
  // to write into the output.
  c10::InferenceMode im;
  auto [q, k, v] = random_qkv(1, 512, 512, 4, 16);
  torch::Tensor one = models::blocked_cpu_attention(q, k, v, 0.25, {}, false, 1);
  torch::Tensor two = models::blocked_cpu_attention(q, k, v, 0.25, {}, false, 2);
  EXPECT_TENSOR_NEAR(two, one, 1e-5);
  EXPECT_TENSOR_NEAR(two, math_attention(q, k, v, 0.25).to(torch::kFloat32), 3e-5);
}

TEST(BlockedAttention, PublicEntryPointMatchesMathPath) {
  // attention() is SDPA on libtorch >= 2.1 and the blocked kernel otherwise.
  torch::NoGradGuard ng;
  auto [q, k, v] = random_qkv(2, 700, 700, 2, 16);
  EXPECT_TENSOR_NEAR(models::attention(q, k, v, 0.25), math_attention(q, k, v, 0.25).to(torch::kFloat32), 3e-5);
  torch::Tensor bias = torch::randn({1, 2, 700, 700});
  EXPECT_TENSOR_NEAR(models::attention(q, k, v, 1.0, bias, true),
                     math_attention(q, k, v, 1.0, bias, true).to(torch::kFloat32), 3e-5);
}

TEST(BlockedAttention, RestoresBlasThreadCount) {
  // Workers hold OpenBLAS at one thread while they run, and the count comes back afterwards,
  // also when several callers overlap.
  OpenBlasGet get = openblas_get();
  // The project runs on OpenBLAS (scripts/setup.sh installs libopenblas0-pthread).
  ASSERT_NE(get, nullptr) << "libtorch's BLAS is not OpenBLAS";
  const int before = get();
  torch::NoGradGuard ng;
  auto [q, k, v] = random_qkv(1, 1024, 1024, 4, 16);
  torch::Tensor expected = models::blocked_cpu_attention(q, k, v, 0.25, {}, false, 1);
  std::vector<std::thread> callers;
  std::vector<char> same(4, 0);
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      torch::NoGradGuard g;
      for (int i = 0; i < 3; ++i) {
        same[t] = max_abs_diff(models::blocked_cpu_attention(q, k, v, 0.25, {}, false, 2), expected) <= 1e-5;
      }
    });
  }
  for (auto& c : callers) c.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(same[t]) << "caller " << t;
  EXPECT_EQ(get(), before);
}
