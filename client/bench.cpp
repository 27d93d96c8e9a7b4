#include "client/bench.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace onereward::client {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultFillPrompt = "a photo of a cat";

// ---- the request mix -------------------------------------------------------------------

template <class T>
struct Weighted {
  T value;
  double weight = 1.0;
};

// "a:2,b" -> [(a,2),(b,1)], each item parsed by `parse`.
template <class T, class Parse>
std::vector<Weighted<T>> parse_mix(const std::string& flag, const std::string& text, Parse parse) {
  std::vector<Weighted<T>> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    Weighted<T> w;
    const size_t colon = item.find(':');
    std::string head = item.substr(0, colon);
    if (colon != std::string::npos) {
      const std::string ws = item.substr(colon + 1);
      char* end = nullptr;
      w.weight = std::strtod(ws.c_str(), &end);
      if (ws.empty() || end != ws.c_str() + ws.size() || !(w.weight > 0) ||
          !std::isfinite(w.weight))
        throw UsageError(flag + ": weight in '" + item + "' must be a positive number");
    }
    w.value = parse(head);
    out.push_back(std::move(w));
  }
  if (out.empty()) throw UsageError(flag + ": empty list");
  return out;
}

struct Size {
  int width = 0;
  int height = 0;
  std::string label;
};

Size parse_size(const std::string& text) {
  Size s;
  char x = 0;
  char rest = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &s.width, &x, &s.height, &rest) != 3 ||
      (x != 'x' && x != 'X') || s.width <= 0 || s.height <= 0 || s.width > 16384 ||
      s.height > 16384)
    throw UsageError("--sizes: '" + text + "' is not WxH");
  s.label = std::to_string(s.width) + "x" + std::to_string(s.height);
  return s;
}

template <class T>
size_t pick(const std::vector<Weighted<T>>& mix, std::mt19937_64& rng) {
  if (mix.size() == 1) return 0;
  double total = 0;
  for (const auto& w : mix) total += w.weight;
  double r = std::uniform_real_distribution<double>(0.0, total)(rng);
  for (size_t i = 0; i < mix.size(); ++i) {
    if (r < mix[i].weight) return i;
    r -= mix[i].weight;
  }
  return mix.size() - 1;
}

// One (task, size) combination: a request template and its results.
struct Spec {
  v1::Task task = v1::TASK_FILL;
  Size size;
  v1::FillRequest request;
};

// ---- statistics --------------------------------------------------------------------------

struct Sample {
  size_t spec = 0;
  grpc::StatusCode code = grpc::StatusCode::OK;
  bool cancelled_at_end = false;
  double latency_ms = 0;
  std::optional<double> queue_wait_ms;  // until the first progress event
  int images = 0;
  double done_s = 0;
};

struct Percentiles {
  size_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, mean = 0, min = 0, max = 0;
};

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  const auto rank = [&v](double q) {
    const auto r = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, r == 0 ? 0 : r - 1)];
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  p.min = v.front();
  p.max = v.back();
  return p;
}

nlohmann::json to_json(const Percentiles& p) {
  return {{"count", p.count}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99},
          {"mean", p.mean},   {"min", p.min}, {"max", p.max}};
}

// ---- the generator -----------------------------------------------------------------------

class Bench;

// One Fill call (callback API). Owned by the bench's in-flight map; destroyed when its
// OnDone has run and nobody else holds it.
class Call final : public grpc::ClientReadReactor<v1::FillEvent> {
 public:
  Call(Bench* bench, uint64_t id, size_t spec) : bench_(bench), id_(id), spec_(spec) {}

