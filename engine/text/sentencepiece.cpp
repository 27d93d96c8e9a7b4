#include "engine/text/sentencepiece.h"

#include <cstdio>

#include "engine/text/file_util.h"
#include "engine/text/sentencepiece_model.h"
#include "engine/text/sp_normalizer.h"
#include "engine/text/unigram_model.h"
#include "engine/util/status.h"

namespace onereward::text {

SentencePiece::SentencePiece() = default;
SentencePiece::SentencePiece(SentencePiece&&) noexcept = default;
SentencePiece& SentencePiece::operator=(SentencePiece&&) noexcept = default;
SentencePiece::~SentencePiece() = default;

namespace {
std::string byte_piece(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}
}  // namespace

SentencePiece SentencePiece::load(const std::string& path, std::optional<bool> add_dummy_prefix) {
  SentencePiece sp;
  sp.proto_ = std::make_unique<SpModelProto>(parse_sp_model_proto(read_file(path), path));
  const SpModelProto& m = *sp.proto_;
  if (m.model_type != SpModelProto::kUnigram)
    throw_error(StatusCode::kDataLoss, path + ": unsupported model_type " +
                                           std::to_string(m.model_type) + " (only unigram)");
  // ModelInterface::InitializePieces checks.
  std::vector<std::string> user_defined;
  bool byte_found[256] = {};
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    const auto& p = m.pieces[i];
    const auto id = static_cast<int32_t>(i);
    if (p.piece.empty())
      throw_error(StatusCode::kDataLoss, path + ": piece " + std::to_string(i) + " is empty");
    const bool normal = p.type == SpModelProto::kNormal || p.type == SpModelProto::kUserDefined ||
                        p.type == SpModelProto::kUnused;
    auto& map = normal ? sp.pieces_ : sp.reserved_;
    if (!map.emplace(std::string_view(p.piece), id).second)
      throw_error(StatusCode::kDataLoss, path + ": piece '" + p.piece + "' is defined twice");
    if (p.type == SpModelProto::kUserDefined) user_defined.push_back(p.piece);
    if (p.type == SpModelProto::kUnknown) {
      if (sp.unk_id_ >= 0)
        throw_error(StatusCode::kDataLoss, path + ": more than one unknown piece");
      sp.unk_id_ = id;
    }
    if (p.type == SpModelProto::kByte) {
      if (!m.byte_fallback)
        throw_error(StatusCode::kDataLoss,
                    path + ": byte piece " + p.piece + " found although byte_fallback is false");
      int b = -1;
      for (int k = 0; k < 256 && b < 0; ++k)
        if (byte_piece(static_cast<uint8_t>(k)) == p.piece) b = k;
      if (b < 0) throw_error(StatusCode::kDataLoss, path + ": invalid byte piece " + p.piece);
      byte_found[b] = true;
    }
  }
  if (sp.unk_id_ < 0) throw_error(StatusCode::kDataLoss, path + ": no unknown (<unk>) piece");
  if (m.byte_fallback) {
    for (bool f : byte_found)
      if (!f) throw_error(StatusCode::kDataLoss, path + ": byte_fallback without 256 byte pieces");
  }
  sp.byte_fallback_ = m.byte_fallback;
  NormalizerOptions opt;
  opt.add_dummy_prefix = add_dummy_prefix.value_or(m.add_dummy_prefix);
  opt.remove_extra_whitespaces = m.remove_extra_whitespaces;
  opt.escape_whitespaces = m.escape_whitespaces;
  opt.treat_whitespace_as_suffix = m.treat_whitespace_as_suffix;
  sp.normalizer_ =
      std::make_unique<SpNormalizer>(m.precompiled_charsmap, opt, std::move(user_defined), path);
  sp.model_ = std::make_unique<UnigramModel>(m);
  return sp;
}

std::string SentencePiece::normalize(std::string_view text) const {
  return normalizer_->normalize(text);
}

std::vector<SpPiece> SentencePiece::encode(std::string_view text) const {
  const std::string normalized = normalizer_->normalize(text);
  std::vector<SpPiece> out;
  bool prev_unk = false;
  for (const auto& span : model_->encode(normalized)) {
    const std::string_view w = std::string_view(normalized).substr(span.begin, span.length);
    const bool is_unk = span.id == unk_id_;
    if (is_unk && byte_fallback_) {
      for (char c : w) {
        std::string bp = byte_piece(static_cast<uint8_t>(c));
        const int32_t bid = piece_to_id(bp);
        out.push_back(SpPiece{std::move(bp), bid});
      }
    } else if (is_unk && prev_unk) {
      out.back().piece.append(w);  // merge a run of unknown pieces
    } else {
      out.push_back(SpPiece{std::string(w), span.id});
    }
    prev_unk = is_unk;
  }
  return out;
}

int32_t SentencePiece::piece_to_id(std::string_view piece) const {
  if (auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
  if (auto it = pieces_.find(piece); it != pieces_.end()) return it->second;
  return unk_id_;
}

const std::string& SentencePiece::id_to_piece(int32_t id) const {
  return proto_->pieces.at(static_cast<size_t>(id)).piece;
}

size_t SentencePiece::size() const { return proto_->pieces.size(); }

}  // namespace onereward::text
