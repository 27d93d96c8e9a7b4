#include "engine/text/proto_wire.h"

#include <cstring>

#include "engine/util/status.h"

namespace onereward::text {

WireReader::WireReader(std::string_view data, const std::string& path, std::string where)
    : data_(data), path_(path), where_(std::move(where)) {}

void WireReader::fail(const std::string& problem) const {
  throw_error(StatusCode::kDataLoss,
              path_ + ": " + where_ + ": " + problem + " (at byte " + std::to_string(pos_) + ")");
}

uint64_t WireReader::varint() {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos_ >= data_.size()) fail("truncated varint");
    const auto b = static_cast<uint8_t>(data_[pos_++]);
    v |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
    if (!(b & 0x80)) return v;
  }
  fail("bad varint (more than 10 bytes)");
}

bool WireReader::next(uint32_t* field, WireType* type) {
  if (pos_ >= data_.size()) return false;
  const uint64_t tag = varint();
  const auto wt = static_cast<int>(tag & 7);
  const uint64_t f = tag >> 3;
  if (f == 0 || f > 0x1FFFFFFF) fail("bad field number " + std::to_string(f));
  if (wt != 0 && wt != 1 && wt != 2 && wt != 5)
    fail("unsupported wire type " + std::to_string(wt) + " for field " + std::to_string(f));
  *field = static_cast<uint32_t>(f);
  *type = static_cast<WireType>(wt);
  return true;
}

std::string_view WireReader::bytes() {
  const uint64_t n = varint();
  if (n > data_.size() - pos_)
    fail("truncated length-delimited field (" + std::to_string(n) + " bytes declared, " +
         std::to_string(data_.size() - pos_) + " left)");
  std::string_view out = data_.substr(pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return out;
}

uint32_t WireReader::fixed32() {
  if (data_.size() - pos_ < 4) fail("truncated fixed32");
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
  pos_ += 4;
  return v;
}

float WireReader::float32() {
  const uint32_t bits = fixed32();
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

void WireReader::skip(WireType type) {
  switch (type) {
    case WireType::kVarint: varint(); break;
    case WireType::kFixed64:
      if (data_.size() - pos_ < 8) fail("truncated fixed64");
      pos_ += 8;
      break;
    case WireType::kLengthDelimited: bytes(); break;
    case WireType::kFixed32: fixed32(); break;
  }
}

void WireReader::expect(uint32_t field, WireType actual, WireType expected) const {
  if (actual != expected)
    fail("field " + std::to_string(field) + " has wire type " +
         std::to_string(static_cast<int>(actual)) + ", expected " +
         std::to_string(static_cast<int>(expected)));
}

}  // namespace onereward::text
