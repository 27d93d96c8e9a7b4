#include "engine/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/util/status.h"

namespace onereward {
namespace {

// Refuse absurd headers before allocating for them (the real FLUX shards have ~100 KiB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw_error(StatusCode::kDataLoss, path + ": " + what);
}

bool parse_dtype(const std::string& s, StDType* out) {
  static const std::pair<const char*, StDType> kNames[] = {
      {"F64", StDType::kF64}, {"F32", StDType::kF32}, {"F16", StDType::kF16},
      {"BF16", StDType::kBF16}, {"I64", StDType::kI64}, {"I32", StDType::kI32},
      {"I16", StDType::kI16}, {"I8", StDType::kI8}, {"U8", StDType::kU8},
      {"BOOL", StDType::kBool}};
  for (const auto& [name, dt] : kNames) {
    if (s == name) {
      *out = dt;
      return true;
    }
  }
  return false;
}

}  // namespace

size_t st_dtype_size(StDType dtype) {
  switch (dtype) {
    case StDType::kF64: case StDType::kI64: return 8;
    case StDType::kF32: case StDType::kI32: return 4;
    case StDType::kF16: case StDType::kBF16: case StDType::kI16: return 2;
    case StDType::kI8: case StDType::kU8: case StDType::kBool: return 1;
  }
  return 1;
}

const char* st_dtype_name(StDType dtype) {
  switch (dtype) {
    case StDType::kF64: return "F64";
    case StDType::kF32: return "F32";
    case StDType::kF16: return "F16";
    case StDType::kBF16: return "BF16";
    case StDType::kI64: return "I64";
    case StDType::kI32: return "I32";
    case StDType::kI16: return "I16";
    case StDType::kI8: return "I8";
    case StDType::kU8: return "U8";
    case StDType::kBool: return "BOOL";
  }
  return "?";
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error(StatusCode::kNotFound, path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    bad(path, "not a regular file");
  }
  f->map_size_ = static_cast<size_t>(st.st_size);
  if (f->map_size_ > 0) {
    void* m = mmap(nullptr, f->map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      bad(path, std::string("mmap failed: ") + std::strerror(errno));
    }
    f->map_ = m;
  }
  ::close(fd);
  f->parse();
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

const StTensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw_error(StatusCode::kNotFound, path_ + ": no tensor '" + name + "'");
  return it->second;
}

void SafetensorsFile::parse() {
  const auto* bytes = static_cast<const uint8_t*>(map_);
  if (map_size_ < 8) bad(path_, "truncated file (" + std::to_string(map_size_) + " bytes, no header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > map_size_ - 8) {
    bad(path_, "header length " + std::to_string(n) + " runs past the end of the file (" +
                   std::to_string(map_size_) + " bytes)");
  }
  if (n > kMaxHeaderBytes) bad(path_, "header length " + std::to_string(n) + " is implausibly large");
  std::string header(reinterpret_cast<const char*>(bytes + 8), static_cast<size_t>(n));
  nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad(path_, "header is not a JSON object");
  data_ = bytes + 8 + n;
  data_size_ = map_size_ - 8 - n;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path_, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad(path_, "__metadata__ value for '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) bad(path_, where + ": entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) bad(path_, where + ": missing dtype");
    if (!v.contains("shape") || !v["shape"].is_array()) bad(path_, where + ": missing shape");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      bad(path_, where + ": data_offsets must be [begin, end]");
    StTensorInfo info;
    info.name = name;
    const std::string dt = v["dtype"].get<std::string>();
    if (!parse_dtype(dt, &info.dtype)) bad(path_, where + ": unknown dtype '" + dt + "'");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) bad(path_, where + ": shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t(1) << 48) / dim) bad(path_, where + ": shape too large");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : v["data_offsets"]) {
      if (!o.is_number_unsigned()) bad(path_, where + ": data_offsets must be non-negative integers");
    }
    info.begin = v["data_offsets"][0].get<uint64_t>();
    info.end = v["data_offsets"][1].get<uint64_t>();
    if (info.end < info.begin) bad(path_, where + ": data_offsets end before begin");
    if (info.end > data_size_) {
      bad(path_, where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                     ") outside the data section (" + std::to_string(data_size_) + " bytes; file truncated?)");
    }
    const uint64_t expect = numel * st_dtype_size(info.dtype);
    if (info.end - info.begin != expect) {
      bad(path_, where + ": shape/size mismatch: " + std::to_string(numel) + " elements of " + dt + " need " +
                     std::to_string(expect) + " bytes, offsets give " + std::to_string(info.end - info.begin));
    }
    ranges.emplace_back(info.begin, info.end);
    tensors_.emplace(name, std::move(info));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second && ranges[i].second > ranges[i].first) {
      bad(path_, "tensor data ranges overlap at byte " + std::to_string(ranges[i].first));
    }
  }
}

void write_safetensors(const std::string& path, const std::map<std::string, StTensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    uint64_t numel = 1;
    for (auto d : t.shape) numel *= static_cast<uint64_t>(d);
    if (numel * st_dtype_size(t.dtype) != t.bytes.size())
      throw_error(StatusCode::kInternal, "write_safetensors: tensor '" + name + "' byte size does not match its shape");
    header[name] = {{"dtype", st_dtype_name(t.dtype)}, {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw_error(StatusCode::kNotFound, path + ": cannot open for writing");
  uint64_t n = h.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& [name, t] : tensors) {
    out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  }
  if (!out) throw_error(StatusCode::kInternal, path + ": write failed");
}

}  // namespace onereward
