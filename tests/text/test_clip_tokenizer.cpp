// CLIP tokenizer tests: the golden reference ids, the Python-generated edge-case table
// (tests/data/text/clip_ids.json, see gen_clip_ids.py), hand-derived cases, framing /
// truncation / padding, and concurrent use.
#include "engine/text/clip_tokenizer.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/text/test_support.h"

namespace onereward {
namespace {

using testing::clip_dir;
using testing::data_path;

const ClipTokenizer& clip() {
  static const ClipTokenizer t = ClipTokenizer::load(clip_dir());
  return t;
}

// vocab.json lookups for the hand-derived expectations.
int64_t vocab(const std::string& token) {
  static const nlohmann::json v = testing::load_json(clip_dir() + "/vocab.json");
  return v.at(token).get<int64_t>();
}

std::vector<int64_t> vocab_ids(const std::vector<std::string>& tokens) {
  std::vector<int64_t> out;
  for (const auto& t : tokens) out.push_back(vocab(t));
  return out;
}

// The 8 prompts of cases/component_clip against the reference's input_ids [8, 77].
TEST(ClipGolden, MatchesReferenceIds) {
  const auto cs = testing::load_json(data_path("golden/cases/component_clip/case.json"));
  const auto prompts = cs.at("prompts").get<std::vector<std::string>>();
  const auto counts = cs.at("untruncated_token_counts").get<std::vector<size_t>>();
  std::vector<int64_t> shape;
  const auto ids = testing::read_safetensors_i64(
      data_path("golden/cases/component_clip/expected.safetensors"), "input_ids", &shape);
  ASSERT_EQ(shape, (std::vector<int64_t>{8, 77}));
  ASSERT_EQ(prompts.size(), 8u);
  EXPECT_EQ(clip().max_length(), 77);
  for (size_t p = 0; p < prompts.size(); ++p) {
    const std::vector<int64_t> want(ids.begin() + static_cast<long>(p * 77),
                                    ids.begin() + static_cast<long>((p + 1) * 77));
    EXPECT_EQ(clip().encode(prompts[p]), want) << "prompt " << p << ": " << prompts[p];
    EXPECT_EQ(clip().untruncated_length(prompts[p]), counts[p]) << "prompt " << p;
  }
}

// 428 strings (golden prompts, whitespace, punctuation, NFC/NFKC-ish input, ligatures,
// many scripts, emoji, control / format / private-use / unassigned characters, special
// tokens in the text, long input, 300 seeded random mixes) tokenized by a Python
// restatement of the slow CLIPTokenizer on Python 3.11 / regex 2022.10.31.
TEST(ClipTable, MatchesPythonTokensAndIds) {
  const auto doc = testing::load_json(data_path("text/clip_ids.json"));
  size_t n = 0;
  for (const auto& c : doc.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    EXPECT_EQ(clip().tokenize(text), c.at("tokens").get<std::vector<std::string>>())
        << "text: " << nlohmann::json(text).dump();
    EXPECT_EQ(clip().encode_no_special(text), c.at("ids").get<std::vector<int64_t>>())
        << "text: " << nlohmann::json(text).dump();
    ++n;
  }
  EXPECT_GT(n, 400u);
}

TEST(ClipFraming, EmptyStringIsBosEosPadding) {
  // "" -> no tokens -> [<|startoftext|>, <|endoftext|>] then 75 x pad (= <|endoftext|>).
  std::vector<int64_t> want(77, 49407);
  want[0] = 49406;
  EXPECT_EQ(clip().encode(""), want);
  EXPECT_EQ(clip().untruncated_length(""), 2u);
  EXPECT_EQ(clip().bos_id(), 49406);
  EXPECT_EQ(clip().eos_id(), 49407);
  EXPECT_EQ(clip().pad_id(), 49407);
}

TEST(ClipFraming, LongInputIsTruncatedTo75PlusSpecials) {
  // 100 x "word": each is the single BPE token "word</w>" -> bos + 75 x word + eos.
  std::string text;
  for (int i = 0; i < 100; ++i) text += "word ";
  const auto ids = clip().encode(text);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), 49406);
  EXPECT_EQ(ids.back(), 49407);
  for (size_t i = 1; i < 76; ++i) EXPECT_EQ(ids[i], vocab("word</w>")) << i;
  EXPECT_EQ(clip().untruncated_length(text), 102u);
}

// Hand-derived cases: expected BPE tokens worked out from the algorithm, ids looked up in
// vocab.json.
TEST(ClipHandDerived, WordsPunctuationCase) {
  // BasicTokenizer lower-cases; the regex splits letters runs from punctuation runs;
  // "hello</w>", ",</w>", "world</w>", "!</w>" are whole-word vocab entries (their merge
  // chains exist), so BPE returns them unchanged.
  EXPECT_EQ(clip().encode_no_special("Hello, World!"),
            vocab_ids({"hello</w>", ",</w>", "world</w>", "!</w>"}));
  EXPECT_EQ(clip().tokenize("HELLO"), clip().tokenize("hello"));
}

