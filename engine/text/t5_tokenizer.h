// T5 text tokenizer: a port of transformers' slow T5Tokenizer (4.45.0.dev0) over our own
// sentencepiece unigram implementation (sentencepiece.h), i.e. what FluxPipeline's
// `tokenizer_2` does.
//
// With legacy=false (FLUX's tokenizer_config.json) the sentencepiece model runs with
// add_dummy_prefix=False and the tokenizer adds the "▁" itself:
//   text.replace("▁", " ") -> "▁" + text (add_prefix_space) -> added-token trie split
//   (<pad>, </s>, <unk>, <extra_id_N>) -> each plain chunk starting with "▁"/" " is
//   encoded as sp("<unk>" + chunk) minus the pieces of "<unk>" (so the leading space
//   survives sentencepiece's whitespace stripping) -> piece ids.
//   A leading lone "▁" before a special token is dropped.
// encode(): ids[:max_length-1] + </s> (unless already ending in </s>), right-padded with
// <pad>. Thread-safe for concurrent const use (no mutable state).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace onereward {

namespace text {
class SentencePiece;
class AddedTokenSplitter;
}  // namespace text

class T5Tokenizer {
 public:
  /// Reads spiece.model and (optional) tokenizer_config.json from `dir`. Throws
  /// onereward::Error naming the file: kNotFound when missing, kDataLoss when malformed.
  static T5Tokenizer load(const std::string& dir);

  T5Tokenizer(T5Tokenizer&&) noexcept;
  T5Tokenizer& operator=(T5Tokenizer&&) noexcept;
  ~T5Tokenizer();

  /// tokenizer(text, padding="max_length", max_length=max_length, truncation=True).
  /// max_length must be >= 2.
  std::vector<int64_t> encode(const std::string& text, int64_t max_length = 512) const;
  /// tokenizer(text): ids + </s>, no truncation or padding.
  std::vector<int64_t> encode_no_pad(const std::string& text) const;
  /// T5Tokenizer.tokenize(text): sentencepiece pieces and added tokens.
  std::vector<std::string> tokenize(const std::string& text) const;

  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t model_max_length() const { return model_max_length_; }
  bool legacy() const { return legacy_; }

 private:
  T5Tokenizer();
  std::vector<std::string> sp_tokenize(const std::u32string& chunk) const;
  std::vector<int64_t> ids_of(const std::vector<std::string>& tokens) const;

  std::unique_ptr<text::SentencePiece> sp_;
  std::unique_ptr<text::AddedTokenSplitter> added_;
  std::vector<std::string> all_special_tokens_;
  std::string unk_token_ = "<unk>";
  size_t unk_token_length_ = 0;
  bool legacy_ = false;
  bool add_prefix_space_ = true;
  int64_t eos_id_ = 1, pad_id_ = 0;
  int64_t model_max_length_ = 512;
};

}  // namespace onereward
