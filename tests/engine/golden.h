// Helpers for golden-reference tests: paths into tests/data/golden and tensor comparison.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/checkpoint/weights.h"

namespace onereward::testing {

inline std::string golden_dir() { return std::string(ONEREWARD_TEST_DATA) + "/golden"; }
inline std::string golden_path(const std::string& rel) { return golden_dir() + "/" + rel; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

/// A golden case: case.json and expected.safetensors.
struct GoldenCase {
  std::string dir;
  nlohmann::json meta;
  std::map<std::string, torch::Tensor> tensors;
  explicit GoldenCase(const std::string& name) : dir(golden_path("cases/" + name)) {
    meta = read_json(dir + "/case.json");
    tensors = load_tensors(dir + "/expected.safetensors");
  }
  const torch::Tensor& t(const std::string& name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error("golden tensor missing: " + name);
    return it->second;
  }
  double tol(const std::string& name) const { return meta.at("tolerance_max_abs").at(name).get<double>(); }
};

/// A fresh directory under /tmp, removed with the object.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/onereward-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

#define EXPECT_TENSOR_NEAR(actual, expected, tol)                                                     \
  do {                                                                                                \
    auto _a = (actual);                                                                               \
    auto _e = (expected);                                                                             \
    ASSERT_EQ(_a.sizes(), _e.sizes()) << #actual;                                                     \
    double _d = ::onereward::testing::max_abs_diff(_a, _e);                                           \
    EXPECT_LE(_d, (tol)) << #actual << " max abs diff " << _d << " > " << (tol);                      \
  } while (0)

}  // namespace onereward::testing
