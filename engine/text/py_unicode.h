// Python-compatible Unicode character semantics, backed by ICU.
//
// The reference tokenizers ran on CPython 3.11 (unicodedata 14.0.0) and the `regex`
// module. ICU 72 knows Unicode 15.0, so every query here first checks the character's
// Unicode age: a code point assigned after 14.0 is reported as unassigned (Cn), exactly
// as Python 3.11's unicodedata sees it. Case mapping and NFC use ICU's full (context
// sensitive, root locale) algorithms, which are what str.lower() and
// unicodedata.normalize('NFC') implement.
#pragma once

#include <string>
#include <string_view>

namespace onereward::text {

/// unicodedata.category(c), e.g. "Lu", "Mn", "Zs", "Cn".
const char* py_category(char32_t c);
/// First letter of unicodedata.category(c): 'L','M','N','P','S','Z' or 'C'.
char py_major_category(char32_t c);
/// unicodedata.category(c) == "Zs".
bool py_is_space_separator(char32_t c);

/// str.isspace() for one character (bidi class WS/B/S or category Zs), the separator
/// set of str.split() / str.strip() without arguments.
bool py_isspace(char32_t c);

/// `\s` of the `regex` module (Unicode White_Space: py_isspace minus U+001C..U+001F).
bool regex_is_space(char32_t c);
/// `\p{L}` / `\p{N}` of the `regex` module.
bool regex_is_letter(char32_t c);
bool regex_is_number(char32_t c);

/// str.lower(): full lower-case mapping incl. SpecialCasing (U+0130 -> "i\u0307") and
/// the Final_Sigma context rule, evaluated within `s`.
std::u32string py_lower(std::u32string_view s);

/// unicodedata.normalize("NFC", s).
std::u32string nfc(std::u32string_view s);

}  // namespace onereward::text
