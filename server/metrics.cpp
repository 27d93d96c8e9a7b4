// Prometheus metrics of the server (prometheus-cpp 1.0).
#include "server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "engine/util/status.h"

namespace onereward::server {

namespace {

using prometheus::Histogram;

// Bucket boundaries. Latencies span the tiny CPU test model (milliseconds) to 50-step
// 1024x1024 jobs behind a full queue on a loaded GPU (tens of minutes); a 1-2.5-5 series
// keeps the bounds readable in dashboards.
const Histogram::BucketBoundaries kRequestBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                     1,     2.5,  5,     10,   25,  50,   100,
                                                     250,   500,  1000,  1800};
const Histogram::BucketBoundaries kQueueBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,    1,     2.5,  5,     10,   25,
                                                   50,    100,    250,   500,  1000,  1800};
// One transformer call: ~1 ms (tiny model) to a minute (FLUX-size model, many rows, CPU).
const Histogram::BucketBoundaries kStepBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,      2.5,   5,    10,    25,   60};
// A whole stage of one job (denoise covers every step of the job).
const Histogram::BucketBoundaries kStageBuckets = kQueueBuckets;
const Histogram::BucketBoundaries kBatchRowBuckets = {1, 2, 4, 8, 16, 32, 64};

const char* const kTasks[] = {"fill", "extend", "remove", "unspecified"};
const char* const kReasons[] = {"invalid", "rejected", "cancelled", "deadline", "internal", "unavailable"};
const char* const kStages[] = {"text", "vae_encode", "denoise", "vae_decode"};
const char* const kGrpcCodes[] = {
    "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",      "UNIMPLEMENTED",    "INTERNAL",         "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

template <size_t N>
bool one_of(const std::string& s, const char* const (&set)[N]) {
  return std::any_of(std::begin(set), std::end(set), [&](const char* v) { return s == v; });
}

// Label values are bounded sets: anything else would let a bug grow the series count.
std::string task_label(const std::string& task) { return one_of(task, kTasks) ? task : "unspecified"; }
std::string code_label(const std::string& code) { return one_of(code, kGrpcCodes) ? code : "UNKNOWN"; }
std::string reason_label(const std::string& reason) {
  return one_of(reason, kReasons) ? reason : "internal";
}

// "HOST:PORT" -> civetweb's listening_ports value ("127.0.0.1:9464", "[::1]:0", "0.0.0.0:80").
std::string civet_address(const std::string& listen) {
  const auto colon = listen.rfind(':');
  const std::string port = colon == std::string::npos ? std::string() : listen.substr(colon + 1);
  const bool numeric = !port.empty() && port.size() <= 5 &&
                       std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!numeric || std::atoi(port.c_str()) > 65535) {
    throw_error(StatusCode::kInvalidArgument,
                "metrics listen address '" + listen + "' is not HOST:PORT (port 0 = any free port)");
  }
  std::string host = listen.substr(0, colon);
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return host + ":" + port;
}

}  // namespace

class MetricsImpl {
 public:
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Family<Histogram>* request_duration = nullptr;
  prometheus::Family<prometheus::Counter>* failures = nullptr;
  prometheus::Family<Histogram>* stage_duration = nullptr;
  prometheus::Family<prometheus::Gauge>* build_info = nullptr;
  Histogram* queue_wait = nullptr;
  Histogram* batch_rows = nullptr;
  Histogram* step_duration = nullptr;
  prometheus::Gauge* queue_depth = nullptr;
  prometheus::Gauge* running_jobs = nullptr;
  prometheus::Counter* cache_hits = nullptr;
  prometheus::Counter* cache_misses = nullptr;
  prometheus::Gauge* model_ready = nullptr;
  prometheus::Gauge* memory_in_use = nullptr;
  prometheus::Gauge* memory_reserved = nullptr;

  std::mutex mu;  // guards the fields below
  int64_t last_hits = 0, last_misses = 0;
  prometheus::Gauge* build_info_series = nullptr;

  // Declared last: destroyed first, so no scrape runs against a dying registry.
  std::unique_ptr<prometheus::Exposer> exposer;
  int port = 0;
};

