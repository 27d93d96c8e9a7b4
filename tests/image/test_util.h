// Helpers shared by the image tests: data paths, whole-file reads, a minimal float32
// safetensors reader (independent of the engine's checkpoint code), image comparison.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/image/image.h"

namespace onereward::image::testing {

inline std::string data_path(const std::string& rel) {
  return std::string(ONEREWARD_TEST_DATA) + "/" + rel;
}
inline std::string golden_case(const std::string& name, const std::string& file) {
  return data_path("golden/cases/" + name + "/" + file);
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// Non-comment, non-empty lines of a whitespace-separated manifest, split into fields.
inline std::vector<std::vector<std::string>> read_manifest(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(f, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::vector<std::string> fields;
    for (std::string w; ss >> w;) fields.push_back(w);
    rows.push_back(fields);
  }
  return rows;
}

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

/// Reads the float32 tensors of a .safetensors file: u64 LE header length N, N bytes of
/// JSON {name: {dtype, shape, data_offsets:[begin,end]}} (plus optional __metadata__),
/// then the raw little-endian data. Non-F32 tensors are skipped.
inline std::map<std::string, Tensor> read_safetensors_f32(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  if (bytes.size() < 8) throw std::runtime_error(path + ": too short");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > bytes.size() - 8) throw std::runtime_error(path + ": bad header length");
  const auto header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + long(n));
  const size_t base = 8 + n;
  std::map<std::string, Tensor> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__" || it.value().at("dtype") != "F32") continue;
    Tensor t;
    t.shape = it.value().at("shape").get<std::vector<int64_t>>();
    const auto off = it.value().at("data_offsets").get<std::vector<uint64_t>>();
    if (off[1] < off[0] || base + off[1] > bytes.size() || (off[1] - off[0]) % 4)
      throw std::runtime_error(path + ": bad offsets for " + it.key());
    t.data.resize((off[1] - off[0]) / 4);
    std::memcpy(t.data.data(), bytes.data() + base + off[0], off[1] - off[0]);  // x86: LE
    out[it.key()] = std::move(t);
  }
  return out;
}

/// gtest assertion: same size and identical bytes; reports the first differing pixel.
inline ::testing::AssertionResult SameImage(const Image& got, const Image& want) {
  if (got.width != want.width || got.height != want.height)
    return ::testing::AssertionFailure() << "size " << got.width << "x" << got.height
                                         << " != expected " << want.width << "x" << want.height;
  size_t diffs = 0, first = 0;
  int max_diff = 0;
  for (size_t i = 0; i < got.rgb.size(); ++i) {
    const int d = std::abs(int(got.rgb[i]) - int(want.rgb[i]));
    if (d && !diffs++) first = i;
    max_diff = std::max(max_diff, d);
  }
  if (diffs == 0) return ::testing::AssertionSuccess();
  const size_t px = first / 3;
  return ::testing::AssertionFailure()
         << diffs << " of " << got.rgb.size() << " samples differ (max " << max_diff
         << "); first at x=" << px % got.width << " y=" << px / got.width << " c=" << first % 3
         << ": got " << int(got.rgb[first]) << " want " << int(want.rgb[first]);
}

}  // namespace onereward::image::testing
