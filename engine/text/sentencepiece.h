// A sentencepiece processor for unigram models (what SentencePieceProcessor::Encode
// does in v0.1.97): normalize (sp_normalizer.h), Viterbi (unigram_model.h), then
// PopulateSentencePieceText's post-processing: consecutive unknown pieces are merged
// into one piece (or split into <0xXX> byte pieces when byte_fallback is on).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace onereward::text {

struct SpModelProto;
class SpNormalizer;
class UnigramModel;

struct SpPiece {
  std::string piece;  ///< the piece string (for an unknown run: its normalized text)
  int32_t id;
};

class SentencePiece {
 public:
  /// Loads and validates spiece.model. `add_dummy_prefix` overrides the model's
  /// NormalizerSpec value (transformers' legacy=False T5Tokenizer loads the model with
  /// add_dummy_prefix = False). Throws kNotFound / kDataLoss naming the file.
  static SentencePiece load(const std::string& path,
                            std::optional<bool> add_dummy_prefix = std::nullopt);

  SentencePiece(SentencePiece&&) noexcept;
  SentencePiece& operator=(SentencePiece&&) noexcept;
  ~SentencePiece();

  /// SentencePieceProcessor::Encode(text) -> pieces (python: encode(text, out_type=str)
  /// paired with the ids of encode(text)).
  std::vector<SpPiece> encode(std::string_view text) const;
  /// The normalized text the model segments.
  std::string normalize(std::string_view text) const;

  /// PieceToId: control/unknown/byte pieces first, then the vocabulary, else unk id.
  int32_t piece_to_id(std::string_view piece) const;
  const std::string& id_to_piece(int32_t id) const;
  size_t size() const;
  int32_t unk_id() const { return unk_id_; }

 private:
  SentencePiece();
  std::unique_ptr<SpModelProto> proto_;
  std::unique_ptr<SpNormalizer> normalizer_;
  std::unique_ptr<UnigramModel> model_;
  std::unordered_map<std::string_view, int32_t> pieces_;    // normal / user / unused
  std::unordered_map<std::string_view, int32_t> reserved_;  // control / unknown / byte
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false;
};

}  // namespace onereward::text
