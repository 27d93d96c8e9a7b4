// Step-level continuous batching (DESIGN.md): one scheduler thread drives the engine.
//
// Every iteration the scheduler
//   1. ends cancelled jobs (caller gone, Cancel RPC, deadline, drain) at the step boundary:
//      their place is freed and no VAE decode is spent on them;
//   2. finishes at most one job whose steps are all done (VAE decode);
//   3. admits at most one queued job into the running set (prompt encoding, VAE encode),
//      if its rows fit the row budget;
//   4. runs one batched denoising step for one group of running jobs that can share a
//      transformer call (same variant, latent size, text length): the group of the job that
//      has waited longest among the highest priority class, plus every other job of that
//      group that fits the row budget.
// Stage work (2, 3) therefore delays the running steps by at most one job's share per
// iteration. Fairness: higher `priority` first, oldest waiting work first within a class;
// a job passed over for `starvation_limit` iterations goes first regardless of priority.
// A failing batched step is retried in halves; only a job that fails alone ends INTERNAL.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/pipeline/engine.h"
#include "server/stage_engine.h"

namespace onereward::server {

class Metrics;
using Clock = std::chrono::steady_clock;

/// Where a job's events go (the gRPC call). Called from the scheduler thread, never with
/// the scheduler's lock held; implementations must not block.
class JobSink {
 public:
  virtual ~JobSink() = default;
  virtual void queued(int position, int64_t expected_wait_ms) = 0;
  /// Exactly once per denoising step.
  virtual void progress(int step, int steps, int64_t elapsed_ms, int64_t eta_ms,
                        std::optional<image::Image> preview) = 0;
  /// Terminal: the job's images. `queue_ms`: admission to first step.
  virtual void result(FillOutput output, double queue_ms) = 0;
  /// Terminal: the job ended with an error.
  virtual void failed(const Status& status) = 0;
};

/// One admitted request as the scheduler sees it.
struct SchedJob {
  std::string id;
  FillRequest request;
  int priority = 0;
  int preview_every = 0;
  std::optional<Clock::time_point> deadline;
  std::shared_ptr<JobSink> sink;

  // Filled in by the scheduler.
  Clock::time_point admitted{};
  int rows = 1;              ///< estimated from the request until prepared
  int64_t cost = 0;          ///< rows x steps x image tokens (expected-wait estimate)
  // Final state for logs and metrics (valid once the sink got its terminal event).
  std::string group_key;
  double queue_ms = 0;
};

struct SchedulerOptions {
  int queue_capacity = 64;   ///< queued (not yet running) jobs before RESOURCE_EXHAUSTED
  int max_batch_rows = 16;   ///< transformer rows per step and rows of running jobs
  int starvation_limit = 16; ///< iterations a job may be passed over before it goes first
};

/// Counters for tests and logs.
struct SchedulerStats {
  int64_t iterations = 0;
  int64_t steps = 0;           ///< transformer calls
  int64_t step_retries = 0;    ///< failed batched steps split and retried
  int max_rows_seen = 0;
};

class Scheduler {
 public:
  enum class Admit { kOk, kQueueFull, kDuplicateId, kDraining };

  Scheduler(StageEngine& engine, SchedulerOptions options, Metrics* metrics = nullptr);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Queues a job (the sink gets a `queued` event before this returns kOk).
  Admit submit(std::shared_ptr<SchedJob> job);

  /// Cancels a queued or running job by id: "queued" or "running", or nullopt when the id
  /// is unknown or already finished. The job ends with `code` at the next step boundary.
  std::optional<std::string> cancel(const std::string& id, StatusCode code = StatusCode::kCancelled,
                                    const std::string& message = "cancelled");

  /// Stops admitting (submit returns kDraining); queued and running jobs go on.
  void begin_drain();
  /// Waits until no job is left; false when `until` passed first.
  bool wait_idle(Clock::time_point until);
  /// Ends every job with `code` (used when a drain's grace ran out).
  void cancel_all(StatusCode code, const std::string& message);
  /// Stops the thread (after cancel_all or when idle).
  void stop();

  size_t queued() const;
  size_t running() const;
  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

  /// Seconds per unit of cost, measured (for expected-wait estimates); 0 before any step.
  double seconds_per_cost() const;

 private:
  struct Entry;
  void loop();
  /// Takes an ended job out of the books (id, running count, gauges) and frees its tensors.
  void retire(const std::shared_ptr<Entry>& e);
  void fail_entry(const std::shared_ptr<Entry>& e, const Status& s);
  void drop_ended();  ///< removes ended jobs from running_
  /// One step for the group; on failure, halves retried until a job fails alone.
  void try_step(const std::vector<std::shared_ptr<Entry>>& group);
  void after_step(const std::vector<std::shared_ptr<Entry>>& group);
  void publish_queue_positions_locked(std::vector<std::pair<std::shared_ptr<JobSink>, std::pair<int, int64_t>>>& out);
  int64_t expected_wait_ms_locked(size_t position) const;
  void update_gauges_locked();

  StageEngine& engine_;
  SchedulerOptions options_;
  Metrics* metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // work arrived / cancel / stop
  std::condition_variable idle_cv_;  // a job ended
  std::deque<std::shared_ptr<Entry>> queue_;               // guarded by mu_
  std::vector<std::shared_ptr<Entry>> running_;             // scheduler thread only (+ size under mu_)
  std::map<std::string, std::shared_ptr<Entry>> by_id_;     // guarded by mu_
  size_t running_count_ = 0;                                // guarded by mu_
  int reserved_ = 0;  // queue places taken by submits still sending their admission event
  bool draining_ = false, stopping_ = false;
  uint64_t next_seq_ = 0;
  int64_t iteration_ = 0;
  double seconds_per_cost_ = 0;
  double running_remaining_cost_ = 0;  // cost units the running jobs have left
  SchedulerStats stats_;
  int64_t cache_hits_seen_ = -1;
  std::thread thread_;
};

}  // namespace onereward::server
