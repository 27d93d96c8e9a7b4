// Loading errors: missing files -> kNotFound, malformed files -> kDataLoss, and every
// message names the offending file. Bad files are written to a fresh temp dir.
#include <gtest/gtest.h>

#include "engine/text/clip_tokenizer.h"
#include "engine/text/sentencepiece.h"
#include "engine/text/t5_tokenizer.h"
#include "engine/util/status.h"
#include <cstring>
#include "tests/text/test_support.h"

namespace onereward {
namespace {

using testing::TempDir;

// Runs fn, expects an onereward::Error with `code` whose message contains every needle.
template <class Fn>
void expect_error(Fn&& fn, StatusCode code, std::vector<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
        << "'" << n << "' not in: " << e.what();
  }
}

// --- tiny protobuf writer for synthetic spiece.model files ---
std::string varint(uint64_t v) {
  std::string out;
  do {
    uint8_t b = v & 0x7F;
    v >>= 7;
    if (v) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (v);
  return out;
}
std::string field_bytes(uint32_t f, const std::string& body) {
  return varint((uint64_t{f} << 3) | 2) + varint(body.size()) + body;
}
std::string field_varint(uint32_t f, uint64_t v) { return varint(uint64_t{f} << 3) + varint(v); }
std::string field_float(uint32_t f, float x) {
  std::string out = varint((uint64_t{f} << 3) | 5);
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  return out;
}
std::string piece(const std::string& p, float score, int type) {
  return field_bytes(1, field_bytes(1, p) + field_float(2, score) + field_varint(3, static_cast<uint64_t>(type)));
}
// A minimal valid unigram model: <unk>, ▁, a, b, ab.
std::string tiny_model(const std::string& extra = "") {
  return piece("<unk>", 0, 2) + piece("\xe2\x96\x81", -1, 1) + piece("a", -2, 1) +
         piece("b", -2, 1) + piece("ab", -1.5f, 1) + extra;
}

TEST(TokenizerErrors, ClipMissingFiles) {
  TempDir d;
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kNotFound, {d.file("vocab.json")});
  d.write("vocab.json", R"({"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2})");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kNotFound, {d.file("merges.txt")});
  expect_error([&] { ClipTokenizer::load("/nonexistent/dir"); }, StatusCode::kNotFound, {"/nonexistent/dir/vocab.json"});
}

TEST(TokenizerErrors, ClipMalformedVocab) {
  TempDir d;
  d.write("merges.txt", "#version: 0.2\na b\n");
  for (const std::string bad : {"{not json", "[1, 2, 3]", R"({"a": "x"})", R"({"a": -1})", "{}", ""}) {
    d.write("vocab.json", bad);
    expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("vocab.json")});
  }
}

TEST(TokenizerErrors, ClipMalformedMerges) {
  TempDir d;
  d.write("vocab.json", R"({"a</w>": 0, "b</w>": 3, "<|startoftext|>": 1, "<|endoftext|>": 2})");
  d.write("merges.txt", "");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("merges.txt"), "empty"});
  d.write("merges.txt", "a b\nc d\n");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("merges.txt"), "#version"});
  d.write("merges.txt", "#version: 0.2\na b\nc d e\n");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("merges.txt"), "line 3"});
  d.write("merges.txt", "#version: 0.2\na b\n\nc d\n");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("merges.txt"), "line 3"});
  d.write("merges.txt", "#version: 0.2\na \xff\n");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("merges.txt"), "UTF-8"});
  // A well-formed tiny pair of files loads and tokenizes (old-Mac "\r" line ends are
  // newlines for Python's text-mode read too).
  d.write("merges.txt", "#version: 0.2\ra b</w>\r");
  d.write("vocab.json", R"({"a</w>": 0, "b</w>": 3, "ab</w>": 4, "<|startoftext|>": 1, "<|endoftext|>": 2})");
  EXPECT_EQ(ClipTokenizer::load(d.path()).encode_no_special("ab"), (std::vector<int64_t>{4}));
  d.write("merges.txt", "#version: 0.2\na b</w>\n");
  d.write("vocab.json", R"({"a</w>": 0, "b</w>": 3, "ab</w>": 4, "<|startoftext|>": 1, "<|endoftext|>": 2})");
  const ClipTokenizer t = ClipTokenizer::load(d.path());
  EXPECT_EQ(t.encode_no_special("ab a"), (std::vector<int64_t>{4, 0}));
  EXPECT_EQ(t.encode_no_special("z"), (std::vector<int64_t>{2}));  // unknown -> unk (<|endoftext|>)
}

TEST(TokenizerErrors, ClipMalformedConfig) {
  TempDir d;
  d.write("vocab.json", R"({"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2})");
  d.write("merges.txt", "#version: 0.2\n");
  d.write("tokenizer_config.json", "{oops");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("tokenizer_config.json")});
  d.write("tokenizer_config.json", R"({"model_max_length": "long"})");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {d.file("tokenizer_config.json"), "model_max_length"});
  d.write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  expect_error([&] { ClipTokenizer::load(d.path()); }, StatusCode::kDataLoss, {"<s>"});
}

