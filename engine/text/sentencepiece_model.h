// sentencepiece's ModelProto (sentencepiece_model.proto, v0.1.97) as far as encoding
// needs it, read with our own wire-format parser.
#pragma once

#include <string>
#include <vector>

namespace onereward::text {

struct SpModelProto {
  enum PieceType : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4,
                         kUnused = 5, kByte = 6 };
  enum ModelType : int { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

  struct Piece {
    std::string piece;
    float score = 0.0f;
    PieceType type = kNormal;
  };
  std::vector<Piece> pieces;  // field 1

  // TrainerSpec (field 2)
  int model_type = kUnigram;              // 3
  bool treat_whitespace_as_suffix = false;  // 24
  bool byte_fallback = false;             // 35

  // NormalizerSpec (field 3)
  std::string normalizer_name;            // 1
  std::string precompiled_charsmap;       // 2
  bool add_dummy_prefix = true;           // 3
  bool remove_extra_whitespaces = true;   // 4
  bool escape_whitespaces = true;         // 5
};

/// Parses a serialized ModelProto. proto2 semantics: a repeated sub-message is merged,
/// a repeated scalar keeps its last value, unknown fields are skipped. Structural problems
/// (truncation, bad varint, wrong wire type, no pieces, empty piece, unknown piece type)
/// throw Error(kDataLoss, "<path>: ...").
SpModelProto parse_sp_model_proto(const std::string& data, const std::string& path);

}  // namespace onereward::text
