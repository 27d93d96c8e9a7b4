// Added (special) tokens of a slow transformers tokenizer and the way
// PreTrainedTokenizer.tokenize() (tokenization_utils.py) isolates them before the model
// tokenizer runs: a trie split that prefers the longest token, then the per-token
// lstrip / rstrip / single_word adjustments of AddedToken.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace onereward {
class JsonConfig;
}

namespace onereward::text {

struct AddedToken {
  std::u32string content;
  int64_t id = -1;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool special = true;
};

/// A piece of the input after the added-token split: either an added token or a run of
/// ordinary text for the model tokenizer.
struct TextChunk {
  std::u32string text;
  const AddedToken* added = nullptr;  ///< non-null: this chunk is exactly that token
};

class AddedTokenSplitter {
 public:
  AddedTokenSplitter() = default;
  AddedTokenSplitter(const AddedTokenSplitter&) = delete;  // tokens_ is pointed into
  AddedTokenSplitter& operator=(const AddedTokenSplitter&) = delete;
  AddedTokenSplitter(AddedTokenSplitter&&) = default;
  AddedTokenSplitter& operator=(AddedTokenSplitter&&) = default;

  /// Adds a token (a later token with the same content replaces the earlier one).
  void add(const AddedToken& token);
  const AddedToken* find(std::u32string_view content) const;
  bool empty() const { return tokens_.empty(); }

  /// transformers' Trie.split(): the text cut at the boundaries of added tokens found
  /// (leftmost start first, longest match via lookahead). Empty pieces are dropped.
  std::vector<std::u32string> trie_split(std::u32string_view text) const;

  /// The added-token handling of PreTrainedTokenizer.tokenize(): trie split, then each
  /// added token strips whitespace from / glues to its neighbours as its flags say.
  /// Empty chunks are dropped.
  std::vector<TextChunk> split(std::u32string_view text) const;

 private:
  struct Node {
    std::map<char32_t, int32_t> children;
    bool terminal = false;
  };
  int32_t child(int32_t node, char32_t c) const;

  std::vector<Node> nodes_{Node{}};
  // Stable addresses (unordered_map nodes never move) so chunks can point at tokens.
  std::unordered_map<std::u32string, AddedToken> tokens_;
};

/// Special-token fields of a tokenizer_config.json.
struct SpecialTokenConfig {
  std::map<std::string, std::string> named;     ///< bos_token, eos_token, ... -> content
  std::vector<std::string> additional;          ///< additional_special_tokens
  std::vector<AddedToken> added_tokens_decoder;  ///< empty when the file has none
};

/// Reads `added_tokens_decoder`, the *_token fields (string or {"content": ...}) and
/// `additional_special_tokens`; malformed entries throw kDataLoss naming the file.
SpecialTokenConfig read_special_token_config(const JsonConfig& cfg);

}  // namespace onereward::text
