#include "engine/text/clip_basic_tokenizer.h"

#include "engine/text/py_unicode.h"

namespace onereward::text {
namespace {

// tokenization_utils._is_control: \t \n \r count as whitespace, everything in C* else.
bool bert_is_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  if (c >= 0x20 && c < 0x7F) return false;  // printable ASCII fast path
  return py_major_category(c) == 'C';
}

// tokenization_utils._is_whitespace.
bool bert_is_whitespace(char32_t c) {
  if (c == U' ' || c == U'\t' || c == U'\n' || c == U'\r') return true;
  if (c < 0x80) return false;
  return py_is_space_separator(c);
}

}  // namespace

bool is_bert_chinese_char(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

std::vector<std::u32string> clip_basic_tokenize(std::u32string_view text) {
  // _clean_text + _tokenize_chinese_chars in one pass (both are per-character maps).
  std::u32string cleaned;
  cleaned.reserve(text.size() + 8);
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || bert_is_control(c)) continue;
    if (bert_is_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (is_bert_chinese_char(c)) {
      cleaned.push_back(U' ');
      cleaned.push_back(c);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(c);
    }
  }
  const std::u32string normalized = nfc(cleaned);
  // whitespace_tokenize (str.strip + str.split), lower-casing each token on its own:
  // str.lower()'s Final_Sigma rule only sees the token.
  std::vector<std::u32string> tokens;
  size_t i = 0;
  const size_t n = normalized.size();
  while (i < n) {
    while (i < n && py_isspace(normalized[i])) ++i;
    if (i == n) break;
    size_t j = i;
    while (j < n && !py_isspace(normalized[j])) ++j;
    tokens.push_back(py_lower(std::u32string_view(normalized).substr(i, j - i)));
    i = j;
  }
  // The final whitespace_tokenize(" ".join(split_tokens)) is a no-op: lower() never
  // produces whitespace.
  return tokens;
}

}  // namespace onereward::text
