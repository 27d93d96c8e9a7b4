// Memory-mapped safetensors reader (no libtorch dependency).
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw little-endian tensor data; offsets are relative to the start of the data.
// Every malformed file gives an Error(kDataLoss) that names the file and the problem; the
// reader never touches bytes outside the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace onereward {

enum class StDType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

/// Size in bytes of one element; name as written in files ("F32", "BF16", ...).
size_t st_dtype_size(StDType dtype);
const char* st_dtype_name(StDType dtype);

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  ///< byte offset into the data section
  uint64_t end = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  /// Maps and validates `path`. Throws Error(kNotFound) if it cannot be opened and
  /// Error(kDataLoss) for any structural problem.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, StTensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const StTensorInfo& info(const std::string& name) const;  ///< throws kNotFound
  /// Pointer to the tensor's bytes (valid while this object lives).
  const uint8_t* data(const StTensorInfo& info) const { return data_ + info.begin; }

 private:
  SafetensorsFile() = default;
  void parse();

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  ///< start of the data section
  size_t data_size_ = 0;
  std::map<std::string, StTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: raw little-endian bytes.
struct StTensorData {
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// Writes a safetensors file (keys sorted, header padded to a multiple of 8 as the
/// reference writer does). Throws Error on IO failure.
void write_safetensors(const std::string& path, const std::map<std::string, StTensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace onereward