  void start(v1::ImageFill::Stub* stub) {
    start_s_ = now_s();
    stub->async()->Fill(&ctx_, &request_, this);
    StartRead(&event_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    if (event_.has_progress() && !first_progress_s_) first_progress_s_ = now_s();
    if (event_.has_result()) images_ = event_.result().images_size();
    event_.Clear();
    StartRead(&event_);
  }

  void OnDone(const grpc::Status& status) override;

  grpc::ClientContext ctx_;
  v1::FillRequest request_;
  std::atomic<bool> cancelled_at_end_{false};

 private:
  friend class Bench;
  Bench* bench_;
  uint64_t id_;
  size_t spec_;
  v1::FillEvent event_;
  double start_s_ = 0;
  std::optional<double> first_progress_s_;
  int images_ = 0;
};

class Bench {
 public:
  Bench(const ConnectionFlags& conn, const BenchFlags& flags) : conn_(conn), flags_(flags) {}

  int run();

  // Called by a call's OnDone: records it and (closed loop) starts the next one.
  // Returns the call's owning pointer so it outlives OnDone's body.
  std::shared_ptr<Call> finish(Call* call, const grpc::Status& status);

 private:
  void build_specs();
  // Claims the next request slot and starts it; false when no more may be issued.
  bool launch();
  void report_progress_loop();
  int report(double wall_s, bool interrupted);

  ConnectionFlags conn_;
  BenchFlags flags_;
  std::unique_ptr<v1::ImageFill::Stub> stub_;
  std::vector<Weighted<v1::Task>> tasks_;
  std::vector<Weighted<Size>> sizes_;
  std::vector<Spec> specs_;  // tasks_.size() x sizes_.size()
  bool open_loop_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::mt19937_64 rng_;
  std::unordered_map<uint64_t, std::shared_ptr<Call>> in_flight_;
  std::vector<Sample> samples_;
  uint64_t issued_ = 0;
  uint64_t dropped_ = 0;
  uint64_t ok_ = 0;
  uint64_t errors_ = 0;
  bool issuing_ = true;         // new calls may start
  bool requests_done_ = false;  // the --requests budget is used up
  bool interrupted_ = false;
  bool reporter_stop_ = false;
  double start_s_ = 0;
};

void Call::OnDone(const grpc::Status& status) {
  std::shared_ptr<Call> keep = bench_->finish(this, status);
}  // `keep` released: the call is destroyed here unless the canceller still holds it

void Bench::build_specs() {
  tasks_ = parse_mix<v1::Task>("--tasks", flags_.tasks, [](const std::string& s) {
    const auto t = parse_task(s);
    if (!t) throw UsageError("--tasks: '" + s + "' is not fill, extend or remove");
    return *t;
  });
  sizes_ = parse_mix<Size>("--sizes", flags_.sizes, parse_size);

  std::vector<SyntheticInput> inputs;
  for (const auto& s : sizes_)
    inputs.push_back(make_synthetic_input(s.value.width, s.value.height));
  for (const auto& t : tasks_) {
    for (size_t si = 0; si < sizes_.size(); ++si) {
      Spec spec;
      spec.task = t.value;
      spec.size = sizes_[si].value;
      v1::FillRequest& r = spec.request;
      r.set_task(t.value);
      r.set_image(inputs[si].image);
      if (t.value == v1::TASK_EXTEND) {
        // Grow the canvas sideways by an eighth of the width per side (multiple of 16).
        const uint32_t m =
            std::max<uint32_t>(16, static_cast<uint32_t>(spec.size.width / 8) / 16 * 16);
        r.mutable_extend()->set_left(m);
        r.mutable_extend()->set_right(m);
        if (flags_.prompt) r.set_prompt(*flags_.prompt);
      } else {
        r.set_mask(inputs[si].mask);
        if (t.value == v1::TASK_FILL)
          r.set_prompt(flags_.prompt ? *flags_.prompt : kDefaultFillPrompt);
      }
      if (flags_.steps) r.set_steps(*flags_.steps);
      if (flags_.true_cfg) r.set_true_cfg(*flags_.true_cfg);
      if (flags_.num_images) r.set_num_images(*flags_.num_images);
      specs_.push_back(std::move(spec));
    }
  }
}

bool Bench::launch() {
  std::shared_ptr<Call> call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!issuing_ || requests_done_) return false;
    if (open_loop_ && static_cast<int>(in_flight_.size()) >= flags_.max_in_flight) {
      ++dropped_;
      return true;
    }
    const uint64_t id = issued_++;
    if (flags_.requests && issued_ >= static_cast<uint64_t>(*flags_.requests)) {
      requests_done_ = true;
      cv_.notify_all();
    }
    const size_t ti = pick(tasks_, rng_);
    const size_t si = pick(sizes_, rng_);
    const size_t spec = ti * sizes_.size() + si;
    call = std::make_shared<Call>(this, id, spec);
    call->request_ = specs_[spec].request;
    if (flags_.seed) call->request_.set_seed(*flags_.seed + id);
    set_deadline(call->ctx_, conn_.timeout_s, std::nullopt);
    in_flight_.emplace(id, call);
  }
  call->start(stub_.get());
  return true;
}

