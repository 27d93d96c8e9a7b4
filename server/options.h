// onereward-server's options: flags, an optional JSON config file, defaults that fit the model.
#pragma once

#include <cstdint>
#include <string>

#include "engine/pipeline/engine.h"
#include "server/scheduler.h"

namespace onereward::server {

/// Request limits (validation, GetInfo).
struct Limits {
  int64_t max_pixels = 2048ll * 2048;  ///< width x height, after extension
  int min_side = 16;
  int max_steps = 100;
  int max_images = 4;
  int max_prompt_bytes = 4096;
  int max_request_id_bytes = 128;
  float min_true_cfg = 0.0f, max_true_cfg = 20.0f;
  float min_guidance_scale = 0.0f, max_guidance_scale = 100.0f;
  float max_adapter_weight = 4.0f;  ///< |weight|
  int64_t max_message_bytes = 256ll << 20;  ///< gRPC send/receive limit
};

struct ServerOptions {
  std::string listen = "0.0.0.0:50051";
  std::string metrics_listen = "0.0.0.0:9090";  ///< "" = no metrics endpoint
  EngineOptions engine;
  SchedulerOptions scheduler;
  Limits limits;
  bool previews = true;          ///< allow preview images in progress events
  int min_preview_every = 1;     ///< smallest preview_every a request may ask for
  double drain_grace_s = 180;    ///< SIGTERM: time for accepted jobs to finish
  bool warmup = true;            ///< run one small job before reporting SERVING
  int encode_threads = 2;        ///< result image encoding (PNG/JPEG/WebP) off the scheduler thread
  std::string port_file;         ///< written once serving: {"grpc_port":N,"metrics_port":M}
  std::string log_level = "info";
  std::string log_format = "text";
};

/// Parses the command line (and --config FILE, a JSON object keyed by long flag names;
/// the command line wins over the file). Returns -1 to go on, or an exit code (0 after
/// --help, 2 on bad usage with the reason printed to stderr).
int parse_options(int argc, const char* const* argv, ServerOptions& out);

}  // namespace onereward::server
