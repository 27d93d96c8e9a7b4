#include "engine/text/clip_pretokenizer.h"

#include "engine/text/py_unicode.h"

namespace onereward::text {
namespace {

// One pattern character against one text character under the `regex` module's
// IGNORECASE (simple case folding). The literals are ASCII lower case; besides their
// upper-case forms only U+017F LATIN SMALL LETTER LONG S folds onto one of them ('s').
// (Checked exhaustively against regex 2022.10.31, the reference's version.)
bool ci_equal(char32_t pattern, char32_t c) {
  if (c == pattern) return true;
  if (pattern >= U'a' && pattern <= U'z' && c == pattern - 32) return true;
  return pattern == U's' && c == 0x17F;
}

size_t match_literal(std::u32string_view text, size_t pos, std::u32string_view lit) {
  if (text.size() - pos < lit.size()) return 0;
  for (size_t k = 0; k < lit.size(); ++k)
    if (!ci_equal(lit[k], text[pos + k])) return 0;
  return lit.size();
}

// U+0345 COMBINING GREEK YPOGEGRAMMENI is neither \p{L} nor \p{N}, but under
// IGNORECASE the negated class [^\s\p{L}\p{N}] rejects it too (its case partner
// U+03B9 is a letter), so no alternative matches it and findall skips it.
bool in_other_class(char32_t c) {
  return !regex_is_space(c) && !regex_is_letter(c) && !regex_is_number(c) && c != 0x345;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> clip_pretokenize(std::u32string_view text) {
  static constexpr std::u32string_view kLiterals[] = {
      U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  std::vector<std::pair<size_t, size_t>> out;
  const size_t n = text.size();
  size_t pos = 0;
  while (pos < n) {
    size_t len = 0;
    for (auto lit : kLiterals) {
      len = match_literal(text, pos, lit);
      if (len) break;
    }
    if (!len && regex_is_letter(text[pos])) {
      len = 1;
      while (pos + len < n && regex_is_letter(text[pos + len])) ++len;
    }
    if (!len && regex_is_number(text[pos])) len = 1;
    if (!len && in_other_class(text[pos])) {
      len = 1;
      while (pos + len < n && in_other_class(text[pos + len])) ++len;
    }
    if (len) {
      out.emplace_back(pos, pos + len);
      pos += len;
    } else {
      ++pos;  // no alternative matches here (whitespace, U+0345)
    }
  }
  return out;
}

}  // namespace onereward::text
