#include "engine/text/sp_normalizer.h"

#include "engine/text/utf8.h"
#include "engine/util/status.h"

namespace onereward::text {
namespace {

// darts-clone DoubleArrayUnit accessors.
inline bool has_leaf(uint32_t u) { return ((u >> 8) & 1) == 1; }
inline uint32_t value_of(uint32_t u) { return u & ((1U << 31) - 1); }
inline uint32_t label_of(uint32_t u) { return u & ((1U << 31) | 0xFF); }
inline uint32_t offset_of(uint32_t u) { return (u >> 10) << ((u & (1U << 9)) >> 6); }

constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";  // U+2581

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

DartsArray::DartsArray(std::string_view blob) {
  units_.resize(blob.size() / 4);
  for (size_t i = 0; i < units_.size(); ++i) {
    const auto* p = reinterpret_cast<const uint8_t*>(blob.data() + 4 * i);
    units_[i] = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  }
}

// DoubleArrayImpl::commonPrefixSearch with an explicit length.
void DartsArray::common_prefix_search(const char* s, size_t len, std::vector<Match>* out) const {
  out->clear();
  if (units_.empty()) return;
  uint32_t node_pos = 0;
  uint32_t unit = units_[node_pos];
  node_pos ^= offset_of(unit);
  for (size_t i = 0; i < len; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    node_pos ^= c;
    if (node_pos >= units_.size()) return;
    unit = units_[node_pos];
    if (label_of(unit) != c) return;
    node_pos ^= offset_of(unit);
    if (has_leaf(unit)) {
      if (node_pos >= units_.size()) return;
      out->push_back(Match{i + 1, value_of(units_[node_pos])});
    }
  }
}

SpNormalizer::SpNormalizer(const std::string& charsmap, const NormalizerOptions& options,
                           std::vector<std::string> user_defined_symbols,
                           const std::string& path)
    : options_(options), user_defined_(std::move(user_defined_symbols)) {
  if (charsmap.empty()) return;
  // <trie size (uint32 LE)><double array trie><normalized strings>
  if (charsmap.size() <= 4)
    throw_error(StatusCode::kDataLoss, path + ": precompiled_charsmap is truncated");
  const auto* p = reinterpret_cast<const uint8_t*>(charsmap.data());
  const uint32_t trie_size = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                             (static_cast<uint32_t>(p[2]) << 16) |
                             (static_cast<uint32_t>(p[3]) << 24);
  if (trie_size > charsmap.size() - 4 || trie_size % 4 != 0 || trie_size == 0)
    throw_error(StatusCode::kDataLoss, path + ": precompiled_charsmap trie size " +
                                           std::to_string(trie_size) + " does not fit the " +
                                           std::to_string(charsmap.size()) + "-byte blob");
  trie_ = DartsArray(std::string_view(charsmap).substr(4, trie_size));
  normalized_ = charsmap.substr(4 + trie_size);
}

std::pair<std::string_view, size_t> SpNormalizer::normalize_prefix(std::string_view input) const {
  if (input.empty()) return {std::string_view(), 0};
  // User-defined symbols pass through unchanged (PrefixMatcher: longest match).
  size_t ud_len = 0;
  for (const auto& u : user_defined_)
    if (u.size() > ud_len && input.substr(0, u.size()) == u) ud_len = u.size();
  if (ud_len) return {input.substr(0, ud_len), ud_len};

  size_t longest_length = 0;
  uint32_t longest_value = 0;
  if (!trie_.empty()) {
    thread_local std::vector<DartsArray::Match> matches;
    trie_.common_prefix_search(input.data(), input.size(), &matches);
    for (const auto& m : matches) {
      if (longest_length == 0 || m.length > longest_length) {
        longest_length = m.length;
        longest_value = m.value;
      }
    }
  }
  if (longest_length == 0) {
    size_t n = 1;
    if (!is_valid_utf8_char(input.data(), input.size(), &n)) {
      // Malformed UTF-8: one byte becomes U+FFFD.
      return {std::string_view("\xEF\xBF\xBD", 3), 1};
    }
    return {input.substr(0, n), n};
  }
  if (longest_value >= normalized_.size()) {
    // A corrupt value: treat as an empty replacement rather than reading out of range.
    return {std::string_view(), longest_length};
  }
  const char* s = normalized_.data() + longest_value;
  const size_t max = normalized_.size() - longest_value;
  size_t n = 0;
  while (n < max && s[n] != '\0') ++n;
  return {std::string_view(s, n), longest_length};
}

std::string SpNormalizer::normalize(std::string_view input) const {
  std::string out;
  if (input.empty()) return out;
  // Ignores heading space.
  if (options_.remove_extra_whitespaces) {
    while (!input.empty()) {
      const auto p = normalize_prefix(input);
      if (p.first != " ") break;
      input.remove_prefix(p.second);
    }
  }
  if (input.empty()) return out;
  out.reserve(input.size() * 3);
  auto add_ws = [&]() {
    if (options_.escape_whitespaces) {
      out.append(kSpaceSymbol);
    } else {
      out.push_back(' ');
    }
  };
  if (!options_.treat_whitespace_as_suffix && options_.add_dummy_prefix) add_ws();

  bool is_prev_space = options_.remove_extra_whitespaces;
  while (!input.empty()) {
    const auto p = normalize_prefix(input);
    std::string_view sp = p.first;
    // Removes heading spaces of this piece if the previous one ended with a space.
    while (is_prev_space && !sp.empty() && sp.front() == ' ') sp.remove_prefix(1);
    if (!sp.empty()) {
      for (char c : sp) {
        if (options_.escape_whitespaces && c == ' ') {
          out.append(kSpaceSymbol);
        } else {
          out.push_back(c);
        }
      }
      is_prev_space = sp.back() == ' ';
    }
    input.remove_prefix(p.second);
    if (!options_.remove_extra_whitespaces) is_prev_space = false;
  }
  // Ignores tailing space.
  if (options_.remove_extra_whitespaces) {
    const std::string_view space = options_.escape_whitespaces ? kSpaceSymbol : " ";
    while (ends_with(out, space)) out.resize(out.size() - space.size());
  }
  if (options_.treat_whitespace_as_suffix && options_.add_dummy_prefix) add_ws();
  return out;
}

}  // namespace onereward::text
