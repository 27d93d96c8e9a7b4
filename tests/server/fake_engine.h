// A StageEngine for tests that must control timing and failures: no tensors, steps that
// can be held at a gate, slowed down, or made to fail.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/scheduler.h"
#include "server/stage_engine.h"

namespace onereward::server::testing {

class FakeEngine : public StageEngine {
 public:
  struct H : Handle {
    FillRequest req;
    JobState st;
    std::string name;  // the job's prompt, used to name it in the call log
  };

  FakeEngine() {
    info_.model_dir = "fake";
    info_.variants = {"base", "onereward"};
    info_.default_variant = "base";
    info_.adapters = {"object-removal"};
    info_.device = "cpu";
    info_.dtype = "fp32";
    info_.torch_version = "none";
  }

  const EngineInfo& info() const override { return info_; }

  Result<std::unique_ptr<Handle>> prepare(const FillRequest& r) override {
    const std::string name = r.prompts.empty() ? "" : r.prompts[0];
    if (name == "fail-prepare") return Status(StatusCode::kInternal, "prepare failed on purpose");
    if (name == "bad-input") return Status(StatusCode::kInvalidArgument, "prompt: refused by the engine");
    auto h = std::make_unique<H>();
    h->req = r;
    h->name = name;
    const int w = r.width > 0 ? r.width : r.image.width, hh = r.height > 0 ? r.height : r.image.height;
    h->st.group_key = (r.variant.empty() ? "base" : r.variant) + "/" + std::to_string(w) + "x" + std::to_string(hh);
    h->st.rows = std::max(1, r.num_images) * (r.true_cfg > 1.0f ? 2 : 1);
    h->st.steps_total = r.steps;
    std::lock_guard<std::mutex> lock(mu_);
    prepared_.push_back(name);
    return std::unique_ptr<Handle>(std::move(h));
  }

  JobState state(const Handle& job) const override { return static_cast<const H&>(job).st; }

  Status step(const std::vector<Handle*>& jobs) override {
    std::vector<std::string> names;
    int rows = 0;
    bool poison = false;
    for (Handle* j : jobs) {
      auto* h = static_cast<H*>(j);
      names.push_back(h->name);
      rows += h->st.rows;
      poison = poison || h->name == "poison";
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      calls_.push_back(names);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return gate_open_ || released_ > 0; });
      if (!gate_open_) --released_;
    }
    if (step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms));
    if (poison) return Status(StatusCode::kInternal, "step failed on purpose");
    if (fail_above_rows > 0 && rows > fail_above_rows)
      return Status(StatusCode::kResourceExhausted, "out of memory (rows " + std::to_string(rows) + ")");
    for (Handle* j : jobs) static_cast<H*>(j)->st.steps_done += 1;
    return Status::Ok();
  }

  Result<FillOutput> finish(Handle& job) override {
    auto& h = static_cast<H&>(job);
    FillOutput out;
    out.width = h.req.width > 0 ? h.req.width : h.req.image.width;
    out.height = h.req.height > 0 ? h.req.height : h.req.image.height;
    out.seed = h.req.seed;
    for (int i = 0; i < std::max(1, h.req.num_images); ++i)
      out.images.push_back(image::Image(out.width, out.height, static_cast<uint8_t>(h.req.seed % 251)));
    std::lock_guard<std::mutex> lock(mu_);
    finished_.push_back(h.name);
    return out;
  }

  Result<image::Image> preview(Handle& job) override {
    // Noise, so that encoded previews are large (transport back-pressure tests).
    auto& h = static_cast<H&>(job);
    image::Image im(h.req.image.width, h.req.image.height);
    uint32_t x = 2463534242u + static_cast<uint32_t>(h.st.steps_done);
    for (auto& b : im.rgb) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      b = static_cast<uint8_t>(x);
    }
    return im;
  }

  // --- test controls ---
  void close_gate() {
    std::lock_guard<std::mutex> lock(mu_);
    gate_open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gate_open_ = true;
    }
    cv_.notify_all();
  }
  /// Lets `n` more steps through a closed gate.
  void release(int n = 1) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ += n;
    }
    cv_.notify_all();
  }
  /// Waits until `n` step calls have entered (been logged).
  bool wait_entered(int n, double timeout_s = 10) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return entered_ >= n; });
  }
  std::vector<std::vector<std::string>> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<std::string> finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  std::vector<std::string> prepared() const {
    std::lock_guard<std::mutex> lock(mu_);
    return prepared_;
  }

  int64_t memory_in_use() const override { return mem_in_use; }
  int64_t memory_reserved() const override { return mem_reserved; }

  int step_delay_ms = 0;
  int fail_above_rows = 0;
  int64_t mem_in_use = -1, mem_reserved = -1;  // -1: no device memory to report (CPU)

 private:
  EngineInfo info_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool gate_open_ = true;
  int released_ = 0;
  int entered_ = 0;
  std::vector<std::vector<std::string>> calls_;
  std::vector<std::string> finished_, prepared_;
};

/// Records a job's events.
class RecordingSink : public JobSink {
 public:
  void queued(int position, int64_t expected_wait_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    positions.push_back(position);
    waits.push_back(expected_wait_ms);
  }
  void progress(int step, int steps, int64_t, int64_t, std::optional<image::Image> preview) override {
    std::lock_guard<std::mutex> lock(mu_);
    progress_steps.push_back(step);
    total_steps = steps;
    if (preview) ++previews;
  }
  void result(FillOutput out, double queue_ms) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      output = std::move(out);
      this->queue_ms = queue_ms;
      code = StatusCode::kOk;
      done = true;
    }
    cv_.notify_all();
  }
  void failed(const Status& s) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      code = s.code();
      message = s.message();
      done = true;
      ++terminal_count;
    }
    cv_.notify_all();
  }
  bool wait(double timeout_s = 20) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return done; });
  }
  std::vector<int> steps_seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return progress_steps;
  }
  std::vector<int> positions_seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return positions;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> positions;
  std::vector<int64_t> waits;
  std::vector<int> progress_steps;
  int total_steps = 0;
  int previews = 0;
  int terminal_count = 0;
  bool done = false;
  StatusCode code = StatusCode::kOk;
  std::string message;
  std::optional<FillOutput> output;
  double queue_ms = 0;
};

}  // namespace onereward::server::testing
