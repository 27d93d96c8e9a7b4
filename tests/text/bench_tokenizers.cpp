// Quick standalone throughput check of the tokenizers (not a test; no assertions).
//   cmake --build <build> --target bench_tokenizers && <build>/<...>/bench_tokenizers
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/text/clip_tokenizer.h"
#include "engine/text/t5_tokenizer.h"

using Clock = std::chrono::steady_clock;

template <class Fn>
double seconds_per_call(Fn&& fn, int iters) {
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) fn();
  return std::chrono::duration<double>(Clock::now() - t0).count() / iters;
}

int main(int argc, char** argv) {
  // Optional: "clip N" / "t5 N" just loops one encoder N times (for profiling).
  const std::string mode = argc > 1 ? argv[1] : "";
  const int loops = argc > 2 ? std::stoi(argv[2]) : 1000;
  const std::string data = ONEREWARD_TEST_DATA;
  const auto t_load0 = Clock::now();
  const auto clip = onereward::ClipTokenizer::load(data + "/golden/pipeline/tokenizer");
  const auto t_load1 = Clock::now();
  const auto t5 = onereward::T5Tokenizer::load(data + "/golden/pipeline/tokenizer_2");
  const auto t_load2 = Clock::now();
  std::printf("load: clip %.1f ms, t5 %.1f ms\n",
              std::chrono::duration<double, std::milli>(t_load1 - t_load0).count(),
              std::chrono::duration<double, std::milli>(t_load2 - t_load1).count());

  if (!mode.empty()) {
    std::string text;
    while (text.size() < 4096) text += "A highly detailed photograph of an old wooden lighthouse, 35mm film grain. ";
    for (int i = 0; i < loops; ++i) {
      if (mode == "clip") (void)clip.encode(text);
      if (mode == "t5") (void)t5.encode(text, 512);
    }
    return 0;
  }
  const std::string english =
      "A highly detailed photograph of an old wooden lighthouse standing on a rocky cliff "
      "above a stormy sea, waves crashing against the rocks, seagulls circling in the grey "
      "sky, warm light glowing from the lantern room, rain streaks on the lens. ";
  const std::string mixed =
      "H\xc3\xa9llo W\xc3\x96RLD!! Caf\xc3\xa9 \xe2\x80\x94 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac"
      "\xe8\xaa\x9e \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xf0\x9f\x98\x80 "
      "\xef\xbc\xa1\xef\xbc\xa2 \xef\xac\x81 100% \xe2\x91\xa0 ";
  for (const auto& [name, unit] : {std::pair<const char*, std::string>{"english", english},
                                   std::pair<const char*, std::string>{"mixed-unicode", mixed}}) {
    std::string text;
    while (text.size() < 4096) text += unit;
    text.resize(4096);
    while ((static_cast<unsigned char>(text.back()) & 0xC0) == 0x80 ||
           static_cast<unsigned char>(text.back()) >= 0xC0)
      text.pop_back();  // keep it valid UTF-8
    const size_t clip_tokens = clip.encode_no_special(text).size();
    const size_t t5_tokens = t5.encode_no_pad(text).size();
    // CLIP: the first call fills the BPE word cache; time a cold tokenizer once, then
    // warm calls (the server's steady state).
    auto fresh = onereward::ClipTokenizer::load(data + "/golden/pipeline/tokenizer");
    const auto c0 = Clock::now();
    (void)fresh.encode(text);
    const double cold = std::chrono::duration<double>(Clock::now() - c0).count();
    const double clip_s = seconds_per_call([&] { (void)clip.encode(text); }, 200);
    const double t5_s = seconds_per_call([&] { (void)t5.encode(text, 512); }, 200);
    const double t5_full = seconds_per_call([&] { (void)t5.encode_no_pad(text); }, 200);
    std::printf("%s prompt, %zu bytes:\n", name, text.size());
    std::printf("  CLIP encode (77):    %8.1f us/prompt (cold cache %.1f us), %zu tokens untruncated -> %.2f M tokens/s\n",
                clip_s * 1e6, cold * 1e6, clip_tokens, clip_tokens / clip_s / 1e6);
    std::printf("  T5 encode (512):     %8.1f us/prompt, %zu tokens untruncated -> %.2f M tokens/s\n",
                t5_s * 1e6, t5_tokens, t5_tokens / t5_s / 1e6);
    std::printf("  T5 encode_no_pad:    %8.1f us/prompt\n", t5_full * 1e6);
  }
  return 0;
}
