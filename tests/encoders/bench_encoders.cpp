// Quick standalone timing of prompt encoding (not a test; no assertions):
//   cmake --build <build> --target bench_encoders
//   <build>/tests/encoders/bench_encoders [PIPELINE_DIR] [cpu|cuda] [fp32|bf16]
// Defaults to the tiny golden pipeline on CPU in fp32. Prints per-call times of CLIP and T5
// (tokenizer + forward, and forward alone), an uncached encode, and cache hit vs miss.
#include <chrono>
#include <cstdio>
#include <string>

#include "engine/pipeline/prompt_encoder.h"

using Clock = std::chrono::steady_clock;
using namespace onereward;
using namespace onereward::pipeline;

namespace {

void sync(const torch::Device& d) {
  // Block until queued device work is done (a .item() round trip works on any libtorch).
  if (d.is_cuda()) torch::zeros({1}, torch::TensorOptions().device(d)).sum().item<float>();
}

template <class Fn>
double ms_per_call(Fn&& fn, int iters, const torch::Device& d) {
  fn();  // warm-up
  sync(d);
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) fn();
  sync(d);
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / iters;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : std::string(ONEREWARD_TEST_DATA) + "/golden/pipeline";
  PromptEncoderOptions opts;
  opts.placement.device = torch::Device(argc > 2 ? argv[2] : "cpu");
  opts.placement.dtype = parse_dtype_name(argc > 3 ? argv[3] : "fp32");
  const torch::Device dev = opts.placement.device;
  torch::NoGradGuard ng;

  const auto t0 = Clock::now();
  PromptEncoder pe = PromptEncoder::load(dir, opts);
  std::printf("load: %.1f ms (%s, %s, torch threads %d)\n",
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), dev.str().c_str(),
              dtype_name(opts.placement.dtype).c_str(), torch::get_num_threads());

  const std::string prompt = "the words \"ByteDance\", and in the next line \"OneReward\"";
  const int n = 50;
  const PromptTokens tok = pe.tokenize({prompt});
  std::printf("tokenize (clip + t5): %.3f ms\n", ms_per_call([&] { pe.tokenize({prompt}); }, n, dev));
  std::printf("clip forward [1,%ld]: %.3f ms\n", static_cast<long>(tok.clip_input_ids.size(1)),
              ms_per_call([&] { pe.clip()->forward(tok.clip_input_ids); }, n, dev));
  std::printf("t5 forward [1,%ld]: %.3f ms\n", static_cast<long>(tok.t5_input_ids.size(1)),
              ms_per_call([&] { pe.t5()->forward(tok.t5_input_ids); }, n, dev));
  std::printf("encode (uncached, both encoders + tokenizers): %.3f ms\n",
              ms_per_call([&] { pe.encode({prompt}); }, n, dev));

  // Miss: a fresh key each call (the cache stores it; budget is far above n entries here).
  int counter = 0;
  const double miss = ms_per_call([&] { pe.encode_cached({prompt + " " + std::to_string(counter++)}); }, n, dev);
  pe.encode_cached({prompt});
  const double hit = ms_per_call([&] { pe.encode_cached({prompt}); }, 2000, dev);
  std::printf("encode_cached: miss %.3f ms, hit %.4f ms (%.0fx)\n", miss, hit, miss / hit);
  const auto s = pe.cache().stats();
  std::printf("cache: %ld entries, %ld bytes, %ld hits, %ld misses\n", static_cast<long>(s.entries),
              static_cast<long>(s.bytes), static_cast<long>(s.hits), static_cast<long>(s.misses));
  return 0;
}
