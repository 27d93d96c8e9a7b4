// UTF-8 <-> code point helpers shared by the tokenizers.
//
// Python strings (what the reference tokenizers see) can never hold malformed UTF-8, so
// the tokenizers first sanitise their input with the same rule sentencepiece's normalizer
// uses for malformed bytes: every byte that does not start a valid, shortest-form,
// non-surrogate sequence becomes U+FFFD on its own (one replacement per bad byte).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace onereward::text {

constexpr char32_t kReplacementChar = 0xFFFD;

/// Decodes one code point at s[0..len). Sets *consumed (>= 1). Malformed input yields
/// U+FFFD with *consumed = 1 (sentencepiece's util::DecodeUTF8 rule).
char32_t decode_utf8(const char* s, size_t len, size_t* consumed);

/// True when decode_utf8 would succeed (a literal U+FFFD in the input counts as valid).
bool is_valid_utf8_char(const char* s, size_t len, size_t* consumed);

void append_utf8(char32_t cp, std::string* out);

std::u32string utf8_to_u32(std::string_view s);
std::string u32_to_utf8(std::u32string_view s);

/// Replaces malformed bytes by U+FFFD (see above); valid input is returned unchanged.
std::string sanitize_utf8(std::string_view s);

}  // namespace onereward::text
