// Minimal protobuf wire-format reader (what spiece.model needs), so the tokenizers do not
// link libprotobuf / libsentencepiece. Every malformation throws Error(kDataLoss,
// "<path>: <where>: <problem>").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace onereward::text {

enum class WireType : int { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class WireReader {
 public:
  /// `where` names the message being read (e.g. "ModelProto.pieces[3]") for errors.
  WireReader(std::string_view data, const std::string& path, std::string where);

  /// Reads the next tag; false at the end of the message.
  bool next(uint32_t* field, WireType* type);

  uint64_t varint();
  std::string_view bytes();
  uint32_t fixed32();
  float float32();
  /// Skips the value of the current field (unknown fields).
  void skip(WireType type);
  /// Throws unless the current field has `expected` wire type.
  void expect(uint32_t field, WireType actual, WireType expected) const;

  [[noreturn]] void fail(const std::string& problem) const;
  const std::string& path() const { return path_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  const std::string& path_;
  std::string where_;
};

}  // namespace onereward::text
