#include "server/options.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>

namespace onereward::server {
namespace {

/// --config FILE: a JSON object whose keys are the long flag names ("listen",
/// "max-batch-rows", ...). Arrays give repeatable flags; booleans give switches.
class JsonConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return {}; }

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    nlohmann::json j;
    try {
      in >> j;
    } catch (const std::exception& e) {
      throw CLI::ConversionError(std::string("config file is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw CLI::ConversionError("config file must hold a JSON object");
    std::vector<CLI::ConfigItem> items;
    for (auto it = j.begin(); it != j.end(); ++it) {
      CLI::ConfigItem item;
      item.name = it.key();
      auto add = [&](const nlohmann::json& v) {
        if (v.is_string()) item.inputs.push_back(v.get<std::string>());
        else if (v.is_boolean()) item.inputs.push_back(v.get<bool>() ? "true" : "false");
        else if (v.is_number() || v.is_null()) item.inputs.push_back(v.dump());
        else throw CLI::ConversionError("config key '" + it.key() + "' must be a string, number, boolean or array");
      };
      if (it->is_array()) {
        for (const auto& v : *it) add(v);
      } else {
        add(*it);
      }
      items.push_back(std::move(item));
    }
    return items;
  }
};

bool split_pair(const std::string& s, std::string& a, std::string& b) {
  const auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size()) return false;
  a = s.substr(0, eq);
  b = s.substr(eq + 1);
  return true;
}

}  // namespace

int parse_options(int argc, const char* const* argv, ServerOptions& o) {
  CLI::App app{
      "onereward-server: the OneReward image-fill pipeline (FLUX.1-Fill-dev + OneReward) over gRPC\n"
      "(onereward.v1.ImageFill, grpc.health.v1.Health, server reflection)."};
  app.config_formatter(std::make_shared<JsonConfig>());
  app.set_config("--config", "", "JSON file of options keyed by long flag names (the command line wins)");
  app.get_formatter()->column_width(36);

  std::vector<std::string> variants, loras;
  bool no_base = false, no_previews = false, no_warmup = false;
  int prompt_cache_mib = static_cast<int>(o.engine.prompt_cache_bytes >> 20);
  int cpu_cache_mib = -1;  // EngineOptions' automatic limit
  int max_message_mib = static_cast<int>(o.limits.max_message_bytes >> 20);

  app.add_option("--listen", o.listen, "gRPC address HOST:PORT (port 0: any free port)")->capture_default_str();
  app.add_option("--metrics-listen", o.metrics_listen, "Prometheus /metrics address HOST:PORT (\"\": none)")
      ->capture_default_str();
  app.add_option("--model", o.engine.model_dir, "diffusers FluxFillPipeline directory (FLUX.1-Fill-dev layout)")
      ->required();
  app.add_option("--variant", variants,
                 "transformer variant NAME=DIR, repeatable (e.g. onereward=DIR/flux.1-fill-dev-OneReward-transformer)");
  app.add_flag("--no-base", no_base, "do not load MODEL/transformer as variant 'base'");
  app.add_option("--default-variant", o.engine.default_variant, "variant for requests that name none (default: base)");
  app.add_option("--lora", loras, "LoRA adapter NAME=FILE (or a directory holding pytorch_lora_weights.safetensors), repeatable");
  app.add_option("--device", o.engine.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", o.engine.dtype, "fp32, bf16 or fp16")->capture_default_str();
  app.add_option("--threads", o.engine.threads, "intra-op threads of the engine (0: libtorch's default)")
      ->capture_default_str();
  app.add_option("--prompt-cache-mib", prompt_cache_mib, "prompt-embedding cache size")->capture_default_str();
  app.add_option("--cpu-buffer-cache-mib", cpu_cache_mib,
                 "on --device cpu, keep freed tensor buffers (>= 128 KiB) for reuse while live + kept stay within this; "
                 "-1: half of the memory left after loading (RAM or cgroup limit); 0: libtorch's allocator")
      ->capture_default_str()->check(CLI::Range(-1, 1 << 24));
  app.add_option("--queue-capacity", o.scheduler.queue_capacity, "queued jobs before RESOURCE_EXHAUSTED")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  app.add_option("--max-batch-rows", o.scheduler.max_batch_rows,
                 "transformer rows per batched step (a true-CFG image is 2 rows; 2 = no batching)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--starvation-limit", o.scheduler.starvation_limit,
                 "iterations a job may be passed over by higher-priority work before it goes first")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-pixels", o.limits.max_pixels, "largest width x height (after extension)")
      ->capture_default_str()->check(CLI::Range(int64_t{256}, int64_t{1} << 28));
  app.add_option("--max-steps", o.limits.max_steps, "largest steps")->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--max-images", o.limits.max_images, "largest num_images")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--max-prompt-bytes", o.limits.max_prompt_bytes, "largest prompt / negative_prompt in bytes")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-message-mib", max_message_mib, "gRPC send/receive message limit")
      ->capture_default_str()->check(CLI::Range(4, 2047));
  app.add_flag("--no-previews", no_previews, "refuse preview_every > 0");
  app.add_option("--min-preview-every", o.min_preview_every, "smallest preview_every a request may ask for")
      ->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--drain-grace", o.drain_grace_s, "seconds accepted jobs get to finish after SIGTERM/SIGINT")
      ->capture_default_str()->check(CLI::Range(0.0, 86400.0));
  app.add_flag("--no-warmup", no_warmup, "report SERVING without running a warm-up job");
  app.add_option("--encode-threads", o.encode_threads, "threads encoding result images")
      ->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--port-file", o.port_file, "write {\"grpc_port\":N,\"metrics_port\":M} here once serving");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--log-format", o.log_format, "text or json (one JSON object per line)")
      ->capture_default_str()->check(CLI::IsMember({"text", "json"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "onereward-server: " << e.what() << " (see --help)\n";
    return 2;
  }

  for (const auto& v : variants) {
    std::string name, dir;
    if (!split_pair(v, name, dir)) {
      std::cerr << "onereward-server: --variant '" << v << "' must be NAME=DIR\n";
      return 2;
    }
    o.engine.variants[name] = dir;
  }
  for (const auto& l : loras) {
    std::string name, file;
    if (!split_pair(l, name, file)) {
      std::cerr << "onereward-server: --lora '" << l << "' must be NAME=FILE\n";
      return 2;
    }
    o.engine.loras.push_back({name, file});
  }
  o.engine.load_base = !no_base;
  o.previews = !no_previews;
  o.warmup = !no_warmup;
  o.engine.prompt_cache_bytes = static_cast<int64_t>(prompt_cache_mib) << 20;
  o.engine.cpu_buffer_cache_bytes = static_cast<int64_t>(cpu_cache_mib) * (int64_t{1} << 20);
  o.limits.max_message_bytes = static_cast<int64_t>(max_message_mib) << 20;
  return -1;
}

}  // namespace onereward::server
