// Checkpoint tensors of one component (diffusers / transformers layout) and strict loading
// of a torch::nn::Module from them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/checkpoint/safetensors.h"
#include "engine/util/status.h"

namespace onereward {

/// Where and how loaded tensors live.
struct TensorPlacement {
  torch::Device device = torch::kCPU;  ///< target device
  torch::ScalarType dtype = torch::kFloat32;  ///< target floating dtype (integers keep theirs)
};

/// The tensors of one component: a single .safetensors file, or shards listed by a
/// `*.safetensors.index.json`. Files stay memory-mapped while the store lives.
class WeightStore {
 public:
  /// Opens `dir`: the index file if there is one (sharded), else the single .safetensors file
  /// (preferring `preferred_name` when several exist). Errors name the directory / file.
  static WeightStore open_dir(const std::string& dir, const std::string& preferred_name = "");
  static WeightStore open_file(const std::string& path);
  /// Sharded checkpoint from its index json (`{"weight_map": {key: shard}}`).
  static WeightStore open_index(const std::string& index_path);

  std::vector<std::string> keys() const;
  bool contains(const std::string& key) const { return entries_.count(key) != 0; }
  const StTensorInfo& info(const std::string& key) const;
  const std::string& file_of(const std::string& key) const;
  std::vector<std::string> files() const;
  const std::string& source() const { return source_; }
  /// Copy of the tensor, converted to `p` (floating tensors to p.dtype).
  torch::Tensor get(const std::string& key, const TensorPlacement& p) const;
  /// As stored (CPU, stored dtype), always a fresh copy.
  torch::Tensor get_raw(const std::string& key) const;
  int64_t total_bytes() const;

 private:
  struct Entry {
    std::shared_ptr<SafetensorsFile> file;
    const StTensorInfo* info;
  };
  std::string source_;
  std::map<std::string, Entry> entries_;
};

/// Options for strict loading.
struct LoadOptions {
  TensorPlacement placement;
  /// Checkpoint keys that may exist without a matching module parameter (tied weights etc.).
  std::set<std::string> ignore_unexpected;
  /// Module keys that may be absent from the checkpoint (left as initialised).
  std::set<std::string> allow_missing;
  /// Maps a module parameter name to the checkpoint key (identity when empty).
  std::function<std::string(const std::string&)> module_to_checkpoint;
};

/// Loads every parameter and buffer of `module` by name. A missing key, an unexpected key
/// or a shape mismatch is an Error(kDataLoss) naming the key and the file. Moves the module
/// to the placement's device/dtype.
void load_module_strict(torch::nn::Module& module, const WeightStore& weights, const LoadOptions& opts);

/// Converts a checkpoint dtype to the torch scalar type.
torch::ScalarType to_torch_dtype(StDType dtype);
StDType from_torch_dtype(torch::ScalarType dtype);

/// Saves named tensors (converted to contiguous CPU) as a safetensors file.
void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});
/// Loads every tensor of a safetensors file (CPU, stored dtype).
std::map<std::string, torch::Tensor> load_tensors(const std::string& path);

/// Parses a dtype name: "fp32"/"float32", "bf16"/"bfloat16", "fp16"/"float16".
torch::ScalarType parse_dtype_name(const std::string& name);
std::string dtype_name(torch::ScalarType dtype);

}  // namespace onereward
