// PromptCache on synthetic tensors: LRU order, byte budget, oversize entries, disabling,
// key identity, counters and concurrent use.
#include <atomic>
#include <thread>

#include "engine/pipeline/prompt_cache.h"
#include "tests/encoders/encoder_test_util.h"

using namespace onereward;
using namespace onereward::pipeline;
using namespace onereward::testing;

namespace {

// 1 x 4 x 8 fp32 embeds (128 B) + 1 x 8 pooled (32 B) + 4 x 3 ids (48 B) = 208 bytes.
constexpr int64_t kEntry = 208;

PromptEmbeds make(float v, int64_t seq = 4) {
  return {torch::full({1, seq, 8}, v), torch::full({1, 8}, v), torch::zeros({seq, 3})};
}
PromptKey key(const std::string& p, const std::string& p2 = "", int64_t msl = 512) {
  return {p, p2.empty() ? p : p2, msl};
}

}  // namespace

TEST(PromptCache, EntryBytes) { EXPECT_EQ(make(0).bytes(), kEntry); }

TEST(PromptCache, HitReturnsTheStoredTensors) {
  PromptCache cache(10 * kEntry);
  EXPECT_FALSE(cache.get(key("a")).has_value());
  PromptEmbeds a = make(1);
  EXPECT_TRUE(cache.put(key("a"), a));
  auto hit = cache.get(key("a"));
  ASSERT_TRUE(hit.has_value());
  EXPECT_TRUE(hit->prompt_embeds.is_same(a.prompt_embeds));  // shared, not copied
  EXPECT_TRUE(torch::equal(hit->pooled_prompt_embeds, a.pooled_prompt_embeds));
  auto s = cache.stats();
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.entries, 1);
  EXPECT_EQ(s.bytes, kEntry);
  EXPECT_EQ(s.budget_bytes, 10 * kEntry);
}

TEST(PromptCache, EvictsLeastRecentlyUsed) {
  PromptCache cache(3 * kEntry);
  cache.put(key("a"), make(1));
  cache.put(key("b"), make(2));
  cache.put(key("c"), make(3));
  ASSERT_TRUE(cache.get(key("a")).has_value());  // order (new -> old): a c b
  cache.put(key("d"), make(4));                  // evicts b
  EXPECT_FALSE(cache.get(key("b")).has_value());
  EXPECT_TRUE(cache.get(key("a")).has_value());
  EXPECT_TRUE(cache.get(key("c")).has_value());
  EXPECT_TRUE(cache.get(key("d")).has_value());
  cache.put(key("e"), make(5));  // order before: d c a -> evicts a
  EXPECT_FALSE(cache.get(key("a")).has_value());
  auto s = cache.stats();
  EXPECT_EQ(s.entries, 3);
  EXPECT_EQ(s.evictions, 2);
  EXPECT_EQ(s.bytes, 3 * kEntry);
}

TEST(PromptCache, BudgetIsInBytes) {
  PromptCache cache(5 * kEntry);       // 1040 bytes
  cache.put(key("big"), make(1, 10));  // 10*8*4 + 8*4 + 10*3*4 = 472 bytes
  cache.put(key("a"), make(2));
  cache.put(key("b"), make(3));
  EXPECT_EQ(cache.stats().bytes, 472 + 2 * kEntry);
  EXPECT_EQ(cache.stats().evictions, 0);
  cache.put(key("c"), make(4));  // 472 + 3 * 208 > 1040: evicts big, the oldest
  EXPECT_FALSE(cache.get(key("big")).has_value());
  EXPECT_EQ(cache.stats().entries, 3);
  EXPECT_EQ(cache.stats().bytes, 3 * kEntry);
}

TEST(PromptCache, OversizeEntryIsNotStored) {
  PromptCache cache(kEntry - 1);
  EXPECT_FALSE(cache.put(key("a"), make(1)));
  EXPECT_FALSE(cache.get(key("a")).has_value());
  EXPECT_EQ(cache.stats().entries, 0);
  EXPECT_EQ(cache.stats().evictions, 0);
  PromptCache exact(kEntry);
  EXPECT_TRUE(exact.put(key("a"), make(1)));
  EXPECT_FALSE(exact.put(key("big"), make(1, 10)));  // does not evict a to make room in vain
  EXPECT_TRUE(exact.get(key("a")).has_value());
}

TEST(PromptCache, ZeroBudgetDisables) {
  PromptCache cache(0);
  EXPECT_FALSE(cache.put(key("a"), make(1)));
  EXPECT_FALSE(cache.get(key("a")).has_value());
  EXPECT_EQ(cache.stats().misses, 1);
  PromptCache on(4 * kEntry);
  on.put(key("a"), make(1));
  on.put(key("b"), make(2));
  on.set_budget_bytes(kEntry);  // shrinking evicts the older
  EXPECT_EQ(on.stats().entries, 1);
  EXPECT_TRUE(on.get(key("b")).has_value());
  on.set_budget_bytes(0);
  EXPECT_EQ(on.stats().entries, 0);
  EXPECT_EQ(on.stats().bytes, 0);
  EXPECT_EQ(error_of([] { PromptCache bad(-1); }).first, StatusCode::kInvalidArgument);
}

TEST(PromptCache, ReplacingAKeyKeepsOneEntry) {
  PromptCache cache(4 * kEntry);
  cache.put(key("a"), make(1));
  cache.put(key("a"), make(2));
  EXPECT_EQ(cache.stats().entries, 1);
  EXPECT_EQ(cache.stats().bytes, kEntry);
  EXPECT_EQ(cache.get(key("a"))->pooled_prompt_embeds[0][0].item<float>(), 2.0f);
  cache.clear();
  EXPECT_EQ(cache.stats().entries, 0);
}

TEST(PromptCache, KeyFieldsAreDistinct) {
  PromptCache cache(10 * kEntry);
  cache.put({"ab", "c", 512}, make(1));
  EXPECT_FALSE(cache.get({"a", "bc", 512}).has_value());  // same concatenation, other split
  EXPECT_FALSE(cache.get({"ab", "c", 256}).has_value());
  EXPECT_FALSE(cache.get({"ab", "ab", 512}).has_value());
  EXPECT_TRUE(cache.get({"ab", "c", 512}).has_value());
}

TEST(PromptCache, ConcurrentUse) {
  PromptCache cache(8 * kEntry);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  const int kThreads = 8, kIters = 2000;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIters; ++i) {
        const int k = (t * 7 + i) % 12;  // 12 keys over an 8-entry budget: constant churn
        const std::string name = "p" + std::to_string(k);
        if (auto hit = cache.get(key(name))) {
          if (hit->pooled_prompt_embeds[0][0].item<float>() != static_cast<float>(k)) ++wrong;
        } else {
          cache.put(key(name), make(static_cast<float>(k)));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  auto s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, kThreads * kIters);
  EXPECT_LE(s.bytes, 8 * kEntry);
  EXPECT_EQ(s.bytes, s.entries * kEntry);
}