TEST(TokenizerErrors, T5MissingFiles) {
  TempDir d;
  expect_error([&] { T5Tokenizer::load(d.path()); }, StatusCode::kNotFound, {d.file("spiece.model")});
}

TEST(TokenizerErrors, SpieceModelStructure) {
  TempDir d;
  const std::string path = d.file("spiece.model");
  auto load = [&] { text::SentencePiece::load(path); };
  struct Case {
    std::string name, bytes, needle;
  };
  const std::string real = testing::slurp(testing::t5_dir() + "/spiece.model");
  const std::vector<Case> cases = {
      {"empty file", "", "empty"},
      {"truncated real model", real.substr(0, real.size() - 100), "truncated"},
      {"cut inside a varint", tiny_model() + "\x0a\x80", "truncated varint"},
      {"bad varint", tiny_model() + std::string(1, '\x38') + std::string(11, '\xff'), "bad varint"},
      {"bad varint tag", std::string(11, '\xff'), "bad varint"},
      {"wrong wire type", tiny_model() + field_varint(1, 5), "wire type"},
      {"wrong wire type inside a piece", field_bytes(1, field_varint(1, 7)), "wire type"},
      {"group wire type", std::string("\x0b"), "wire type"},
      {"field number 0", std::string("\x02\x00", 2), "field number"},
      {"no pieces", field_bytes(2, field_varint(3, 1)), "no pieces"},
      {"empty piece", piece("<unk>", 0, 2) + field_bytes(1, ""), "empty"},
      {"unknown piece type", tiny_model() + piece("x", 0, 9), "piece type"},
      {"duplicate piece", tiny_model() + piece("a", -3, 1), "defined twice"},
      {"no unk", piece("a", -1, 1), "unknown"},
      {"two unks", tiny_model() + piece("<unk2>", 0, 2), "more than one"},
      {"bpe model", tiny_model() + field_bytes(2, field_varint(3, 2)), "model_type"},
      {"charsmap too short", tiny_model() + field_bytes(3, field_bytes(2, "\x01\x00")), "charsmap"},
      {"charsmap trie too big", tiny_model() + field_bytes(3, field_bytes(2, std::string("\x00\x01\x00\x00xxxx", 8))), "charsmap"},
      {"byte piece without byte_fallback", tiny_model() + piece("<0x41>", 0, 6), "byte_fallback"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    d.write("spiece.model", c.bytes);
    expect_error(load, StatusCode::kDataLoss, {path, c.needle});
  }
  // The same T5Tokenizer::load path reports the file too.
  d.write("spiece.model", "\x0a\x05" "ab");
  expect_error([&] { T5Tokenizer::load(d.path()); }, StatusCode::kDataLoss, {path, "truncated"});
}

TEST(TokenizerErrors, TinyModelLoadsAndSegments) {
  TempDir d;
  // Unknown fields (here: trainer_spec field 99, top-level field 7) are skipped.
  d.write("spiece.model", tiny_model(field_bytes(2, field_varint(99, 1)) + field_varint(7, 3)));
  const auto sp = text::SentencePiece::load(d.file("spiece.model"));
  // No charsmap: identity normalization; "ab" (-1.5) beats "a" + "b" (-4); "c" is unknown.
  const auto got = sp.encode("ab c");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].piece, "\xe2\x96\x81");
  EXPECT_EQ(got[1].piece, "ab");
  EXPECT_EQ(got[2].piece, "\xe2\x96\x81");
  EXPECT_EQ(got[3].id, 0);  // <unk>
  // A user-defined piece scores length * max_score - 0.1 where sentencepiece's max_score
  // starts at FLT_MIN (> every negative score), i.e. about -0.1: "ba" beats "ab" + "a".
  // Expected values from the real library on this same tiny model (sentencepiece 0.1.97:
  // encode("xba") -> ['▁','x','ba'] [1,0,5]; encode("aba") -> ['▁','a','ba'] [1,2,5]).
  d.write("spiece.model", tiny_model(piece("ba", 0, 4)));
  const auto ud = text::SentencePiece::load(d.file("spiece.model"));
  auto id_list = [](const std::vector<text::SpPiece>& v) {
    std::vector<int32_t> out;
    for (const auto& p : v) out.push_back(p.id);
    return out;
  };
  EXPECT_EQ(id_list(ud.encode("xba")), (std::vector<int32_t>{1, 0, 5}));
  EXPECT_EQ(id_list(ud.encode("aba")), (std::vector<int32_t>{1, 2, 5}));
  EXPECT_EQ(id_list(ud.encode("ba ba")), (std::vector<int32_t>{1, 5, 1, 5}));
}

}  // namespace
}  // namespace onereward
