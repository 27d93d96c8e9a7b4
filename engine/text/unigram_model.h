// sentencepiece's unigram model encoder (unigram_model.cc v0.1.97, the default
// EncoderVersion::kOptimized path: Model::EncodeOptimized): Viterbi over the normalized
// UTF-8 bytes with every vocabulary piece as a candidate, unknown characters scored
// min_score - 10, user-defined pieces boosted to length * max_score - 0.1.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/text/sentencepiece_model.h"

namespace onereward::text {

/// Byte trie over the pieces (NORMAL / USER_DEFINED / UNUSED ones, as sentencepiece's
/// trie holds), flattened to sorted edge lists.
class PieceTrie {
 public:
  void build(const std::vector<std::pair<std::string_view, int32_t>>& keys);
  /// Child of `node` labelled `byte`, or -1. Node 0 is the root.
  int32_t child(int32_t node, uint8_t byte) const;
  /// Piece id ending at `node`, or -1.
  int32_t value(int32_t node) const { return values_[static_cast<size_t>(node)]; }

 private:
  std::vector<int32_t> root_children_ = std::vector<int32_t>(256, -1);
  std::vector<uint32_t> edge_begin_;  // per node, into labels_/targets_ (size nodes + 1)
  std::vector<uint8_t> labels_;
  std::vector<int32_t> targets_;
  std::vector<int32_t> values_;
};

class UnigramModel {
 public:
  /// `proto` must outlive the model.
  explicit UnigramModel(const SpModelProto& proto);

  /// Model::EncodeOptimized: (byte offset, byte length, id) of each piece of the best
  /// segmentation of `normalized`, in order.
  struct Span {
    uint32_t begin;
    uint32_t length;
    int32_t id;
  };
  std::vector<Span> encode(std::string_view normalized) const;

 private:
  const SpModelProto& proto_;
  PieceTrie trie_;
  std::vector<uint8_t> kind_;  // 0 normal, 1 user-defined, 2 unused (by piece id)
  float min_score_;
  float max_score_;
  int32_t unk_id_ = -1;
};

}  // namespace onereward::text
