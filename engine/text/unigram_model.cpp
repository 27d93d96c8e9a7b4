#include "engine/text/unigram_model.h"

#include <algorithm>
#include <cfloat>
#include <map>

namespace onereward::text {
namespace {
constexpr float kUnkPenalty = 10.0f;

// string_util::OneCharLen: UTF-8 length from the lead byte (no validation).
inline int one_char_len(char c) {
  return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[(static_cast<uint8_t>(c)) >> 4];
}
}  // namespace

void PieceTrie::build(const std::vector<std::pair<std::string_view, int32_t>>& keys) {
  // Build with std::map children, then flatten (breadth of the tree is small).
  std::vector<std::map<uint8_t, int32_t>> kids(1);
  values_.assign(1, -1);
  for (const auto& [key, id] : keys) {
    int32_t node = 0;
    for (char ch : key) {
      const auto b = static_cast<uint8_t>(ch);
      auto it = kids[static_cast<size_t>(node)].find(b);
      if (it == kids[static_cast<size_t>(node)].end()) {
        const auto next = static_cast<int32_t>(kids.size());
        kids[static_cast<size_t>(node)].emplace(b, next);
        kids.emplace_back();
        values_.push_back(-1);
        node = next;
      } else {
        node = it->second;
      }
    }
    values_[static_cast<size_t>(node)] = id;
  }
  edge_begin_.assign(kids.size() + 1, 0);
  labels_.clear();
  targets_.clear();
  for (size_t n = 0; n < kids.size(); ++n) {
    edge_begin_[n] = static_cast<uint32_t>(labels_.size());
    for (const auto& [b, t] : kids[n]) {
      labels_.push_back(b);
      targets_.push_back(t);
    }
  }
  edge_begin_[kids.size()] = static_cast<uint32_t>(labels_.size());
  std::fill(root_children_.begin(), root_children_.end(), -1);
  for (const auto& [b, t] : kids[0]) root_children_[b] = t;
}

int32_t PieceTrie::child(int32_t node, uint8_t byte) const {
  if (node == 0) return root_children_[byte];
  const uint32_t b = edge_begin_[static_cast<size_t>(node)];
  const uint32_t e = edge_begin_[static_cast<size_t>(node) + 1];
  const auto first = labels_.begin() + b, last = labels_.begin() + e;
  const auto it = std::lower_bound(first, last, byte);
  if (it == last || *it != byte) return -1;
  return targets_[static_cast<size_t>(it - labels_.begin())];
}

UnigramModel::UnigramModel(const SpModelProto& proto) : proto_(proto) {
  min_score_ = FLT_MAX;
  max_score_ = FLT_MIN;  // (sic: sentencepiece starts from the smallest positive float)
  kind_.assign(proto.pieces.size(), 0);
  std::vector<std::pair<std::string_view, int32_t>> keys;
  for (size_t i = 0; i < proto.pieces.size(); ++i) {
    const auto& p = proto.pieces[i];
    if (p.type == SpModelProto::kNormal) {
      min_score_ = std::min(min_score_, p.score);
      max_score_ = std::max(max_score_, p.score);
    }
    if (p.type == SpModelProto::kUnknown) unk_id_ = static_cast<int32_t>(i);
    if (p.type == SpModelProto::kNormal || p.type == SpModelProto::kUserDefined ||
        p.type == SpModelProto::kUnused) {
      keys.emplace_back(p.piece, static_cast<int32_t>(i));
      kind_[i] = p.type == SpModelProto::kUserDefined ? 1 : p.type == SpModelProto::kUnused ? 2 : 0;
    }
  }
  trie_.build(keys);
}

std::vector<UnigramModel::Span> UnigramModel::encode(std::string_view normalized) const {
  std::vector<Span> results;
  if (normalized.empty()) return results;
  struct BestPathNode {
    int32_t id = -1;
    float best_path_score = 0;
    int32_t starts_at = -1;
  };
  const int size = static_cast<int>(normalized.size());
  const float unk_score = min_score_ - kUnkPenalty;
  std::vector<BestPathNode> best(static_cast<size_t>(size) + 1);
  int starts_at = 0;
  while (starts_at < size) {
    const float till_here = best[static_cast<size_t>(starts_at)].best_path_score;
    bool has_single_node = false;
    const int mblen = std::min<int>(one_char_len(normalized[static_cast<size_t>(starts_at)]),
                                    size - starts_at);
    int32_t node = 0;
    for (int key_pos = starts_at; key_pos < size;) {
      node = trie_.child(node, static_cast<uint8_t>(normalized[static_cast<size_t>(key_pos)]));
      if (node < 0) break;
      ++key_pos;
      const int32_t id = trie_.value(node);
      if (id < 0) continue;
      const uint8_t kind = kind_[static_cast<size_t>(id)];
      if (kind == 2) continue;  // unused piece
      auto& target = best[static_cast<size_t>(key_pos)];
      const size_t length = static_cast<size_t>(key_pos - starts_at);
      if (kind == 1) {
        // User-defined: (length * max_score_ - 0.1) is a double in sentencepiece, so the
        // candidate sum is computed in double before being stored as float.
        const double candidate =
            (static_cast<float>(length) * max_score_ - 0.1) + static_cast<double>(till_here);
        if (target.starts_at == -1 || candidate > static_cast<double>(target.best_path_score)) {
          target.best_path_score = static_cast<float>(candidate);
          target.starts_at = starts_at;
          target.id = id;
        }
      } else {
        const float candidate = proto_.pieces[static_cast<size_t>(id)].score + till_here;
        if (target.starts_at == -1 || candidate > target.best_path_score) {
          target.best_path_score = candidate;
          target.starts_at = starts_at;
          target.id = id;
        }
      }
      if (!has_single_node && static_cast<int>(length) == mblen) has_single_node = true;
    }
    if (!has_single_node) {
      auto& target = best[static_cast<size_t>(starts_at + mblen)];
      const float candidate = unk_score + till_here;
      if (target.starts_at == -1 || candidate > target.best_path_score) {
        target.best_path_score = candidate;
        target.starts_at = starts_at;
        target.id = unk_id_;
      }
    }
    starts_at += mblen;
  }
  int ends_at = size;
  while (ends_at > 0) {
    const auto& node = best[static_cast<size_t>(ends_at)];
    if (node.starts_at < 0 || node.starts_at >= ends_at) break;  // unreachable by design
    results.push_back(Span{static_cast<uint32_t>(node.starts_at),
                           static_cast<uint32_t>(ends_at - node.starts_at), node.id});
    ends_at = node.starts_at;
  }
  std::reverse(results.begin(), results.end());
  return results;
}

}  // namespace onereward::text
