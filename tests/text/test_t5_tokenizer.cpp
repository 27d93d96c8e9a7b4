// T5 tokenizer tests: golden reference ids, the sentencepiece-generated table
// (tests/data/text/t5_ids.json, see gen_t5_ids.py), truncation / padding / </s> rules,
// and concurrent use.
#include "engine/text/t5_tokenizer.h"

#include <gtest/gtest.h>

#include <thread>

#include "engine/util/status.h"
#include "tests/text/test_support.h"

namespace onereward {
namespace {

using testing::data_path;
using testing::t5_dir;

const T5Tokenizer& t5() {
  static const T5Tokenizer t = T5Tokenizer::load(t5_dir());
  return t;
}

// The 8 prompts of cases/component_t5 against the reference's input_ids [8, 512].
TEST(T5Golden, MatchesReferenceIds) {
  const auto cs = testing::load_json(data_path("golden/cases/component_t5/case.json"));
  const auto prompts = cs.at("prompts").get<std::vector<std::string>>();
  std::vector<int64_t> shape;
  const auto ids = testing::read_safetensors_i64(
      data_path("golden/cases/component_t5/expected.safetensors"), "input_ids", &shape);
  ASSERT_EQ(shape, (std::vector<int64_t>{8, 512}));
  ASSERT_EQ(prompts.size(), 8u);
  EXPECT_FALSE(t5().legacy());
  for (size_t p = 0; p < prompts.size(); ++p) {
    const std::vector<int64_t> want(ids.begin() + static_cast<long>(p * 512),
                                    ids.begin() + static_cast<long>((p + 1) * 512));
    EXPECT_EQ(t5().encode(prompts[p], 512), want) << "prompt " << p << ": " << prompts[p];
    EXPECT_EQ(t5().encode(prompts[p]), want) << "default max_length";
  }
}

// The padded / truncated form the pipeline uses, derived from unpadded reference ids.
std::vector<int64_t> pad_truncate(std::vector<int64_t> ids, size_t max_length) {
  ids.pop_back();  // the </s> added by _add_eos_if_not_present (always last)
  if (ids.size() > max_length - 1) ids.resize(max_length - 1);
  if (ids.empty() || ids.back() != 1) ids.push_back(1);
  ids.resize(max_length, 0);
  return ids;
}

// 428 strings tokenized by sentencepiece 0.1.97 wrapped in the legacy=False T5Tokenizer
// logic: whitespace variants, NFKC (full-width, ligatures, circled / fraction digits,
// compatibility ideographs), scripts, emoji, unknown characters, control characters,
// "▁" in the text, <extra_id_N> / </s> / <pad> / <unk> in the text, long text, 300
// seeded random mixes.
TEST(T5Table, MatchesSentencepieceWrapper) {
  const auto doc = testing::load_json(data_path("text/t5_ids.json"));
  size_t n = 0, truncated = 0;
  for (const auto& c : doc.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    const auto want = c.at("t5_ids").get<std::vector<int64_t>>();
    const std::string shown = nlohmann::json(text).dump();
    EXPECT_EQ(t5().encode_no_pad(text), want) << "text: " << shown;
    EXPECT_EQ(t5().encode(text, 512), pad_truncate(want, 512)) << "text: " << shown;
    EXPECT_EQ(t5().encode(text, 16), pad_truncate(want, 16)) << "text: " << shown;
    truncated += want.size() > 512;
    ++n;
  }
  EXPECT_GT(n, 400u);
  EXPECT_GE(truncated, 2u);  // the long strings exercise truncation at 511 + </s>
}

// legacy=True (T5Tokenizer's default when the config does not say): plain sentencepiece
// (with its dummy prefix) on each chunk between added tokens. FLUX uses legacy=False;
// this checks the other branch against t5_legacy_ids with a config copy.
TEST(T5Table, LegacyModeMatches) {
  testing::TempDir d;
  auto cfg = testing::load_json(t5_dir() + "/tokenizer_config.json");
  cfg["legacy"] = true;
  d.write("tokenizer_config.json", cfg.dump());
  d.write("spiece.model", testing::slurp(t5_dir() + "/spiece.model"));
  const T5Tokenizer legacy = T5Tokenizer::load(d.path());
  EXPECT_TRUE(legacy.legacy());
  const auto doc = testing::load_json(data_path("text/t5_ids.json"));
  for (const auto& c : doc.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    EXPECT_EQ(legacy.encode_no_pad(text), c.at("t5_legacy_ids").get<std::vector<int64_t>>())
        << "text: " << nlohmann::json(text).dump();
  }
}

TEST(T5Rules, EmptyAndWhitespaceOnly) {
  std::vector<int64_t> want(512, 0);
  want[0] = 1;
  EXPECT_EQ(t5().encode(""), want);
  EXPECT_EQ(t5().encode("   \t\n"), want);
  EXPECT_EQ(t5().encode_no_pad(""), (std::vector<int64_t>{1}));
}

TEST(T5Rules, EosAlreadyPresentIsNotDuplicated) {
  // "hello </s>": the trie splits out </s> (id 1); _add_eos_if_not_present adds nothing.
  EXPECT_EQ(t5().encode_no_pad("hello </s>"), (std::vector<int64_t>{21820, 1}));
  // Truncation happens before </s> is added: 2 tokens kept of "a b c </s>" at length 3.
  const auto ids = t5().encode("a b c", 3);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.back(), 1);
}

TEST(T5Rules, SentinelTokens) {
  // <extra_id_0> is id 32099, <extra_id_99> id 32000 (tokenizer_config added_tokens_decoder).
  EXPECT_EQ(t5().encode_no_pad("<extra_id_0>"), (std::vector<int64_t>{32099, 1}));
  EXPECT_EQ(t5().encode_no_pad("<extra_id_99>"), (std::vector<int64_t>{32000, 1}));
  EXPECT_EQ(t5().tokenize("<extra_id_0> fill"),
            (std::vector<std::string>{"<extra_id_0>", "\xe2\x96\x81" "fill"}));
}

TEST(T5Rules, RejectsTinyMaxLength) {
  EXPECT_THROW(t5().encode("x", 1), Error);
}

TEST(T5Concurrency, ParallelEncodesAgree) {
  const auto doc = testing::load_json(data_path("text/t5_ids.json"));
  std::vector<std::string> texts;
  for (const auto& c : doc.at("cases")) texts.push_back(c.at("text").get<std::string>());
  std::vector<std::vector<int64_t>> want;
  for (const auto& t : texts) want.push_back(t5().encode(t));
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 2; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t j = (i * 5 + static_cast<size_t>(k) * 11) % texts.size();
          if (t5().encode(texts[j]) != want[j]) ++mismatches[static_cast<size_t>(k)];
        }
    });
  }
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace onereward
