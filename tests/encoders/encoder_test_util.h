// Shared helpers of the encoder tests: golden model loading and scratch checkpoints.
#pragma once

#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "engine/checkpoint/weights.h"
#include "engine/util/status.h"
#include "tests/engine/golden.h"

namespace onereward::testing {

/// A fresh scratch directory, removed with the object (the tag only documents the use).
class ScratchDir : public TempDir {
 public:
  explicit ScratchDir(const std::string& /*tag*/) {}
};


/// Writes `config` as config.json and `tensors` as model.safetensors into `dir`.
inline void write_component(const std::string& dir, const nlohmann::json& config,
                            const std::map<std::string, torch::Tensor>& tensors) {
  std::ofstream(dir + "/config.json") << config.dump(2);
  save_tensors(dir + "/model.safetensors", tensors);
}

/// Every tensor of a golden component's model.safetensors.
inline std::map<std::string, torch::Tensor> golden_tensors(const std::string& component) {
  return load_tensors(golden_path("pipeline/" + component + "/model.safetensors"));
}

inline nlohmann::json golden_config(const std::string& component) {
  return read_json(golden_path("pipeline/" + component + "/config.json"));
}

/// Runs fn and returns the StatusCode and message of the onereward::Error it throws.
template <class Fn>
std::pair<StatusCode, std::string> error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  return {StatusCode::kOk, ""};
}

}  // namespace onereward::testing