Metrics::Metrics(const std::string& listen) : impl_(std::make_unique<MetricsImpl>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& m = *impl_;
  auto& reg = *m.registry;

  m.requests = &BuildCounter()
                    .Name("onereward_requests_total")
                    .Help("Finished requests by task and gRPC status code.")
                    .Register(reg);
  m.request_duration = &BuildHistogram()
                            .Name("onereward_request_duration_seconds")
                            .Help("Request latency from admission to the terminal event, by task.")
                            .Register(reg);
  m.queue_wait = &BuildHistogram()
                      .Name("onereward_queue_wait_seconds")
                      .Help("Time from admission to a job's first denoising step.")
                      .Register(reg)
                      .Add({}, kQueueBuckets);
  m.queue_depth = &BuildGauge()
                       .Name("onereward_queue_depth")
                       .Help("Admitted jobs waiting to start.")
                       .Register(reg)
                       .Add({});
  m.running_jobs = &BuildGauge()
                        .Name("onereward_running_jobs")
                        .Help("Jobs between their first step and their result.")
                        .Register(reg)
                        .Add({});
  m.batch_rows = &BuildHistogram()
                      .Name("onereward_batch_rows")
                      .Help("Transformer rows per batched denoising step (2 per true-CFG image).")
                      .Register(reg)
                      .Add({}, kBatchRowBuckets);
  m.step_duration = &BuildHistogram()
                         .Name("onereward_step_duration_seconds")
                         .Help("Duration of one batched transformer step.")
                         .Register(reg)
                         .Add({}, kStepBuckets);
  m.stage_duration = &BuildHistogram()
                          .Name("onereward_stage_duration_seconds")
                          .Help("Per-job pipeline stage duration (text, vae_encode, denoise, vae_decode).")
                          .Register(reg);
  m.cache_hits = &BuildCounter()
                      .Name("onereward_prompt_cache_hits_total")
                      .Help("Prompt embedding cache hits.")
                      .Register(reg)
                      .Add({});
  m.cache_misses = &BuildCounter()
                        .Name("onereward_prompt_cache_misses_total")
                        .Help("Prompt embedding cache misses.")
                        .Register(reg)
                        .Add({});
  m.failures = &BuildCounter()
                    .Name("onereward_failures_total")
                    .Help("Failed requests by reason (invalid, rejected, cancelled, deadline, internal, unavailable).")
                    .Register(reg);
  m.model_ready = &BuildGauge()
                       .Name("onereward_model_ready")
                       .Help("1 when the pipeline is loaded and serving, else 0.")
                       .Register(reg)
                       .Add({});
  m.build_info = &BuildGauge()
                      .Name("onereward_build_info")
                      .Help("Build and runtime information (value is always 1).")
                      .Register(reg);
  auto& memory = BuildGauge()
                     .Name("onereward_device_memory_bytes")
                     .Help("Accelerator memory held by the engine's allocator (kind: in_use, reserved).")
                     .Register(reg);
  m.memory_in_use = &memory.Add({{"kind", "in_use"}});
  m.memory_reserved = &memory.Add({{"kind", "reserved"}});

  // Series that dashboards and alerts select on exist (at 0) from start-up.
  for (const char* task : kTasks) {
    m.requests->Add({{"task", task}, {"code", "OK"}});
    m.request_duration->Add({{"task", task}}, kRequestBuckets);
  }
  for (const char* reason : kReasons) m.failures->Add({{"reason", reason}});
  for (const char* stage : kStages) m.stage_duration->Add({{"stage", stage}}, kStageBuckets);
  m.build_info_series =
      &m.build_info->Add({{"version", "unknown"}, {"torch", "unknown"}, {"device", "unknown"}, {"dtype", "unknown"}});
  m.build_info_series->Set(1);

  if (listen.empty()) return;
  const std::string address = civet_address(listen);
  try {
    m.exposer = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    throw_error(StatusCode::kUnavailable,
                "cannot serve metrics on " + listen + ": " + e.what());
  }
  m.exposer->RegisterCollectable(m.registry);
  const auto ports = m.exposer->GetListeningPorts();
  if (ports.empty()) {
    m.exposer.reset();
    throw_error(StatusCode::kUnavailable, "cannot serve metrics on " + listen + ": no listening port");
  }
  m.port = ports.front();
}

Metrics::~Metrics() = default;

int Metrics::port() const { return impl_->port; }

void Metrics::request_finished(const std::string& task, const std::string& code, double seconds) {
  const std::string t = task_label(task);
  impl_->requests->Add({{"task", t}, {"code", code_label(code)}}).Increment();
  impl_->request_duration->Add({{"task", t}}, kRequestBuckets).Observe(std::max(0.0, seconds));
}

void Metrics::failure(const std::string& reason) {
  impl_->failures->Add({{"reason", reason_label(reason)}}).Increment();
}

void Metrics::queue_wait(double seconds) { impl_->queue_wait->Observe(std::max(0.0, seconds)); }

void Metrics::set_queue_depth(int64_t jobs) { impl_->queue_depth->Set(static_cast<double>(jobs)); }

void Metrics::set_running_jobs(int64_t jobs) { impl_->running_jobs->Set(static_cast<double>(jobs)); }

void Metrics::batch_step(int rows, double seconds) {
  impl_->batch_rows->Observe(rows);
  impl_->step_duration->Observe(std::max(0.0, seconds));
}

void Metrics::stage(const std::string& stage, double seconds) {
  impl_->stage_duration->Add({{"stage", stage}}, kStageBuckets).Observe(std::max(0.0, seconds));
}

void Metrics::set_prompt_cache_totals(int64_t hits, int64_t misses) {
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  // A total below the last one means the engine (and its cache) was recreated: its new
  // total is all new.
  const int64_t dh = hits >= m.last_hits ? hits - m.last_hits : hits;
  const int64_t dm = misses >= m.last_misses ? misses - m.last_misses : misses;
  if (dh > 0) m.cache_hits->Increment(static_cast<double>(dh));
  if (dm > 0) m.cache_misses->Increment(static_cast<double>(dm));
  m.last_hits = hits;
  m.last_misses = misses;
}

void Metrics::set_model_ready(bool ready) { impl_->model_ready->Set(ready ? 1 : 0); }

void Metrics::set_build_info(const std::string& version, const std::string& torch, const std::string& device,
                             const std::string& dtype) {
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  auto& series = m.build_info->Add({{"version", version}, {"torch", torch}, {"device", device}, {"dtype", dtype}});
  if (m.build_info_series && m.build_info_series != &series) m.build_info->Remove(m.build_info_series);
  m.build_info_series = &series;
  series.Set(1);
}

void Metrics::set_device_memory(int64_t in_use, int64_t reserved) {
  impl_->memory_in_use->Set(static_cast<double>(in_use));
  impl_->memory_reserved->Set(static_cast<double>(reserved));
}

std::string Metrics::scrape() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry->Collect());
  return out.str();
}

}  // namespace onereward::server
