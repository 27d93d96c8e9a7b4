#include "engine/models/lora.h"

#include <filesystem>

#include "engine/checkpoint/weights.h"
#include "engine/util/status.h"

namespace fs = std::filesystem;

namespace onereward::models {
namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Strips the container prefix; returns false for keys we do not accept.
bool strip_prefix(std::string* key) {
  for (const char* p : {"transformer.", "base_model.model."}) {
    const std::string pre(p);
    if (key->rfind(pre, 0) == 0) {
      *key = key->substr(pre.size());
      return true;
    }
  }
  return key->rfind("text_encoder", 0) != 0 && key->rfind("lora_unet_", 0) != 0 && key->rfind("lora_te", 0) != 0 &&
         key->find("double_blocks.") == std::string::npos && key->find("single_blocks.") == std::string::npos;
}

}  // namespace

LoraAdapter load_lora(const std::string& name, const std::string& path_in) {
  std::string path = path_in;
  if (fs::is_directory(path)) path = (fs::path(path) / "pytorch_lora_weights.safetensors").string();
  WeightStore ws = WeightStore::open_file(path);
  LoraAdapter a;
  a.name = name;
  a.path = path;
  std::map<std::string, torch::Tensor> alphas;
  for (const auto& key : ws.keys()) {
    std::string k = key;
    if (!strip_prefix(&k)) {
      throw_error(StatusCode::kDataLoss, path + ": unsupported LoRA key '" + key +
                                             "' (accepted: diffusers/PEFT transformer.<module>.lora_A/lora_B)");
    }
    auto take = [&](const std::string& suffix, bool down) {
      if (!ends_with(k, suffix)) return false;
      const std::string module = k.substr(0, k.size() - suffix.size());
      torch::Tensor t = ws.get_raw(key).to(torch::kFloat32);
      if (t.dim() != 2) throw_error(StatusCode::kDataLoss, path + ": key '" + key + "' must be a matrix");
      (down ? a.modules[module].down : a.modules[module].up) = t;
      return true;
    };
    if (take(".lora_A.weight", true) || take(".lora_down.weight", true) || take(".lora_B.weight", false) ||
        take(".lora_up.weight", false)) {
      continue;
    }
    if (ends_with(k, ".alpha")) {
      alphas[k.substr(0, k.size() - 6)] = ws.get_raw(key).to(torch::kFloat32);
      continue;
    }
    throw_error(StatusCode::kDataLoss, path + ": unrecognised LoRA key '" + key + "'");
  }
  if (a.modules.empty()) throw_error(StatusCode::kDataLoss, path + ": no LoRA weights in file");
  for (auto& [module, m] : a.modules) {
    if (!m.down.defined() || !m.up.defined())
      throw_error(StatusCode::kDataLoss, path + ": module '" + module + "' has only one of lora_A / lora_B");
    const int64_t r = m.down.size(0);
    if (m.up.size(1) != r)
      throw_error(StatusCode::kDataLoss, path + ": module '" + module + "' lora_B rank " +
                                             std::to_string(m.up.size(1)) + " != lora_A rank " + std::to_string(r));
    auto al = alphas.find(module);
    m.scale = al != alphas.end() ? al->second.item<double>() / static_cast<double>(r) : 1.0;
    a.rank = std::max(a.rank, r);
  }
  return a;
}

void attach_lora(FluxTransformerImpl& model, const LoraAdapter& adapter, size_t slot) {
  std::map<std::string, LinearImpl*> linears;
  for_each_linear(model, [&](const std::string& p, LinearImpl& l) { linears[p] = &l; });
  for (const auto& [module, m] : adapter.modules) {
    auto it = linears.find(module);
    if (it == linears.end())
      throw_error(StatusCode::kDataLoss, adapter.path + ": LoRA module '" + module + "' is not a linear layer of the transformer");
    LinearImpl& l = *it->second;
    if (m.down.size(1) != l.in_features() || m.up.size(0) != l.out_features()) {
      throw_error(StatusCode::kDataLoss, adapter.path + ": LoRA module '" + module + "' has shape [" +
                                             std::to_string(m.up.size(0)) + " x " + std::to_string(m.down.size(1)) +
                                             "], the layer is [" + std::to_string(l.out_features()) + " x " +
                                             std::to_string(l.in_features()) + "]");
    }
    l.set_adapter(slot, m.down, m.up, m.scale);
  }
}

}  // namespace onereward::models
