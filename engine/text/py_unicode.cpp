#include "engine/text/py_unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include <cstring>
#include <vector>

#include "engine/util/status.h"

namespace onereward::text {
namespace {

// Python 3.11 ships Unicode 14.0.0.
bool assigned_after_python_unicode(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  static const uint8_t kPython[U_MAX_VERSION_LENGTH] = {14, 0, 0, 0};
  return std::memcmp(age, kPython, U_MAX_VERSION_LENGTH) > 0;
}

int8_t py_char_type(char32_t c) {
  if (c > 0x10FFFF) return U_UNASSIGNED;
  if (c < 0x80) return u_charType(static_cast<UChar32>(c));  // ASCII: no age lookup
  if (assigned_after_python_unicode(c)) return U_UNASSIGNED;
  return u_charType(static_cast<UChar32>(c));
}

icu::UnicodeString to_icu(std::u32string_view s) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(s.data()),
                                       static_cast<int32_t>(s.size()));
}

std::u32string from_icu(const icu::UnicodeString& u) {
  std::u32string out(static_cast<size_t>(u.countChar32()), U'\0');
  UErrorCode err = U_ZERO_ERROR;
  u.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), err);
  if (U_FAILURE(err)) throw_error(StatusCode::kInternal, "ICU UTF-32 conversion failed");
  return out;
}

bool all_ascii(std::u32string_view s) {
  for (char32_t c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace

const char* py_category(char32_t c) {
  switch (py_char_type(c)) {
    case U_UPPERCASE_LETTER: return "Lu";
    case U_LOWERCASE_LETTER: return "Ll";
    case U_TITLECASE_LETTER: return "Lt";
    case U_MODIFIER_LETTER: return "Lm";
    case U_OTHER_LETTER: return "Lo";
    case U_NON_SPACING_MARK: return "Mn";
    case U_ENCLOSING_MARK: return "Me";
    case U_COMBINING_SPACING_MARK: return "Mc";
    case U_DECIMAL_DIGIT_NUMBER: return "Nd";
    case U_LETTER_NUMBER: return "Nl";
    case U_OTHER_NUMBER: return "No";
    case U_SPACE_SEPARATOR: return "Zs";
    case U_LINE_SEPARATOR: return "Zl";
    case U_PARAGRAPH_SEPARATOR: return "Zp";
    case U_CONTROL_CHAR: return "Cc";
    case U_FORMAT_CHAR: return "Cf";
    case U_PRIVATE_USE_CHAR: return "Co";
    case U_SURROGATE: return "Cs";
    case U_DASH_PUNCTUATION: return "Pd";
    case U_START_PUNCTUATION: return "Ps";
    case U_END_PUNCTUATION: return "Pe";
    case U_CONNECTOR_PUNCTUATION: return "Pc";
    case U_OTHER_PUNCTUATION: return "Po";
    case U_INITIAL_PUNCTUATION: return "Pi";
    case U_FINAL_PUNCTUATION: return "Pf";
    case U_MATH_SYMBOL: return "Sm";
    case U_CURRENCY_SYMBOL: return "Sc";
    case U_MODIFIER_SYMBOL: return "Sk";
    case U_OTHER_SYMBOL: return "So";
    default: return "Cn";
  }
}

char py_major_category(char32_t c) { return py_category(c)[0]; }

bool py_is_space_separator(char32_t c) { return py_char_type(c) == U_SPACE_SEPARATOR; }

bool py_isspace(char32_t c) {
  // CPython's _PyUnicode_IsWhitespace table for Unicode 14.0 (stable since 6.3).
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D:
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x20:
    case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool regex_is_space(char32_t c) { return py_isspace(c) && !(c >= 0x1C && c <= 0x1F); }

bool regex_is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return py_major_category(c) == 'L';
}

bool regex_is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return py_major_category(c) == 'N';
}

std::u32string py_lower(std::u32string_view s) {
  if (all_ascii(s)) {
    std::u32string out(s);
    for (char32_t& c : out)
      if (c >= 'A' && c <= 'Z') c += 32;
    return out;
  }
  const icu::UnicodeString src = to_icu(s);
  // Full case mapping can grow the string (U+0130 -> 2 code units); retry with the
  // size ICU reports.
  std::vector<UChar> buf(static_cast<size_t>(src.length()) * 2 + 16);
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = u_strToLower(buf.data(), static_cast<int32_t>(buf.size()), src.getBuffer(),
                           src.length(), "", &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    buf.resize(static_cast<size_t>(n) + 1);
    err = U_ZERO_ERROR;
    n = u_strToLower(buf.data(), static_cast<int32_t>(buf.size()), src.getBuffer(),
                     src.length(), "", &err);
  }
  if (U_FAILURE(err)) throw_error(StatusCode::kInternal, "ICU u_strToLower failed");
  return from_icu(icu::UnicodeString(buf.data(), n));
}

std::u32string nfc(std::u32string_view s) {
  if (all_ascii(s)) return std::u32string(s);
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n2 = icu::Normalizer2::getNFCInstance(err);
  if (U_FAILURE(err)) throw_error(StatusCode::kInternal, "ICU NFC normalizer unavailable");
  const icu::UnicodeString src = to_icu(s);
  if (n2->isNormalized(src, err) && U_SUCCESS(err)) return std::u32string(s);
  err = U_ZERO_ERROR;
  const icu::UnicodeString out = n2->normalize(src, err);
  if (U_FAILURE(err)) throw_error(StatusCode::kInternal, "ICU NFC normalization failed");
  return from_icu(out);
}

}  // namespace onereward::text
