// Unit tests of the building blocks: UTF-8 sanitising, the Python-compatible Unicode
// queries, transformers' Trie.split and AddedToken flags.
#include <gtest/gtest.h>

#include "engine/text/added_tokens.h"
#include "engine/text/py_unicode.h"
#include "engine/text/utf8.h"
#include "tests/text/test_support.h"

#include <cinttypes>
#include <cstdio>

namespace onereward::text {
namespace {

std::u32string U(const std::string& s) { return utf8_to_u32(s); }

TEST(Utf8, SanitizeReplacesEachBadByte) {
  EXPECT_EQ(sanitize_utf8("plain \xc3\xa9"), "plain \xc3\xa9");
  EXPECT_EQ(sanitize_utf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(sanitize_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");              // overlong
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(sanitize_utf8("x\xf0\x9f\x98"), "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // truncated
  EXPECT_EQ(u32_to_utf8(U("\xf0\x9f\x98\x80")), "\xf0\x9f\x98\x80");
}

TEST(PyUnicode, CategoriesFollowUnicode14) {
  EXPECT_EQ(py_major_category(U'a'), 'L');
  EXPECT_EQ(py_major_category(0x0301), 'M');
  EXPECT_EQ(py_major_category(U'5'), 'N');
  EXPECT_EQ(py_major_category(0x00BD), 'N');  // ½
  EXPECT_EQ(py_major_category(0x1F600), 'S');
  EXPECT_EQ(py_major_category(0x200B), 'C');  // Cf
  EXPECT_EQ(py_major_category(0xE000), 'C');  // Co
  // U+1FAE8 SHAKING FACE is Unicode 15.0: unassigned (Cn) for Python 3.11.
  EXPECT_EQ(py_major_category(0x1FAE8), 'C');
  EXPECT_TRUE(py_is_space_separator(0x3000));
  EXPECT_FALSE(py_is_space_separator(0x2028));  // Zl
  EXPECT_TRUE(py_isspace(0x2028));
  EXPECT_TRUE(py_isspace(0x1C));
  EXPECT_FALSE(regex_is_space(0x1C));
  EXPECT_FALSE(py_isspace(0x200B));
}

TEST(PyUnicode, LowerMatchesPython) {
  EXPECT_EQ(py_lower(U("HeLLo")), U("hello"));
  // Final sigma: 'ΟΔΟΣ'.lower() == 'οδος', 'ΣΑΣ'.lower() == 'σας', lone 'Σ' -> 'σ'.
  EXPECT_EQ(py_lower(U("\xce\x9f\xce\x94\xce\x9f\xce\xa3")), U("\xce\xbf\xce\xb4\xce\xbf\xcf\x82"));
  EXPECT_EQ(py_lower(U("\xce\xa3\xce\x91\xce\xa3")), U("\xcf\x83\xce\xb1\xcf\x82"));
  EXPECT_EQ(py_lower(U("\xce\xa3")), U("\xcf\x83"));
  // 'İ'.lower() == 'i̇' (two code points).
  EXPECT_EQ(py_lower(U("\xc4\xb0")), U("i\xcc\x87"));
}

// Exhaustive: every code point's category, Zs, isspace, regex \p{L} / \p{N},
// lower() and NFC as Python 3.11.2 / regex 2022.10.31 see them, hashed by
// gen_unicode_digest.py; recomputed here through ICU. (A one-off per-code-point diff
// during development found 0 mismatches in 1,112,064 code points.)
TEST(PyUnicode, ExhaustiveDigestMatchesPython311) {
  const auto doc = onereward::testing::load_json(
      onereward::testing::data_path("text/unicode_digest.json"));
  uint64_t h = 0xCBF29CE484222325ULL;
  auto feed = [&h](const std::string& s) {
    for (unsigned char b : s) h = (h ^ b) * 0x100000001B3ULL;
  };
  auto hex_join = [](const std::u32string& s) {
    std::string out;
    char buf[16];
    for (size_t i = 0; i < s.size(); ++i) {
      std::snprintf(buf, sizeof buf, i ? ".%x" : "%x", static_cast<unsigned>(s[i]));
      out += buf;
    }
    return out;
  };
  int64_t count = 0;
  char buf[64];
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    const std::string cat = py_category(cp);
    std::snprintf(buf, sizeof buf, "%x %s %d %d ", static_cast<unsigned>(cp), cat.c_str(),
                  py_is_space_separator(cp) ? 1 : 0, py_isspace(cp) ? 1 : 0);
    std::string line = buf;
    if (cat == "Cn") {
      line += "- - - -\n";
    } else {
      const std::u32string one(1, cp);
      line += std::string(regex_is_letter(cp) ? "1" : "0") + " " + (regex_is_number(cp) ? "1" : "0") +
              " " + hex_join(py_lower(one)) + " " + hex_join(nfc(one)) + "\n";
    }
    feed(line);
    ++count;
  }
  EXPECT_EQ(count, doc.at("code_points").get<int64_t>());
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016" PRIx64, h);
  EXPECT_EQ(std::string(digest), doc.at("fnv1a64").get<std::string>());
}

TEST(PyUnicode, Nfc) {
  EXPECT_EQ(nfc(U("e\xcc\x81")), U("\xc3\xa9"));
  EXPECT_EQ(nfc(U("\xe2\x84\xab")), U("\xc3\x85"));  // Angstrom sign -> Å (singleton)
  EXPECT_EQ(nfc(U("\xef\xac\x81")), U("\xef\xac\x81"));  // ligature ﬁ untouched (NFKC only)
}

std::vector<std::string> split(const std::vector<std::string>& words, const std::string& text) {
  AddedTokenSplitter s;
  int64_t id = 0;
  for (const auto& w : words) {
    AddedToken t;
    t.content = U(w);
    t.id = id++;
    s.add(t);
  }
  std::vector<std::string> out;
  for (const auto& piece : s.trie_split(U(text))) out.push_back(u32_to_utf8(piece));
  return out;
}

using V = std::vector<std::string>;

// The cases of transformers' TrieTest (tests/tokenization/test_tokenization_utils.py).
TEST(AddedTokenTrie, TransformersTrieCases) {
  EXPECT_EQ(split({}, "[CLS] This is a extra_id_100"), V{"[CLS] This is a extra_id_100"});
  EXPECT_EQ(split({"[CLS]", "extra_id_1", "extra_id_100"}, "[CLS] This is a extra_id_100"),
            (V{"[CLS]", " This is a ", "extra_id_100"}));
  EXPECT_EQ(split({"A"}, "ABC"), (V{"A", "BC"}));
  EXPECT_EQ(split({"A"}, "BCA"), (V{"BC", "A"}));
  EXPECT_EQ(split({"TOKEN]", "[SPECIAL_TOKEN]"}, "This is something [SPECIAL_TOKEN]"),
            (V{"This is something ", "[SPECIAL_TOKEN]"}));
  EXPECT_EQ(split({"A", "P", "[SPECIAL_TOKEN]"}, "This is something [SPECIAL_TOKEN]"),
            (V{"This is something ", "[SPECIAL_TOKEN]"}));
  EXPECT_EQ(split({"AB", "B", "C"}, "ABC"), (V{"AB", "C"}));
  EXPECT_EQ(split({"ABC", "B", "CD"}, "ABCD"), (V{"ABC", "D"}));
  // Longest match wins and the lookahead skips nested matches (checked against the
  // Python Trie in gen_t5_ids.py).
  EXPECT_EQ(split({"extra_id_1", "extra_id_100", "id_100"}, "extra_id_100 vs extra_id_1 x"),
            (V{"extra_id_100", " vs ", "extra_id_1", " x"}));
  EXPECT_EQ(split({"ab", "bcd", "b"}, "abcd"), (V{"ab", "cd"}));
  EXPECT_EQ(split({"ab", "bcd", "b"}, "xbcdx"), (V{"x", "bcd", "x"}));
  EXPECT_EQ(split({"<a>"}, ""), V{});
}

std::vector<std::string> chunks(const AddedToken& tok, const std::string& text) {
  AddedTokenSplitter s;
  s.add(tok);
  std::vector<std::string> out;
  for (const auto& c : s.split(U(text))) out.push_back((c.added ? "*" : "") + u32_to_utf8(c.text));
  return out;
}

TEST(AddedTokenTrie, StripAndSingleWordFlags) {
  AddedToken t;
  t.content = U("<m>");
  EXPECT_EQ(chunks(t, "a  <m>  b"), (V{"a  ", "*<m>", "  b"}));
  t.lstrip = true;
  EXPECT_EQ(chunks(t, "a  <m>  b"), (V{"a", "*<m>", "  b"}));
  t.rstrip = true;
  EXPECT_EQ(chunks(t, "a  <m>  b"), (V{"a", "*<m>", "b"}));
  EXPECT_EQ(chunks(t, " <m> "), (V{"*<m>"}));  // fully stripped neighbours disappear
  AddedToken w;
  w.content = U("<m>");
  w.single_word = true;
  EXPECT_EQ(chunks(w, "x<m> y"), (V{"x<m>", " y"}));  // glued to a left neighbour
  EXPECT_EQ(chunks(w, "x <m>y"), (V{"x ", "<m>y"}));  // glued to a right neighbour
  EXPECT_EQ(chunks(w, "x <m> y"), (V{"x ", "*<m>", " y"}));
}

}  // namespace
}  // namespace onereward::text
