#include "engine/checkpoint/weights.h"

#include <cstring>
#include <filesystem>

#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace fs = std::filesystem;

namespace onereward {

torch::ScalarType to_torch_dtype(StDType dtype) {
  switch (dtype) {
    case StDType::kF64: return torch::kFloat64;
    case StDType::kF32: return torch::kFloat32;
    case StDType::kF16: return torch::kFloat16;
    case StDType::kBF16: return torch::kBFloat16;
    case StDType::kI64: return torch::kInt64;
    case StDType::kI32: return torch::kInt32;
    case StDType::kI16: return torch::kInt16;
    case StDType::kI8: return torch::kInt8;
    case StDType::kU8: return torch::kUInt8;
    case StDType::kBool: return torch::kBool;
  }
  return torch::kFloat32;
}

StDType from_torch_dtype(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat64: return StDType::kF64;
    case torch::kFloat32: return StDType::kF32;
    case torch::kFloat16: return StDType::kF16;
    case torch::kBFloat16: return StDType::kBF16;
    case torch::kInt64: return StDType::kI64;
    case torch::kInt32: return StDType::kI32;
    case torch::kInt16: return StDType::kI16;
    case torch::kInt8: return StDType::kI8;
    case torch::kUInt8: return StDType::kU8;
    case torch::kBool: return StDType::kBool;
    default: throw_error(StatusCode::kInvalidArgument, "unsupported dtype for safetensors");
  }
}

torch::ScalarType parse_dtype_name(const std::string& name) {
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp16" || name == "float16") return torch::kFloat16;
  throw_error(StatusCode::kInvalidArgument, "dtype must be fp32, bf16 or fp16 (got '" + name + "')");
}

std::string dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "fp32";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "fp16";
    default: return c10::toString(dtype);
  }
}

WeightStore WeightStore::open_file(const std::string& path) {
  WeightStore ws;
  ws.source_ = path;
  auto f = SafetensorsFile::open(path);
  for (const auto& [name, info] : f->tensors()) ws.entries_[name] = Entry{f, &info};
  return ws;
}

WeightStore WeightStore::open_index(const std::string& index_path) {
  JsonConfig idx = JsonConfig::load(index_path);
  if (!idx.json().contains("weight_map") || !idx.json()["weight_map"].is_object())
    idx.fail("weight_map", "is missing or not an object");
  WeightStore ws;
  ws.source_ = index_path;
  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
  for (auto it = idx.json()["weight_map"].begin(); it != idx.json()["weight_map"].end(); ++it) {
    if (!it.value().is_string()) idx.fail("weight_map", "entry '" + it.key() + "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard == ".." || shard.empty())
      idx.fail("weight_map", "entry '" + it.key() + "' names an invalid shard '" + shard + "'");
    auto sit = shards.find(shard);
    if (sit == shards.end()) {
      const fs::path p = dir / shard;
      if (!fs::exists(p))
        throw_error(StatusCode::kNotFound, index_path + ": shard '" + shard + "' (for '" + it.key() + "') is missing");
      sit = shards.emplace(shard, SafetensorsFile::open(p.string())).first;
    }
    const auto& tensors = sit->second->tensors();
    auto t = tensors.find(it.key());
    if (t == tensors.end())
      throw_error(StatusCode::kDataLoss, index_path + ": key '" + it.key() + "' is not in shard '" + shard + "'");
    ws.entries_[it.key()] = Entry{sit->second, &t->second};
  }
  for (const auto& [name, f] : shards) {
    for (const auto& [key, info] : f->tensors()) {
      if (!ws.entries_.count(key))
        throw_error(StatusCode::kDataLoss, f->path() + ": tensor '" + key + "' is not listed in " + index_path);
    }
  }
  return ws;
}

WeightStore WeightStore::open_dir(const std::string& dir, const std::string& preferred_name) {
  if (!fs::is_directory(dir)) throw_error(StatusCode::kNotFound, dir + ": not a directory");
  std::vector<fs::path> indexes, singles;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    auto ends_with = [&](const std::string& suf) {
      return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (ends_with(".safetensors.index.json")) indexes.push_back(e.path());
    else if (ends_with(".safetensors")) singles.push_back(e.path());
  }
  if (indexes.size() > 1) throw_error(StatusCode::kDataLoss, dir + ": more than one *.safetensors.index.json");
  if (indexes.size() == 1) return open_index(indexes[0].string());
  if (singles.empty()) throw_error(StatusCode::kNotFound, dir + ": no .safetensors weights");
  if (singles.size() > 1) {
    for (const auto& s : singles)
      if (s.filename() == preferred_name) return open_file(s.string());
    throw_error(StatusCode::kDataLoss, dir + ": several .safetensors files and no index");
  }
  return open_file(singles[0].string());
}

std::vector<std::string> WeightStore::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_) out.push_back(k);
  return out;
}

