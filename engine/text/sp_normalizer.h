// sentencepiece's Normalizer (normalizer.cc, v0.1.97): the precompiled charsmap (a
// darts-clone double-array trie over UTF-8 input, whose values are offsets of
// NUL-terminated replacement strings) applied by longest prefix match, plus the
// whitespace rules: drop leading / trailing / repeated spaces, optional dummy-prefix
// space, spaces escaped as U+2581.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onereward::text {

/// Read-only view of a darts-clone DoubleArray (32-bit units). Index arithmetic is
/// bounds-checked: a corrupt array gives "no match" instead of reading out of range.
class DartsArray {
 public:
  DartsArray() = default;
  explicit DartsArray(std::string_view blob);  // little-endian units
  bool empty() const { return units_.empty(); }

  struct Match {
    size_t length;  // bytes of the key prefix
    uint32_t value;
  };
  /// Every key that is a prefix of s[0..len), shortest first.
  void common_prefix_search(const char* s, size_t len, std::vector<Match>* out) const;

 private:
  std::vector<uint32_t> units_;
};

struct NormalizerOptions {
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  bool treat_whitespace_as_suffix = false;
};

class SpNormalizer {
 public:
  /// `charsmap` is NormalizerSpec.precompiled_charsmap (may be empty: identity).
  /// Malformed blobs throw Error(kDataLoss, "<path>: ...").
  SpNormalizer(const std::string& charsmap, const NormalizerOptions& options,
               std::vector<std::string> user_defined_symbols, const std::string& path);

  /// Normalizer::Normalize (without the alignment vector).
  std::string normalize(std::string_view input) const;

 private:
  /// Normalizer::NormalizePrefix: (replacement, bytes consumed) for the head of input.
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;

  DartsArray trie_;
  std::string normalized_;  // replacement strings (NUL-terminated), indexed by trie values
  NormalizerOptions options_;
  std::vector<std::string> user_defined_;  // matched first, never normalized
};

}  // namespace onereward::text
