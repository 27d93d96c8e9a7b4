// Prometheus metrics of the server (prometheus-cpp 1.0).
#include "server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <thread>
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

// "HOST:PORT" -> (host, port); an empty host or "*" is every interface.
std::pair<std::string, std::string> split_listen(const std::string& listen) {
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
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, port};
}

/// A minimal HTTP/1.1 endpoint for GET /metrics: one thread, one connection at a time
/// (Prometheus scrapes are rare and small). prometheus-cpp's civetweb exposer is not used:
/// its threads ask for a fixed small stack, which glibc refuses (EINVAL) once a library
/// with a large static TLS block (libtorch) is loaded into the process.
class HttpEndpoint {
 public:
  HttpEndpoint(const std::string& listen, std::function<std::string()> body) : body_(std::move(body)) {
    const auto [host, port] = split_listen(listen);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res)
      throw_error(StatusCode::kInvalidArgument, "metrics listen address '" + listen + "': unknown host '" + host + "'");
    std::string err = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
        fd_ = fd;
        break;
      }
      err = std::strerror(errno);
      ::close(fd);
    }
    freeaddrinfo(res);
    if (fd_ < 0) throw_error(StatusCode::kUnavailable, "cannot serve metrics on " + listen + ": " + err);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (::pipe2(wake_, O_CLOEXEC) != 0) {
      ::close(fd_);
      throw_error(StatusCode::kUnavailable, "cannot serve metrics on " + listen + ": pipe failed");
    }
    thread_ = std::thread([this] { run(); });
  }

  ~HttpEndpoint() {
    stop_ = true;
    const char c = 0;
    (void)!::write(wake_[1], &c, 1);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

  int port() const { return port_; }

 private:
  void run() {
    while (!stop_) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (stop_ || (p[1].revents & POLLIN)) return;
      if (!(p[0].revents & POLLIN)) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }

  void serve(int c) {
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
      ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    const auto line_end = req.find("\r\n");
    std::istringstream line(req.substr(0, line_end));
    std::string method, target;
    line >> method >> target;
    const std::string path = target.substr(0, target.find('?'));
    std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
    if (method != "GET" && method != "HEAD") {
      status = "405 Method Not Allowed";
      type = "text/plain";
      body = "only GET\n";
    } else if (path == "/metrics") {
      body = body_();
    } else {
      status = "404 Not Found";
      type = "text/plain";
      body = "metrics are at /metrics\n";
    }
    std::string head = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    std::string out = head + (method == "HEAD" ? std::string() : body);
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  std::function<std::string()> body_;
  int fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

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
  std::unique_ptr<HttpEndpoint> exposer;
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
                     .Help("Memory held for tensors by the engine's allocator: CUDA caching allocator or CPU buffer cache (kind: in_use, reserved).")
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
  MetricsImpl* raw = impl_.get();
  m.exposer = std::make_unique<HttpEndpoint>(listen, [raw] {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, raw->registry->Collect());
    return out.str();
  });
  m.port = m.exposer->port();
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
