// Helpers for the tokenizer tests: a tiny safetensors reader for int64 tensors, JSON
// loading, temp dirs. Self-contained (no engine checkpoint code).
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace onereward::testing {

inline std::string data_path(const std::string& rel) { return std::string(ONEREWARD_TEST_DATA) + "/" + rel; }
inline std::string clip_dir() { return data_path("golden/pipeline/tokenizer"); }
inline std::string t5_dir() { return data_path("golden/pipeline/tokenizer_2"); }

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json load_json(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

/// Reads an int64 tensor from a safetensors file: 8-byte LE header length N, N bytes of
/// JSON {name: {dtype, shape, data_offsets}}, then little-endian data.
inline std::vector<int64_t> read_safetensors_i64(const std::string& path, const std::string& name,
                                                 std::vector<int64_t>* shape) {
  const std::string f = slurp(path);
  if (f.size() < 8) throw std::runtime_error(path + ": too short");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(f[static_cast<size_t>(i)]);
  if (n > f.size() - 8) throw std::runtime_error(path + ": bad header length");
  const auto header = nlohmann::json::parse(f.substr(8, n));
  const auto& t = header.at(name);
  if (t.at("dtype") != "I64") throw std::runtime_error(path + ": " + name + " is not I64");
  *shape = t.at("shape").get<std::vector<int64_t>>();
  const auto off = t.at("data_offsets").get<std::vector<uint64_t>>();
  const size_t base = 8 + n;
  if (off.size() != 2 || off[1] < off[0] || base + off[1] > f.size() || (off[1] - off[0]) % 8)
    throw std::runtime_error(path + ": bad data_offsets for " + name);
  std::vector<int64_t> out((off[1] - off[0]) / 8);
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | static_cast<uint8_t>(f[base + off[0] + 8 * i + b]);
    out[i] = static_cast<int64_t>(v);
  }
  return out;
}

/// A fresh temporary directory (removed by the destructor).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/onereward_text_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (!d) throw std::runtime_error("mkdtemp failed");
    path_ = d;
  }
  ~TempDir() {
    const std::string cmd = "rm -rf '" + path_ + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream out(file(name), std::ios::binary);
    out << content;
  }

 private:
  std::string path_;
};

}  // namespace onereward::testing
