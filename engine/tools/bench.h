// Shared pieces of `onereward-engine bench`: environment, timing and report rows.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace onereward::tools {

struct BenchEnv {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  int threads = 0;
  int iters = 3;
  int warmup = 1;
  double peak_gflops = 0;  ///< measured 2048^3 matmul in this process
};

/// One line of the report.
struct BenchRow {
  std::string what;      ///< e.g. "transformer forward"
  std::string preset;    ///< tiny / bench / full / model dir
  std::string shape;     ///< e.g. "512x512 rows=2"
  double ms = 0;         ///< median wall time
  double gflop = 0;      ///< analytic FLOPs (0 when not counted)
  double peak_mem_mb = 0;
};

/// Median wall time of fn() in ms after warm-up (synchronising CUDA around each run).
double time_median_ms(const BenchEnv& env, const std::function<void()>& fn);
/// GFLOP/s of a 2048x2048x2048 matmul on the env's device/dtype.
double measure_matmul_peak(const BenchEnv& env);
/// Peak resident set size of this process (MiB).
double peak_rss_mb();

/// Benchmarks each stage of a job (text encode, VAE encode, denoising step, VAE decode).
void bench_stages(const BenchEnv& env, const std::vector<std::string>& presets, const std::vector<int>& sizes,
                  const std::vector<int>& rows, std::vector<BenchRow>* out);

/// Benchmarks the transformer forward for each preset/size/rows combination.
void bench_transformer(const BenchEnv& env, const std::vector<std::string>& presets, const std::vector<int>& sizes,
                       const std::vector<int>& rows, std::vector<BenchRow>* out);

}  // namespace onereward::tools