std::shared_ptr<Call> Bench::finish(Call* call, const grpc::Status& status) {
  std::shared_ptr<Call> keep;
  bool next = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find(call->id_);
    if (it != in_flight_.end()) {
      keep = std::move(it->second);
      in_flight_.erase(it);
    }
    Sample s;
    s.spec = call->spec_;
    s.code = status.error_code();
    s.cancelled_at_end = call->cancelled_at_end_.load() && !status.ok();
    s.done_s = now_s();
    s.latency_ms = (s.done_s - call->start_s_) * 1000.0;
    if (call->first_progress_s_)
      s.queue_wait_ms = (*call->first_progress_s_ - call->start_s_) * 1000.0;
    s.images = call->images_;
    if (status.ok()) {
      ++ok_;
    } else if (!s.cancelled_at_end) {
      ++errors_;
    }
    samples_.push_back(s);
    next = !open_loop_ && issuing_ && !requests_done_;
    cv_.notify_all();
  }
  if (next) launch();
  return keep;
}

void Bench::report_progress_loop() {
  const bool tty = isatty(STDERR_FILENO) != 0;
  std::unique_lock<std::mutex> lock(mu_);
  bool drawn = false;
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return reporter_stop_; })) {
    const double t = now_s() - start_s_;
    char line[256];
    std::snprintf(
        line, sizeof line,
        "bench %.0fs issued=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64 " in_flight=%zu ok/s=%.2f",
        t, issued_, ok_, errors_, in_flight_.size(), t > 0 ? static_cast<double>(ok_) / t : 0.0);
    if (tty) {
      std::fprintf(stderr, "\r%s\033[K", line);
      drawn = true;
    } else {
      std::fprintf(stderr, "%s\n", line);
    }
    std::fflush(stderr);
  }
  if (drawn) std::fputs("\n", stderr);
}

