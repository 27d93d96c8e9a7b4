// `onereward-engine bench`: per-stage timing, FLOP utilisation against the measured matmul
// peak, and memory. Numbers for reports come from here, never from timed unit tests.
#include "engine/tools/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "engine/checkpoint/weights.h"
#include "engine/models/cpu_buffer_cache.h"
#include "engine/tools/commands.h"
#include "engine/util/status.h"

namespace onereward::tools {
namespace {

void sync(const BenchEnv& env) {
  if (env.device.is_cuda()) torch::cuda::synchronize();
}

}  // namespace

double time_median_ms(const BenchEnv& env, const std::function<void()>& fn) {
  for (int i = 0; i < env.warmup; ++i) fn();
  sync(env);
  std::vector<double> t;
  for (int i = 0; i < std::max(1, env.iters); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    sync(env);
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double measure_matmul_peak(const BenchEnv& env) {
  c10::InferenceMode guard;
  auto opts = torch::TensorOptions().device(env.device).dtype(env.dtype);
  const int64_t n = 2048;
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  auto c = torch::empty({n, n}, opts);
  BenchEnv e = env;
  e.iters = std::max(env.iters, 5);
  const double ms = time_median_ms(e, [&] { at::mm_out(c, a, b); });
  return 2.0 * n * n * n / (ms * 1e-3) / 1e9;
}

double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

namespace {

std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}
std::vector<std::string> parse_strings(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

struct BenchArgs {
  std::string presets = "tiny,bench";
  std::string sizes = "512";
  std::string rows = "2";
  std::string what = "transformer";
  std::string device = "cpu";
  std::string dtype = "fp32";
  std::string json_out;
  int threads = 0;
  int cpu_cache_mib = -1;
  int iters = 3;
  int warmup = 1;
  bool random_weights = true;
};

int run_bench(const BenchArgs& a) {
  try {
    BenchEnv env;
    env.device = torch::Device(a.device);
    env.dtype = parse_dtype_name(a.dtype);
    if (a.threads > 0) torch::set_num_threads(a.threads);
    if (env.device.is_cpu()) {
      models::install_cpu_buffer_cache(static_cast<int64_t>(a.cpu_cache_mib) * (int64_t{1} << 20));
    }
    env.threads = torch::get_num_threads();
    env.iters = a.iters;
    env.warmup = a.warmup;
    if (env.device.is_cuda() && !torch::cuda::is_available()) {
      std::cerr << "error: --device cuda but CUDA is not available\n";
      return 2;
    }
    env.peak_gflops = measure_matmul_peak(env);
    std::cerr << "matmul peak (2048^3, " << a.dtype << ", " << env.threads << " threads): " << env.peak_gflops
              << " GFLOP/s\n";
    std::vector<BenchRow> rows;
    const auto whats = parse_strings(a.what);
    auto wants = [&](const std::string& w) {
      return std::find(whats.begin(), whats.end(), w) != whats.end() ||
             std::find(whats.begin(), whats.end(), "all") != whats.end();
    };
    if (wants("transformer"))
      bench_transformer(env, parse_strings(a.presets), parse_ints(a.sizes), parse_ints(a.rows), &rows);
    if (wants("stages")) bench_stages(env, parse_strings(a.presets), parse_ints(a.sizes), parse_ints(a.rows), &rows);

    const auto cache = models::cpu_buffer_cache_stats();
    std::cout << "device " << a.device << ", dtype " << a.dtype << ", threads " << env.threads
              << ", CPU buffer cache "
              << (cache.installed ? std::to_string(cache.limit_bytes >> 20) + " MiB (" + std::to_string(cache.hits) +
                                        " hits, " + std::to_string(cache.misses) + " misses)"
                                  : "off")
              << ", matmul peak " << std::fixed << std::setprecision(1) << env.peak_gflops << " GFLOP/s\n";
    std::cout << std::left << std::setw(22) << "stage" << std::setw(8) << "preset" << std::setw(34) << "shape"
              << std::right << std::setw(11) << "ms" << std::setw(10) << "GFLOP" << std::setw(10) << "GFLOP/s"
              << std::setw(8) << "%peak" << std::setw(10) << "RSS MiB" << "\n";
    nlohmann::json j;
    j["device"] = a.device;
    j["dtype"] = a.dtype;
    j["threads"] = env.threads;
    j["cpu_buffer_cache_mib"] = cache.installed ? cache.limit_bytes >> 20 : 0;
    j["matmul_peak_gflops"] = env.peak_gflops;
    j["rows"] = nlohmann::json::array();
    for (const auto& r : rows) {
      const double gfs = r.gflop > 0 ? r.gflop / (r.ms / 1e3) : 0;
      std::cout << std::left << std::setw(22) << r.what << std::setw(8) << r.preset << std::setw(34) << r.shape
                << std::right << std::setw(11) << std::setprecision(2) << r.ms << std::setw(10)
                << std::setprecision(1) << r.gflop << std::setw(10) << gfs << std::setw(7)
                << (r.gflop > 0 ? 100.0 * gfs / env.peak_gflops : 0.0) << "%" << std::setw(10) << r.peak_mem_mb
                << "\n";
      j["rows"].push_back({{"stage", r.what}, {"preset", r.preset}, {"shape", r.shape}, {"ms", r.ms},
                           {"gflop", r.gflop}, {"gflops", gfs},
                           {"fraction_of_peak", r.gflop > 0 ? gfs / env.peak_gflops : 0.0},
                           {"peak_rss_mb", r.peak_mem_mb}});  // process high-water mark so far
    }
    if (!a.json_out.empty()) {
      std::ofstream(a.json_out) << j.dump(2) << "\n";
    }
    return 0;
  } catch (...) {
    std::cerr << "error: " << status_from_current_exception().message() << "\n";
    return 1;
  }
}

}  // namespace

void register_bench(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("bench", "Time the engine's stages with random weights; report GFLOP/s and the "
                                          "fraction of the measured matmul peak");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("--what", a->what, "comma list: transformer (forward alone), stages (text encode, vae encode, denoise step, vae decode), all")->capture_default_str();
  cmd->add_option("--presets", a->presets, "comma list of tiny, bench, full")->capture_default_str();
  cmd->add_option("--sizes", a->sizes, "comma list of square image sizes in pixels")->capture_default_str();
  cmd->add_option("--rows", a->rows, "comma list of transformer batch rows")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "fp32, bf16 or fp16")->capture_default_str();
  cmd->add_option("--threads", a->threads, "intra-op threads (0 = libtorch default)")->capture_default_str();
  cmd->add_option("--cpu-buffer-cache-mib", a->cpu_cache_mib,
                  "on CPU, keep freed tensor buffers for reuse while live + kept stay within this; "
                  "-1: half of the memory left (RAM or cgroup limit); 0: libtorch's allocator")
      ->capture_default_str();
  cmd->add_option("--iters", a->iters, "timed iterations (median reported)")->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "untimed warm-up iterations")->capture_default_str();
  cmd->add_option("--json", a->json_out, "also write the results as JSON to this file");
  cmd->add_flag("--random-weights", a->random_weights, "build the presets in memory with random weights (default)");
  cmd->callback([a, exit_code] { *exit_code = run_bench(*a); });
}

}  // namespace onereward::tools
