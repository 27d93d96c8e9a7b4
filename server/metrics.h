// Prometheus metrics of the server (names are a contract: dashboards and alerts use them).
// This header is free of prometheus-cpp so that the service code compiles cheaply.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace onereward::server {

class MetricsImpl;

class Metrics {
 public:
  /// Creates the registry and every metric. `listen` ("HOST:PORT", port 0 = any free port)
  /// starts the HTTP exposer serving /metrics; an empty `listen` serves nothing (tests
  /// read scrape()). Throws onereward::Error (kUnavailable) when the address cannot be bound.
  explicit Metrics(const std::string& listen);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// The port the exposer listens on (0 when not serving).
  int port() const;

  // onereward_requests_total{task,code} and onereward_request_duration_seconds{task}:
  // one call per finished request (admission to terminal event). `code` is the gRPC code
  // name as grpc spells it: OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, CANCELLED, ...
  // `task` is fill|extend|remove|unspecified. Other values are recorded as task
  // "unspecified" / code "UNKNOWN" so that the series count stays bounded.
  void request_finished(const std::string& task, const std::string& code, double seconds);
  // onereward_failures_total{reason}: invalid, rejected, cancelled, deadline, internal, unavailable
  // (any other reason counts as internal).
  void failure(const std::string& reason);
  // onereward_queue_wait_seconds: admission to first step.
  void queue_wait(double seconds);
  // onereward_queue_depth, onereward_running_jobs.
  void set_queue_depth(int64_t jobs);
  void set_running_jobs(int64_t jobs);
  // onereward_batch_rows and onereward_step_duration_seconds: one call per transformer call.
  void batch_step(int rows, double seconds);
  // onereward_stage_duration_seconds{stage}: text, vae_encode, denoise, vae_decode.
  void stage(const std::string& stage, double seconds);
  // onereward_prompt_cache_hits_total / _misses_total: the engine's running totals; the
  // counters advance by the difference to the last call.
  void set_prompt_cache_totals(int64_t hits, int64_t misses);
  // onereward_model_ready (0/1).
  void set_model_ready(bool ready);
  // onereward_build_info{version,torch,device,dtype} = 1.
  void set_build_info(const std::string& version, const std::string& torch, const std::string& device,
                      const std::string& dtype);
  // onereward_device_memory_bytes{kind="in_use"|"reserved"} (CUDA caching allocator, or the
  // CPU buffer cache).
  void set_device_memory(int64_t in_use, int64_t reserved);

  /// The text exposition format of everything registered (what /metrics serves).
  std::string scrape() const;

 private:
  std::unique_ptr<MetricsImpl> impl_;
};

}  // namespace onereward::server