int Bench::run() {
  // Ctrl-C stops issuing, cancels the calls in flight and prints what was measured.
  InterruptWatcher interrupts;
  interrupts.set_handler([this] {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
    cv_.notify_all();
  });
  build_specs();
  open_loop_ = flags_.rate.has_value();
  if (open_loop_ && !(*flags_.rate > 0)) throw UsageError("--rate must be positive");
  if (!open_loop_ && flags_.concurrency < 1) throw UsageError("--concurrency must be >= 1");
  if (flags_.requests && *flags_.requests < 1) throw UsageError("--requests must be >= 1");
  if (flags_.duration_s && !(*flags_.duration_s > 0))
    throw UsageError("--duration must be positive");
  if (flags_.grace_s < 0) throw UsageError("--grace must be >= 0");
  if (flags_.max_in_flight < 1) throw UsageError("--max-in-flight must be >= 1");
  if (!flags_.duration_s && !flags_.requests) flags_.duration_s = 10.0;
  rng_.seed(flags_.seed.value_or(1));

  stub_ = v1::ImageFill::NewStub(make_channel(conn_));

  start_s_ = now_s();
  const auto start = Clock::now();
  const auto stop_at =
      flags_.duration_s
          ? start + std::chrono::microseconds(static_cast<int64_t>(*flags_.duration_s * 1e6))
          : start + std::chrono::hours(24 * 365 * 10);  // no deadline
  std::thread reporter([this] { report_progress_loop(); });

  if (open_loop_) {
    std::exponential_distribution<double> gap(*flags_.rate);
    auto next = start;
    while (true) {
      double g;
      {
        std::lock_guard<std::mutex> lock(mu_);
        g = gap(rng_);
      }
      next += std::chrono::microseconds(static_cast<int64_t>(g * 1e6));
      if (next >= stop_at) break;
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_until(lock, next, [this] { return interrupted_ || requests_done_; })) break;
      lock.unlock();
      if (!launch()) break;
    }
  } else {
    for (int i = 0; i < flags_.concurrency; ++i)
      if (!launch()) break;
  }

  // Stop issuing (closed loop: at the deadline or when the budget is used up).
  double issue_end_s;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, stop_at, [this] { return interrupted_ || requests_done_; });
    issuing_ = false;
    issue_end_s = now_s();
    // Grace for calls in flight (none after Ctrl-C).
    const auto grace_end = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(
                                              (interrupted_ ? 0.0 : flags_.grace_s) * 1e6));
    cv_.wait_until(lock, grace_end, [this] { return in_flight_.empty() || interrupted_; });
  }
  // Cancel what is left, outside the lock: TryCancel may run OnDone on this thread.
  std::vector<std::shared_ptr<Call>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& kv : in_flight_) left.push_back(kv.second);
  }
  for (auto& c : left) {
    c->cancelled_at_end_.store(true);
    c->ctx_.TryCancel();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [this] { return in_flight_.empty(); });
    reporter_stop_ = true;
    cv_.notify_all();
  }
  reporter.join();
  left.clear();

  double end_s = issue_end_s;
  bool interrupted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : samples_)
      if (!s.cancelled_at_end) end_s = std::max(end_s, s.done_s);
    interrupted = interrupted_;
  }
  return report(end_s - start_s_, interrupted);
}