TEST(ClipHandDerived, WhitespaceAndControlCharacters) {
  // \t \n \r and Zs (U+00A0, U+3000) become spaces -> separate words.
  EXPECT_EQ(clip().encode_no_special("a\tb\nc\r\nd\u00a0e\u3000f"),
            vocab_ids({"a</w>", "b</w>", "c</w>", "d</w>", "e</w>", "f</w>"}));
  // Control / format characters (Cc, Cf) are deleted, not replaced: "x\0y\ay\u200bz"
  // is the single word "xyyz".
  EXPECT_EQ(clip().tokenize(std::string("x\0y\ay\xe2\x80\x8bz", 9)), clip().tokenize("xyyz"));
}

TEST(ClipHandDerived, NumbersAreSingleDigits) {
  // [\p{N}] matches one digit at a time; each digit ends its word.
  EXPECT_EQ(clip().encode_no_special("2024"), vocab_ids({"2</w>", "0</w>", "2</w>", "4</w>"}));
}

TEST(ClipHandDerived, Contractions) {
  // "'t" is its own regex alternative: "don't" -> "don" + "'t".
  EXPECT_EQ(clip().encode_no_special("don't"), vocab_ids({"don</w>", "'t</w>"}));
}

TEST(ClipHandDerived, EmojiBytes) {
  // U+1F600 = F0 9F 98 80; bytes_to_unicode keeps 0xF0 as 'ð' and maps the non-printable
  // bytes 0x9F, 0x98, 0x80 to U+0141 'Ł', U+013A 'ĺ', U+0122 'Ģ' (256 + their rank among
  // the unprintable bytes); the vocab holds the whole word "ðŁĺĢ</w>".
  EXPECT_EQ(clip().tokenize("\xF0\x9F\x98\x80"),
            std::vector<std::string>{"\xc3\xb0\xc5\x81\xc4\xba\xc4\xa2</w>"});
  EXPECT_EQ(clip().encode_no_special("\xF0\x9F\x98\x80"), vocab_ids({"ðŁĺĢ</w>"}));
}

TEST(ClipHandDerived, AccentsNfcAndCjk) {
  // NFC makes decomposed "cafe\u0301" equal to "café"; accents are kept (strip_accents=False).
  EXPECT_EQ(clip().tokenize("cafe\xcc\x81"), clip().tokenize("caf\xc3\xa9"));
  EXPECT_NE(clip().tokenize("caf\xc3\xa9"), clip().tokenize("cafe"));
  // CJK ideographs get spaces around them, so "日本" tokenizes as "日 本".
  EXPECT_EQ(clip().tokenize("\xe6\x97\xa5\xe6\x9c\xac"), clip().tokenize("\xe6\x97\xa5 \xe6\x9c\xac"));
}

TEST(ClipHandDerived, SpecialTokensInText) {
  // The added-token trie isolates <|endoftext|> before BasicTokenizer runs.
  EXPECT_EQ(clip().encode_no_special("a<|endoftext|>b"), (std::vector<int64_t>{vocab("a</w>"), 49407, vocab("b</w>")}));
  // Not matched by the (case-sensitive) trie, upper case still becomes <|endoftext|> via
  // lower-casing + the regex's literal alternative + the pre-seeded BPE cache.
  EXPECT_EQ(clip().encode_no_special("<|ENDOFTEXT|>"), (std::vector<int64_t>{49407}));
  // The first <|endoftext|> in the sequence (pooled position) is then the user's one.
  const auto ids = clip().encode("x<|endoftext|>");
  EXPECT_EQ(ids[0], 49406);
  EXPECT_EQ(ids[1], vocab("x</w>"));
  EXPECT_EQ(ids[2], 49407);
}

TEST(ClipHandDerived, InvalidUtf8BecomesReplacementAndIsDropped) {
  // Malformed bytes become U+FFFD, which BasicTokenizer deletes.
  EXPECT_EQ(clip().tokenize("ab\xff\xfe" "cd"), clip().tokenize("abcd"));
}

TEST(ClipConcurrency, ParallelEncodesAgree) {
  const auto doc = testing::load_json(data_path("text/clip_ids.json"));
  std::vector<std::string> texts;
  for (const auto& c : doc.at("cases")) texts.push_back(c.at("text").get<std::string>());
  std::vector<std::vector<int64_t>> want;
  for (const auto& t : texts) want.push_back(clip().encode(t));
  // A fresh tokenizer so the threads race on an empty BPE cache.
  const ClipTokenizer fresh = ClipTokenizer::load(clip_dir());
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t j = (i * 7 + static_cast<size_t>(k) * 13) % texts.size();
          if (fresh.encode(texts[j]) != want[j]) ++mismatches[static_cast<size_t>(k)];
        }
    });
  }
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace onereward
