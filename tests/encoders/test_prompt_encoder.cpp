// PromptEncoder on the golden pipeline: the component_clip / component_t5 cases end to end
// (tokenizers + encoders), FluxPipeline.encode_prompt semantics, and the cached path.
#include <thread>

#include "engine/pipeline/prompt_encoder.h"
#include "tests/encoders/encoder_test_util.h"

using namespace onereward;
using namespace onereward::pipeline;
using namespace onereward::testing;

namespace {

std::vector<std::string> case_prompts(const GoldenCase& c) {
  return c.meta.at("prompts").get<std::vector<std::string>>();
}

class PromptEncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { encoder_ = new PromptEncoder(PromptEncoder::load(golden_path("pipeline"))); }
  static void TearDownTestSuite() {
    delete encoder_;
    encoder_ = nullptr;
  }
  static PromptEncoder& enc() { return *encoder_; }
  static PromptEncoder* encoder_;
};
PromptEncoder* PromptEncoderTest::encoder_ = nullptr;

bool same(const PromptEmbeds& a, const PromptEmbeds& b) {
  return torch::equal(a.prompt_embeds, b.prompt_embeds) &&
         torch::equal(a.pooled_prompt_embeds, b.pooled_prompt_embeds) && torch::equal(a.text_ids, b.text_ids);
}

}  // namespace

TEST_F(PromptEncoderTest, ClipGoldenCase) {
  GoldenCase c("component_clip");
  const auto prompts = case_prompts(c);
  PromptTokens tok = enc().tokenize(prompts);
  EXPECT_TRUE(torch::equal(tok.clip_input_ids, c.t("input_ids")));
  PromptEmbeds e = enc().encode(prompts);
  EXPECT_TENSOR_NEAR(e.pooled_prompt_embeds, c.t("pooler_output"), c.tol("pooler_output"));
  torch::NoGradGuard ng;
  auto out = enc().clip()->forward(tok.clip_input_ids);
  EXPECT_TENSOR_NEAR(out.last_hidden_state, c.t("last_hidden_state"), c.tol("last_hidden_state"));
}

TEST_F(PromptEncoderTest, T5GoldenCase) {
  GoldenCase c("component_t5");
  const auto prompts = case_prompts(c);
  PromptTokens tok = enc().tokenize(prompts);
  EXPECT_TRUE(torch::equal(tok.t5_input_ids, c.t("input_ids")));
  PromptEmbeds e = enc().encode(prompts);
  EXPECT_TENSOR_NEAR(e.prompt_embeds, c.t("prompt_embeds"), c.tol("prompt_embeds"));
}

TEST_F(PromptEncoderTest, PipelineCaseEmbeddings) {
  // The prompt / negative prompt embeddings a full pipeline case stored.
  GoldenCase c("fill_onereward_64x64");
  const std::string prompt = c.meta.at("prompt").get<std::string>();
  const std::string negative = c.meta.at("negative_prompt").get<std::string>();
  PromptEmbeds pos = enc().encode({prompt});
  PromptEmbeds neg = enc().encode({negative});
  EXPECT_TENSOR_NEAR(pos.prompt_embeds, c.t("prompt_embeds"), c.tol("prompt_embeds"));
  EXPECT_TENSOR_NEAR(pos.pooled_prompt_embeds, c.t("pooled_prompt_embeds"), c.tol("pooled_prompt_embeds"));
  EXPECT_TENSOR_NEAR(neg.prompt_embeds, c.t("negative_prompt_embeds"), c.tol("prompt_embeds"));
  EXPECT_TENSOR_NEAR(neg.pooled_prompt_embeds, c.t("negative_pooled_prompt_embeds"), c.tol("pooled_prompt_embeds"));
  EXPECT_TRUE(torch::equal(pos.text_ids, c.t("text_ids")));
}

