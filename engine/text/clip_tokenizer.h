// CLIP text tokenizer: a port of transformers' slow CLIPTokenizer (as of 4.45.0.dev0,
// without ftfy installed), i.e. what FluxPipeline's `tokenizer` does.
//
//   text --(added-token trie split: <|startoftext|>, <|endoftext|>)-->
//   each plain chunk: BasicTokenizer clean-up + lower-case (clip_basic_tokenizer.h),
//   joined by ' ', split by CLIP's regex (clip_pretokenizer.h), byte-level BPE
//   (bpe_model.h), vocab.json ids.
//   encode(): <|startoftext|> + ids[:max_length-2] + <|endoftext|>, padded to max_length.
//
// Thread-safe for concurrent const use (the BPE word cache is mutex-guarded).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace onereward {

namespace text {
class BpeModel;
class AddedTokenSplitter;
}  // namespace text

class ClipTokenizer {
 public:
  /// Loads vocab.json, merges.txt and (optional) tokenizer_config.json from `dir`.
  /// Throws onereward::Error naming the file: kNotFound for a missing file, kDataLoss for
  /// a malformed one.
  static ClipTokenizer load(const std::string& dir);

  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;
  ~ClipTokenizer();

  /// tokenizer(text, padding="max_length", max_length=max_length(), truncation=True).
  std::vector<int64_t> encode(const std::string& text) const;
  /// The BPE tokens (byte-level strings such as "hello</w>"), without bos/eos.
  std::vector<std::string> tokenize(const std::string& text) const;
  /// Token ids without bos/eos, no truncation.
  std::vector<int64_t> encode_no_special(const std::string& text) const;
  /// tokenizer_config.json model_max_length (77 for CLIP).
  int64_t max_length() const { return max_length_; }
  /// Number of ids incl. bos/eos before truncation.
  size_t untruncated_length(const std::string& text) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }

 private:
  ClipTokenizer();
  void run(const std::string& text, std::vector<int64_t>* ids,
           std::vector<std::string>* tokens) const;

  std::unique_ptr<text::BpeModel> bpe_;
  std::unique_ptr<text::AddedTokenSplitter> added_;
  std::vector<int64_t> symbol_ids_;  ///< BPE symbol -> token id
  int64_t max_length_ = 77;
  int64_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
};

}  // namespace onereward