int Bench::report(double wall_s, bool interrupted) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double> latency, queue_wait;
  std::map<std::string, uint64_t> errors_by_code;
  uint64_t images = 0, cancelled_at_end = 0;
  struct PerSpec {
    uint64_t ok = 0, errors = 0;
    std::vector<double> latency, queue_wait;
  };
  std::vector<PerSpec> per(specs_.size());
  for (const auto& s : samples_) {
    if (s.cancelled_at_end) {
      ++cancelled_at_end;
      continue;
    }
    if (s.queue_wait_ms) {
      queue_wait.push_back(*s.queue_wait_ms);
      per[s.spec].queue_wait.push_back(*s.queue_wait_ms);
    }
    if (s.code == grpc::StatusCode::OK) {
      latency.push_back(s.latency_ms);
      per[s.spec].latency.push_back(s.latency_ms);
      ++per[s.spec].ok;
      images += static_cast<uint64_t>(s.images);
    } else {
      ++errors_by_code[code_name(s.code)];
      ++per[s.spec].errors;
    }
  }
  const Percentiles lat = percentiles(latency);
  const Percentiles qw = percentiles(queue_wait);
  const double rps = wall_s > 0 ? static_cast<double>(ok_) / wall_s : 0;
  const double ips = wall_s > 0 ? static_cast<double>(images) / wall_s : 0;

  nlohmann::json j;
  j["mode"] = open_loop_ ? "open" : "closed";
  if (open_loop_)
    j["rate"] = *flags_.rate;
  else
    j["concurrency"] = flags_.concurrency;
  j["target"] = conn_.target;
  j["tasks"] = flags_.tasks;
  j["sizes"] = flags_.sizes;
  if (flags_.steps) j["steps"] = *flags_.steps;
  j["duration_s"] = wall_s;
  j["interrupted"] = interrupted;
  j["requests"] = {
      {"issued", issued_}, {"completed", ok_ + errors_},           {"ok", ok_},
      {"errors", errors_}, {"cancelled_at_end", cancelled_at_end}, {"dropped", dropped_}};
  j["images"] = images;
  j["throughput"] = {{"requests_per_s", rps}, {"images_per_s", ips}};
  j["latency_ms"] = to_json(lat);
  j["queue_wait_ms"] = to_json(qw);
  j["errors_by_code"] = nlohmann::json::object();
  for (const auto& [code, n] : errors_by_code) j["errors_by_code"][code] = n;
  j["by_task"] = nlohmann::json::array();
  for (size_t i = 0; i < specs_.size(); ++i) {
    j["by_task"].push_back({{"task", task_name(specs_[i].task)},
                            {"size", specs_[i].size.label},
                            {"ok", per[i].ok},
                            {"errors", per[i].errors},
                            {"latency_ms", to_json(percentiles(per[i].latency))},
                            {"queue_wait_ms", to_json(percentiles(per[i].queue_wait))}});
  }

  std::ostringstream o;
  char buf[256];
  if (open_loop_)
    std::snprintf(buf, sizeof buf, "mode: open loop, %.3g requests/s (Poisson)\n", *flags_.rate);
  else
    std::snprintf(buf, sizeof buf, "mode: closed loop, concurrency %d\n", flags_.concurrency);
  o << buf;
  std::snprintf(buf, sizeof buf, "duration: %.2f s%s\n", wall_s,
                interrupted ? " (interrupted)" : "");
  o << buf;
  std::snprintf(buf, sizeof buf,
                "requests: issued=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64
                " cancelled_at_end=%" PRIu64 " dropped=%" PRIu64 "\n",
                issued_, ok_, errors_, cancelled_at_end, dropped_);
  o << buf;
  std::snprintf(buf, sizeof buf, "throughput: %.3f requests/s, %.3f images/s\n\n", rps, ips);
  o << buf;
  std::snprintf(buf, sizeof buf, "%-12s %8s %10s %10s %10s %10s %10s\n", "", "count", "p50_ms",
                "p90_ms", "p99_ms", "mean_ms", "max_ms");
  o << buf;
  for (const auto& [name, p] : {std::make_pair("latency", lat), std::make_pair("queue_wait", qw)}) {
    std::snprintf(buf, sizeof buf, "%-12s %8zu %10.1f %10.1f %10.1f %10.1f %10.1f\n", name, p.count,
                  p.p50, p.p90, p.p99, p.mean, p.max);
    o << buf;
  }
  if (!errors_by_code.empty()) {
    o << "\nerrors by code:\n";
    for (const auto& [code, n] : errors_by_code) {
      std::snprintf(buf, sizeof buf, "  %-20s %8" PRIu64 "\n", code.c_str(), n);
      o << buf;
    }
  }
  if (specs_.size() > 1) {
    std::snprintf(buf, sizeof buf, "\n%-8s %-11s %8s %8s %10s %10s %10s\n", "task", "size", "ok",
                  "errors", "p50_ms", "p99_ms", "wait_p50");
    o << buf;
    for (size_t i = 0; i < specs_.size(); ++i) {
      const Percentiles l = percentiles(per[i].latency);
      const Percentiles w = percentiles(per[i].queue_wait);
      std::snprintf(buf, sizeof buf, "%-8s %-11s %8" PRIu64 " %8" PRIu64 " %10.1f %10.1f %10.1f\n",
                    task_name(specs_[i].task), specs_[i].size.label.c_str(), per[i].ok,
                    per[i].errors, l.p50, l.p99, w.p50);
      o << buf;
    }
  }
  std::fputs(o.str().c_str(), stdout);
  std::fflush(stdout);

  if (!flags_.json_path.empty()) {
    try {
      write_binary(flags_.json_path, j.dump(2) + "\n");
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << std::endl;
      return kExitRpcError;
    }
  }
  if (interrupted) return kExitInterrupted;
  return ok_ == 0 && errors_ > 0 ? kExitRpcError : kExitOk;
}

}  // namespace

int run_bench(const ConnectionFlags& conn, const BenchFlags& flags) {
  Bench bench(conn, flags);
  return bench.run();
}

}  // namespace onereward::client