TEST_F(PromptEncoderTest, EncodePromptSemantics) {
  PromptEmbeds e = enc().encode({"a red boat", "remove"});
  EXPECT_EQ(e.prompt_embeds.sizes(), (std::vector<int64_t>{2, 512, 32}));
  EXPECT_EQ(e.pooled_prompt_embeds.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(e.text_ids.sizes(), (std::vector<int64_t>{512, 3}));
  EXPECT_EQ(e.text_ids.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(e.prompt_embeds.scalar_type(), torch::kFloat32);
  // prompt_2 defaults to prompt; a different prompt_2 changes only the T5 side.
  PromptEmbeds same_2 = enc().encode({"a red boat", "remove"}, {"a red boat", "remove"});
  EXPECT_TRUE(same(e, same_2));
  PromptEmbeds other_2 = enc().encode({"a red boat", "remove"}, {"a blue car", "remove"});
  EXPECT_TRUE(torch::equal(other_2.pooled_prompt_embeds, e.pooled_prompt_embeds));
  EXPECT_FALSE(torch::equal(other_2.prompt_embeds[0], e.prompt_embeds[0]));
  EXPECT_TRUE(torch::allclose(other_2.prompt_embeds[1], e.prompt_embeds[1], 0, 1e-6));
}

TEST_F(PromptEncoderTest, ShorterMaxSequenceLength) {
  PromptTokens full = enc().tokenize({"nsfw"});
  PromptTokens short_ = enc().tokenize({"nsfw"}, {}, 77);
  EXPECT_EQ(short_.t5_input_ids.sizes(), (std::vector<int64_t>{1, 77}));
  EXPECT_TRUE(torch::equal(short_.t5_input_ids, full.t5_input_ids.narrow(1, 0, 77)));
  PromptEmbeds e = enc().encode({"nsfw"}, {}, 77);
  EXPECT_EQ(e.prompt_embeds.sizes(), (std::vector<int64_t>{1, 77, 32}));
  EXPECT_EQ(e.text_ids.sizes(), (std::vector<int64_t>{77, 3}));
}

TEST_F(PromptEncoderTest, InvalidArguments) {
  EXPECT_EQ(error_of([&] { enc().encode({}); }).first, StatusCode::kInvalidArgument);
  EXPECT_EQ(error_of([&] { enc().encode({"a", "b"}, {"c"}); }).first, StatusCode::kInvalidArgument);
  EXPECT_EQ(error_of([&] { enc().encode({"a"}, {}, 513); }).first, StatusCode::kInvalidArgument);
  EXPECT_EQ(error_of([&] { enc().encode({"a"}, {}, 0); }).first, StatusCode::kInvalidArgument);
  EXPECT_EQ(error_of([&] { enc().encode_cached({"a"}, {}, 1000); }).first, StatusCode::kInvalidArgument);
}

TEST_F(PromptEncoderTest, RepeatEachAndConcatRows) {
  PromptEmbeds e = enc().encode({"x", "y"});
  PromptEmbeds r = repeat_each(e, 2);
  ASSERT_EQ(r.batch(), 4);
  EXPECT_TRUE(torch::equal(r.prompt_embeds[1], e.prompt_embeds[0]));
  EXPECT_TRUE(torch::equal(r.prompt_embeds[2], e.prompt_embeds[1]));
  EXPECT_TRUE(torch::equal(r.pooled_prompt_embeds[3], e.pooled_prompt_embeds[1]));
  PromptEmbeds c = concat_rows({e, r});
  EXPECT_EQ(c.batch(), 6);
  EXPECT_TRUE(torch::equal(c.prompt_embeds[5], e.prompt_embeds[1]));
}

TEST_F(PromptEncoderTest, OutputDtypeFollowsTheTransformer) {
  PromptEncoderOptions opts;
  opts.output_dtype = torch::kBFloat16;
  PromptEncoder pe = PromptEncoder::load(golden_path("pipeline"), opts);
  PromptEmbeds e = pe.encode({"nsfw"});
  EXPECT_EQ(e.prompt_embeds.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(e.pooled_prompt_embeds.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(e.text_ids.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(e.prompt_embeds, enc().encode({"nsfw"}).prompt_embeds.to(torch::kBFloat16)));
}

// A hit hands back exactly what the miss computed; a batched encode_cached equals its
// rows encoded alone; counters count.
TEST_F(PromptEncoderTest, CachedHitEqualsMiss) {
  PromptEncoder pe = PromptEncoder::load(golden_path("pipeline"));
  PromptEmbeds miss = pe.encode_cached({"nsfw"});
  EXPECT_EQ(pe.cache().stats().misses, 1);
  EXPECT_EQ(pe.cache().stats().entries, 1);
  PromptEmbeds hit = pe.encode_cached({"nsfw"});
  EXPECT_EQ(pe.cache().stats().hits, 1);
  EXPECT_TRUE(same(hit, miss));
  EXPECT_TRUE(same(miss, pe.encode({"nsfw"})));  // batch-1 miss == uncached batch-1 encode
  // A batch mixing hits, misses and a repeat: rows equal their single-prompt encodings.
  PromptEmbeds batch = pe.encode_cached({"remove", "nsfw", "remove"});
  auto s = pe.cache().stats();
  EXPECT_EQ(s.misses, 2);
  EXPECT_EQ(s.hits, 3);
  EXPECT_EQ(s.entries, 2);
  EXPECT_TRUE(torch::equal(batch.prompt_embeds[1], miss.prompt_embeds[0]));
  EXPECT_TRUE(torch::equal(batch.prompt_embeds[0], pe.encode({"remove"}).prompt_embeds[0]));
  EXPECT_TRUE(torch::equal(batch.pooled_prompt_embeds[2], batch.pooled_prompt_embeds[0]));
  // And agrees with the reference-style batched encode within float noise.
  EXPECT_TENSOR_NEAR(batch.prompt_embeds, pe.encode({"remove", "nsfw", "remove"}).prompt_embeds, 1e-5);
  // Keys include prompt_2 and max_sequence_length.
  pe.encode_cached({"nsfw"}, {"remove"});
  pe.encode_cached({"nsfw"}, {}, 256);
  EXPECT_EQ(pe.cache().stats().entries, 4);
}

TEST_F(PromptEncoderTest, CacheEvictsLeastRecentlyUsed) {
  PromptEncoderOptions opts;
  const int64_t entry = enc().encode({"a"}).bytes();  // every 512-token entry has this size
  opts.cache_budget_bytes = 2 * entry;
  PromptEncoder pe = PromptEncoder::load(golden_path("pipeline"), opts);
  pe.encode_cached({"a"});
  pe.encode_cached({"b"});
  pe.encode_cached({"a"});  // a is now the most recent
  pe.encode_cached({"c"});  // evicts b
  auto s = pe.cache().stats();
  EXPECT_EQ(s.entries, 2);
  EXPECT_EQ(s.evictions, 1);
  EXPECT_EQ(s.bytes, 2 * entry);
  const int64_t misses = s.misses;
  pe.encode_cached({"a"});
  pe.encode_cached({"c"});
  EXPECT_EQ(pe.cache().stats().misses, misses);
  pe.encode_cached({"b"});
  EXPECT_EQ(pe.cache().stats().misses, misses + 1);
}

TEST_F(PromptEncoderTest, CacheTooSmallOrDisabledStillEncodes) {
  const int64_t entry = enc().encode({"a"}).bytes();
  for (int64_t budget : {entry - 1, int64_t{0}}) {
    PromptEncoderOptions opts;
    opts.cache_budget_bytes = budget;
    PromptEncoder pe = PromptEncoder::load(golden_path("pipeline"), opts);
    PromptEmbeds first = pe.encode_cached({"a"});
    PromptEmbeds second = pe.encode_cached({"a"});
    EXPECT_TRUE(same(first, second));
    auto s = pe.cache().stats();
    EXPECT_EQ(s.entries, 0) << budget;
    EXPECT_EQ(s.bytes, 0);
    EXPECT_EQ(s.hits, 0);
    EXPECT_EQ(s.misses, 2);
  }
}

TEST_F(PromptEncoderTest, ConcurrentCachedEncodes) {
  PromptEncoder pe = PromptEncoder::load(golden_path("pipeline"));
  const std::vector<std::string> prompts = {"nsfw", "remove", "high-definition, perfect composition", "a cat"};
  std::vector<PromptEmbeds> expected;
  for (const auto& p : prompts) expected.push_back(enc().encode({p}));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  const int kThreads = 4, kIters = 6;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIters; ++i) {
        const size_t k = static_cast<size_t>(t + i) % prompts.size();
        PromptEmbeds e = pe.encode_cached({prompts[k]});
        if (!same(e, expected[k])) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  auto s = pe.cache().stats();
  EXPECT_EQ(s.hits + s.misses, kThreads * kIters);
  EXPECT_EQ(s.entries, static_cast<int64_t>(prompts.size()));
}
