// `onereward-engine inspect DIR`: what a pipeline directory holds, or why it cannot be loaded.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>

#include "engine/checkpoint/weights.h"
#include "engine/tools/commands.h"
#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace fs = std::filesystem;

namespace onereward::tools {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u == 0 ? 0 : 1) << b << " " << units[u];
  return os.str();
}

std::string human_count(double n) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2);
  if (n >= 1e9) os << n / 1e9 << "B";
  else if (n >= 1e6) os << n / 1e6 << "M";
  else if (n >= 1e3) os << n / 1e3 << "K";
  else os << std::setprecision(0) << n;
  return os.str();
}

// Prints one component folder: its class, config, weights (files, dtypes, parameters).
bool inspect_component(const fs::path& dir, const std::string& name) {
  std::cout << "\n[" << name << "] " << dir.string() << "\n";
  bool ok = true;
  for (const char* cfg_name : {"config.json", "scheduler_config.json", "tokenizer_config.json"}) {
    const fs::path cfg = dir / cfg_name;
    if (!fs::exists(cfg)) continue;
    try {
      JsonConfig j = JsonConfig::load(cfg.string());
      std::cout << "  " << cfg_name << ":";
      int shown = 0;
      for (auto it = j.json().begin(); it != j.json().end(); ++it) {
        if (it.key().rfind("_", 0) == 0 || it.key() == "added_tokens_decoder") continue;
        std::string v = it.value().dump();
        if (v.size() > 60) v = v.substr(0, 57) + "...";
        std::cout << (shown++ % 3 == 0 ? "\n    " : "  ") << it.key() << "=" << v;
      }
      std::cout << "\n";
      if (j.json().contains("_class_name")) std::cout << "  class: " << j.json()["_class_name"].get<std::string>() << "\n";
    } catch (const Error& e) {
      std::cout << "  ERROR " << e.what() << "\n";
      ok = false;
    }
  }
  bool has_weights = false;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors" || e.path().string().find(".safetensors.index.json") != std::string::npos)
      has_weights = true;
  }
  if (!has_weights) {
    for (const auto& e : fs::directory_iterator(dir)) std::cout << "  file: " << e.path().filename().string() << "\n";
    return ok;
  }
  try {
    WeightStore ws = WeightStore::open_dir(dir.string());
    std::map<std::string, int64_t> by_dtype;
    int64_t params = 0;
    for (const auto& k : ws.keys()) {
      const auto& info = ws.info(k);
      by_dtype[st_dtype_name(info.dtype)] += info.numel();
      params += info.numel();
    }
    std::cout << "  weights: " << ws.keys().size() << " tensors, " << human_count(static_cast<double>(params))
              << " parameters, " << human_bytes(static_cast<double>(ws.total_bytes())) << "\n  dtypes:";
    for (const auto& [dt, n] : by_dtype) std::cout << " " << dt << "=" << human_count(static_cast<double>(n));
    std::cout << "\n";
    const auto files = ws.files();
    std::cout << "  files (" << files.size() << (files.size() > 1 ? ", sharded" : "") << "):\n";
    for (const auto& f : files) std::cout << "    " << fs::path(f).filename().string() << "\n";
  } catch (const Error& e) {
    std::cout << "  ERROR " << e.what() << "\n";
    ok = false;
  }
  return ok;
}

int run_inspect(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    std::cerr << "error: " << dir << ": not a directory\n";
    return 2;
  }
  bool ok = true;
  const fs::path root(dir);
  const fs::path index = root / "model_index.json";
  if (fs::exists(index)) {
    try {
      JsonConfig mi = JsonConfig::load(index.string());
      std::cout << "pipeline: " << mi.get_string("_class_name", "?") << " (" << dir << ")\n";
      for (auto it = mi.json().begin(); it != mi.json().end(); ++it) {
        if (it.key().rfind("_", 0) == 0 || !it.value().is_array()) continue;
        const fs::path sub = root / it.key();
        std::string cls = it.value().size() == 2 && it.value()[1].is_string() ? it.value()[1].get<std::string>() : "?";
        if (!fs::is_directory(sub)) {
          std::cout << "\n[" << it.key() << "] " << cls << ": MISSING directory " << sub.string() << "\n";
          ok = false;
          continue;
        }
        std::cout << "\n" << it.key() << ": " << cls;
        ok = inspect_component(sub, it.key()) && ok;
      }
    } catch (const Error& e) {
      std::cout << "ERROR " << e.what() << "\n";
      ok = false;
    }
  } else {
    // A single component (e.g. a OneReward transformer folder or a LoRA folder).
    ok = inspect_component(root, root.filename().string());
  }
  if (!ok) {
    std::cerr << "error: " << dir << " cannot be loaded (see the ERROR lines above)\n";
    return 1;
  }
  return 0;
}

}  // namespace

void register_inspect(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("inspect", "Print a pipeline directory's components, configs, parameter counts, "
                                            "dtypes and shards, or the reason it cannot be loaded");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("DIR", *dir, "diffusers pipeline directory (or one component directory)")->required();
  cmd->callback([dir, exit_code] { *exit_code = run_inspect(*dir); });
}

}  // namespace onereward::tools
