// Byte-level BPE of CLIPTokenizer (vocab.json + merges.txt): GPT-2's bytes_to_unicode
// alphabet, word-final symbols carrying "</w>", and the slow tokenizer's merge loop
// (repeatedly merge every occurrence of the lowest-ranked adjacent pair, left to right).
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace onereward::text {

class BpeModel {
 public:
  /// Parses vocab.json ({token: id}) and merges.txt ("#version" line, then "a b" per line;
  /// like CLIPTokenizer only the first 49152-256-2 lines after the header are used).
  /// Throws kNotFound / kDataLoss naming the file.
  static BpeModel load(const std::string& vocab_path, const std::string& merges_path);

  BpeModel(BpeModel&& other) noexcept;
  BpeModel& operator=(BpeModel&&) = delete;
  BpeModel(const BpeModel&) = delete;

  /// Applies BPE to one pre-tokenized word (its raw UTF-8 bytes); appends the resulting
  /// symbols (indices into the symbol table). "<|startoftext|>" / "<|endoftext|>" come
  /// back whole, as CLIPTokenizer's pre-seeded cache does.
  void encode_word(std::string_view word_utf8, std::vector<int32_t>* symbols) const;

  const std::string& symbol(int32_t s) const { return symbols_[s]; }
  /// vocab.json id of a symbol, or -1 when the vocabulary lacks it.
  int64_t symbol_vocab_id(int32_t s) const { return symbol_vocab_ids_[s]; }
  /// vocab.json id of an arbitrary token, or -1.
  int64_t vocab_id(const std::string& token) const;
  size_t vocab_size() const { return vocab_.size(); }
  size_t num_symbols() const { return symbols_.size(); }
  size_t num_merges() const { return merges_.size(); }

 private:
  BpeModel() = default;
  int32_t intern(const std::string& s);
  void bpe(std::vector<int32_t>* word) const;

  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> symbols_;
  std::vector<int64_t> symbol_vocab_ids_;
  std::unordered_map<std::string, int32_t> symbol_index_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_symbol_[256] = {};      // bytes_to_unicode(b)
  int32_t byte_symbol_end_[256] = {};  // bytes_to_unicode(b) + "</w>"
  int32_t special_start_ = -1, special_end_ = -1;

  // Per-word result cache (the Python keeps an unbounded dict). Bounded: cleared when
  // full; only short words are cached. Guarded by a mutex so concurrent const calls are
  // safe.
  static constexpr size_t kCacheMaxEntries = 1 << 16;
  static constexpr size_t kCacheMaxWordBytes = 64;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

/// GPT-2 / CLIP bytes_to_unicode(): the code point standing for byte b.
char32_t byte_to_unicode(uint8_t b);

}  // namespace onereward::text
