#include "engine/text/utf8.h"

namespace onereward::text {
namespace {
inline bool is_trail(unsigned char c) { return (c & 0xC0) == 0x80; }
inline bool valid_cp(char32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }
}  // namespace

char32_t decode_utf8(const char* s, size_t len, size_t* consumed) {
  const auto* u = reinterpret_cast<const unsigned char*>(s);
  if (u[0] < 0x80) {
    *consumed = 1;
    return u[0];
  }
  if (len >= 2 && (u[0] & 0xE0) == 0xC0) {
    const char32_t cp = ((u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    if (is_trail(u[1]) && cp >= 0x80 && valid_cp(cp)) {
      *consumed = 2;
      return cp;
    }
  } else if (len >= 3 && (u[0] & 0xF0) == 0xE0) {
    const char32_t cp = ((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    if (is_trail(u[1]) && is_trail(u[2]) && cp >= 0x800 && valid_cp(cp)) {
      *consumed = 3;
      return cp;
    }
  } else if (len >= 4 && (u[0] & 0xF8) == 0xF0) {
    const char32_t cp =
        ((u[0] & 0x07) << 18) | ((u[1] & 0x3F) << 12) | ((u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    if (is_trail(u[1]) && is_trail(u[2]) && is_trail(u[3]) && cp >= 0x10000 && valid_cp(cp)) {
      *consumed = 4;
      return cp;
    }
  }
  *consumed = 1;
  return kReplacementChar;
}

bool is_valid_utf8_char(const char* s, size_t len, size_t* consumed) {
  const char32_t c = decode_utf8(s, len, consumed);
  return c != kReplacementChar || *consumed == 3;
}

void append_utf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::u32string utf8_to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t n = 1;
    out.push_back(decode_utf8(s.data() + i, s.size() - i, &n));
    i += n;
  }
  return out;
}

std::string u32_to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(c, &out);
  return out;
}

std::string sanitize_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {  // fast path: find the first malformed byte, if any
    size_t n = 1;
    if (!is_valid_utf8_char(s.data() + i, s.size() - i, &n)) break;
    i += n;
  }
  if (i == s.size()) return std::string(s);
  std::string out(s.substr(0, i));
  while (i < s.size()) {
    size_t n = 1;
    append_utf8(decode_utf8(s.data() + i, s.size() - i, &n), &out);
    i += n;
  }
  return out;
}

}  // namespace onereward::text