const StTensorInfo& WeightStore::info(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw_error(StatusCode::kNotFound, source_ + ": no tensor '" + key + "'");
  return *it->second.info;
}

const std::string& WeightStore::file_of(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw_error(StatusCode::kNotFound, source_ + ": no tensor '" + key + "'");
  return it->second.file->path();
}

std::vector<std::string> WeightStore::files() const {
  std::set<std::string> s;
  for (const auto& [k, e] : entries_) s.insert(e.file->path());
  return {s.begin(), s.end()};
}

int64_t WeightStore::total_bytes() const {
  int64_t n = 0;
  for (const auto& [k, e] : entries_) n += static_cast<int64_t>(e.info->end - e.info->begin);
  return n;
}

torch::Tensor WeightStore::get_raw(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw_error(StatusCode::kNotFound, source_ + ": no tensor '" + key + "'");
  const StTensorInfo& info = *it->second.info;
  auto t = torch::empty(info.shape, torch::TensorOptions().dtype(to_torch_dtype(info.dtype)));
  const size_t n = info.end - info.begin;
  // memcpy: the mapped bytes need not be aligned for the element type.
  if (n > 0) std::memcpy(t.data_ptr(), it->second.file->data(info), n);
  return t;
}

torch::Tensor WeightStore::get(const std::string& key, const TensorPlacement& p) const {
  torch::Tensor t = get_raw(key);
  if (t.is_floating_point() && t.scalar_type() != p.dtype) t = t.to(p.dtype);
  if (p.device != t.device()) t = t.to(p.device);
  return t;
}

void load_module_strict(torch::nn::Module& module, const WeightStore& weights, const LoadOptions& opts) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  auto map_key = [&](const std::string& name) {
    return opts.module_to_checkpoint ? opts.module_to_checkpoint(name) : name;
  };
  auto load_one = [&](const std::string& name, torch::Tensor& target) {
    const std::string key = map_key(name);
    if (!weights.contains(key)) {
      if (opts.allow_missing.count(name)) return;
      throw_error(StatusCode::kDataLoss, weights.source() + ": missing key '" + key + "'");
    }
    const StTensorInfo& info = weights.info(key);
    if (info.shape != target.sizes().vec()) {
      throw_error(StatusCode::kDataLoss, weights.file_of(key) + ": key '" + key + "' has shape " +
                                             c10::str(c10::IntArrayRef(info.shape)) + ", the model expects " +
                                             c10::str(target.sizes()));
    }
    torch::Tensor src = weights.get_raw(key);
    target.set_data(src.to(target.is_floating_point() ? opts.placement.dtype : target.scalar_type())
                        .to(opts.placement.device));
    used.insert(key);
  };
  for (auto& p : module.named_parameters(/*recurse=*/true)) {
    torch::Tensor t = p.value();
    load_one(p.key(), t);
    t.set_requires_grad(false);
  }
  for (auto& b : module.named_buffers(/*recurse=*/true)) {
    torch::Tensor t = b.value();
    load_one(b.key(), t);
  }
  for (const auto& key : weights.keys()) {
    if (!used.count(key) && !opts.ignore_unexpected.count(key))
      throw_error(StatusCode::kDataLoss, weights.file_of(key) + ": unexpected key '" + key + "'");
  }
}

void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::map<std::string, StTensorData> out;
  for (const auto& [name, t0] : tensors) {
    torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
    StTensorData d;
    d.dtype = from_torch_dtype(t.scalar_type());
    d.shape = t.sizes().vec();
    d.bytes.resize(static_cast<size_t>(t.numel()) * t.element_size());
    if (!d.bytes.empty()) std::memcpy(d.bytes.data(), t.data_ptr(), d.bytes.size());
    out.emplace(name, std::move(d));
  }
  write_safetensors(path, out, metadata);
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path) {
  WeightStore ws = WeightStore::open_file(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& k : ws.keys()) out[k] = ws.get_raw(k);
  return out;
}

}  // namespace onereward
