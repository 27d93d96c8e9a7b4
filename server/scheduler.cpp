#include "server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "server/logging.h"
#include "server/metrics.h"

namespace onereward::server {

struct Scheduler::Entry {
  std::shared_ptr<SchedJob> job;
  uint64_t seq = 0;
  int64_t enqueued_iteration = 0;  // when it entered the queue
  int64_t last_stepped = 0;        // iteration of its last step (or of its admission)
  std::unique_ptr<StageEngine::Handle> handle;
  JobState state;
  // Guarded by the scheduler's mutex.
  bool cancel = false;
  StatusCode cancel_code = StatusCode::kCancelled;
  std::string cancel_message;
  bool is_running = false;
  int last_position = -1;
  // Scheduler thread only.
  bool started = false;
  bool ended = false;
  Clock::time_point first_step{};
};

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Output side of the request: the size the engine will produce, floored to 16.
int64_t image_tokens(const FillRequest& r) {
  int64_t w = r.width, h = r.height;
  if (w <= 0 || h <= 0) {
    int64_t iw = r.image.width, ih = r.image.height;
    if (r.task == Task::kExtend && !r.mask) {
      iw += r.extend.left + r.extend.right;
      ih += r.extend.top + r.extend.bottom;
    }
    if (w <= 0) w = iw;
    if (h <= 0) h = ih;
  }
  return std::max<int64_t>(1, (w / 16) * (h / 16));
}

int estimated_rows(const FillRequest& r) {
  const int prompts = std::max<int>(1, static_cast<int>(r.prompts.size()));
  return prompts * std::max(1, r.num_images) * (r.true_cfg > 1.0f ? 2 : 1);
}

}  // namespace

Scheduler::Scheduler(StageEngine& engine, SchedulerOptions options, Metrics* metrics)
    : engine_(engine), options_(options), metrics_(metrics) {
  options_.queue_capacity = std::max(0, options_.queue_capacity);
  options_.max_batch_rows = std::max(1, options_.max_batch_rows);
  options_.starvation_limit = std::max(1, options_.starvation_limit);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(); }

Scheduler::Admit Scheduler::submit(std::shared_ptr<SchedJob> job) {
  auto e = std::make_shared<Entry>();
  int position = 0;
  int64_t wait_ms = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_ || stopping_) return Admit::kDraining;
    if (by_id_.count(job->id)) return Admit::kDuplicateId;
    if (static_cast<int>(queue_.size()) + reserved_ >= options_.queue_capacity) return Admit::kQueueFull;
    job->admitted = Clock::now();
    job->rows = estimated_rows(job->request);
    job->cost = static_cast<int64_t>(job->rows) * std::max(1, job->request.steps) * image_tokens(job->request);
    e->job = job;
    by_id_[job->id] = e;  // Cancel finds it from now on
    ++reserved_;          // its queue place, held while the admission event goes out
    position = static_cast<int>(queue_.size());
    wait_ms = expected_wait_ms_locked(queue_.size());
  }
  // The admission event goes out before the job can reach the scheduler thread, so it is
  // the call's first event.
  if (job->sink) job->sink->queued(position, wait_ms);
  int moved_to = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --reserved_;
    e->seq = next_seq_++;
    e->enqueued_iteration = iteration_;
    queue_.push_back(e);
    e->last_position = static_cast<int>(queue_.size()) - 1;
    if (e->last_position != position) {
      moved_to = e->last_position;
      wait_ms = expected_wait_ms_locked(queue_.size() - 1);
    }
    update_gauges_locked();
  }
  if (moved_to >= 0 && job->sink) job->sink->queued(moved_to, wait_ms);
  cv_.notify_all();
  return Admit::kOk;
}

std::optional<std::string> Scheduler::cancel(const std::string& id, StatusCode code, const std::string& message) {
  std::string state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    Entry& e = *it->second;
    if (!e.cancel) {
      e.cancel = true;
      e.cancel_code = code;
      e.cancel_message = message;
    }
    state = e.is_running ? "running" : "queued";
  }
  cv_.notify_all();
  return state;
}

void Scheduler::begin_drain() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
}

bool Scheduler::wait_idle(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_until(lock, until, [&] { return by_id_.empty(); });
}

void Scheduler::cancel_all(StatusCode code, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, e] : by_id_) {
      if (!e->cancel) {
        e->cancel = true;
        e->cancel_code = code;
        e->cancel_message = message;
      }
    }
  }
  cv_.notify_all();
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    draining_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t Scheduler::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_count_;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

double Scheduler::seconds_per_cost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seconds_per_cost_;
}

int64_t Scheduler::expected_wait_ms_locked(size_t position) const {
  if (seconds_per_cost_ <= 0) return 0;
  // Work ahead of this place: what the running jobs have left plus the queued jobs ahead.
  // seconds_per_cost_ is measured on batched steps, so batching's gain is part of it.
  double cost = running_remaining_cost_;
  for (size_t i = 0; i < position && i < queue_.size(); ++i) cost += static_cast<double>(queue_[i]->job->cost);
  return static_cast<int64_t>(std::llround(cost * seconds_per_cost_ * 1000.0));
}

void Scheduler::update_gauges_locked() {
  if (!metrics_) return;
  metrics_->set_queue_depth(static_cast<int64_t>(queue_.size()));
  metrics_->set_running_jobs(static_cast<int64_t>(running_count_));
}

void Scheduler::publish_queue_positions_locked(
    std::vector<std::pair<std::shared_ptr<JobSink>, std::pair<int, int64_t>>>& out) {
  for (size_t i = 0; i < queue_.size(); ++i) {
    auto& e = queue_[i];
    if (e->last_position != static_cast<int>(i)) {
      e->last_position = static_cast<int>(i);
      out.push_back({e->job->sink, {static_cast<int>(i), expected_wait_ms_locked(i)}});
    }
  }
}

void Scheduler::retire(const std::shared_ptr<Entry>& e) {
  e->ended = true;
  e->handle.reset();  // frees the job's tensors now
  std::lock_guard<std::mutex> lock(mu_);
  by_id_.erase(e->job->id);
  if (e->is_running) {
    e->is_running = false;
    --running_count_;
  }
  update_gauges_locked();
}

void Scheduler::fail_entry(const std::shared_ptr<Entry>& e, const Status& s) {
  if (e->ended) return;
  if (!e->started) e->job->queue_ms = seconds_since(e->job->admitted) * 1000.0;
  retire(e);
  if (e->job->sink) e->job->sink->failed(s);
  idle_cv_.notify_all();
}

void Scheduler::drop_ended() {
  running_.erase(std::remove_if(running_.begin(), running_.end(), [](auto& e) { return e->ended; }), running_.end());
}

void Scheduler::loop() {
  using QueuedNote = std::pair<std::shared_ptr<JobSink>, std::pair<int, int64_t>>;
  for (;;) {
    std::vector<std::pair<std::shared_ptr<Entry>, Status>> to_fail;
    std::vector<QueuedNote> queued_notes;
    std::shared_ptr<Entry> to_prepare;
    bool exit_loop = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running_.empty(); });
      if (stopping_) {
        // Whatever is left ends now, at this step boundary.
        for (auto& [id, e] : by_id_) {
          if (!e->cancel) {
            e->cancel = true;
            e->cancel_code = StatusCode::kUnavailable;
            e->cancel_message = "server is shutting down";
          }
        }
        if (queue_.empty() && running_.empty()) exit_loop = true;
      }
      // 1. Cancellations and deadlines.
      const auto now = Clock::now();
      auto expired = [&](const Entry& e) { return e.job->deadline && now >= *e.job->deadline; };
      bool queue_changed = false;
      for (auto it = queue_.begin(); it != queue_.end();) {
        Entry& e = **it;
        if (!e.cancel && expired(e)) {
          e.cancel = true;
          e.cancel_code = StatusCode::kDeadlineExceeded;
          e.cancel_message = "deadline passed while queued";
        }
        if (e.cancel) {
          to_fail.push_back({*it, Status(e.cancel_code, e.cancel_message)});
          it = queue_.erase(it);
          queue_changed = true;
        } else {
          ++it;
        }
      }
      for (auto& e : running_) {
        if (!e->cancel && expired(*e)) {
          e->cancel = true;
          e->cancel_code = StatusCode::kDeadlineExceeded;
          e->cancel_message = "deadline passed after " + std::to_string(e->state.steps_done) + " of " +
                              std::to_string(e->state.steps_total) + " steps";
        }
        if (e->cancel) to_fail.push_back({e, Status(e->cancel_code, e->cancel_message)});
      }
      // 3. Admission: the best queued job, if its rows fit next to the running ones.
      if (!queue_.empty() && !stopping_) {
        // Starving jobs go first, oldest first, whatever their priority.
        auto key = [&](const std::shared_ptr<Entry>& e) {
          const bool starving = iteration_ - e->enqueued_iteration >= options_.starvation_limit;
          return std::make_tuple(starving, starving ? 0 : e->job->priority, -static_cast<int64_t>(e->seq));
        };
        auto best = std::max_element(queue_.begin(), queue_.end(),
                                     [&](const auto& a, const auto& b) { return key(a) < key(b); });
        int running_rows = 0;
        for (auto& e : running_)
          if (!e->cancel) running_rows += e->state.rows;
        const int rows = (*best)->job->rows;
        const bool any_running = std::any_of(running_.begin(), running_.end(), [](auto& e) { return !e->cancel; });
        if (!any_running || running_rows + rows <= options_.max_batch_rows) {
          to_prepare = *best;
          queue_.erase(best);
          to_prepare->is_running = true;
          ++running_count_;
          queue_changed = true;
        }
      }
      if (queue_changed) publish_queue_positions_locked(queued_notes);
      update_gauges_locked();
      ++iteration_;
      ++stats_.iterations;
    }
    for (auto& [sink, pw] : queued_notes)
      if (sink) sink->queued(pw.first, pw.second);
    for (auto& [e, s] : to_fail) fail_entry(e, s);
    drop_ended();
    if (exit_loop) break;

    // 2. Finish at most one job whose steps are all done.
    for (auto& e : running_) {
      if (e->ended || !e->state.done() || e->state.steps_total == 0) continue;
      auto out = engine_.finish(*e->handle);
      if (!out.ok()) {
        fail_entry(e, Status(StatusCode::kInternal, "decoding the result failed: " + out.status().message()));
      } else {
        FillOutput o = std::move(out.value());
        if (metrics_) {
          metrics_->stage("text", o.timings.text_ms / 1000.0);
          metrics_->stage("vae_encode", o.timings.vae_encode_ms / 1000.0);
          metrics_->stage("denoise", o.timings.denoise_ms / 1000.0);
          metrics_->stage("vae_decode", o.timings.vae_decode_ms / 1000.0);
        }
        retire(e);
        if (e->job->sink) e->job->sink->result(std::move(o), e->job->queue_ms);
        idle_cv_.notify_all();
      }
      break;
    }
    drop_ended();

    // 3. Prepare the admitted job (prompt encoding through the cache, VAE encode, noise).
    if (to_prepare) {
      auto h = engine_.prepare(to_prepare->job->request);
      if (metrics_) metrics_->set_prompt_cache_totals(engine_.cache_hits(), engine_.cache_misses());
      if (!h.ok()) {
        Status s = h.status();
        if (s.code() != StatusCode::kInvalidArgument && s.code() != StatusCode::kNotFound)
          s = Status(StatusCode::kInternal, "preparing the job failed: " + s.message());
        else if (s.code() == StatusCode::kNotFound)
          s = Status(StatusCode::kInvalidArgument, s.message());
        fail_entry(to_prepare, s);
      } else {
        to_prepare->handle = std::move(h.value());
        to_prepare->state = engine_.state(*to_prepare->handle);
        const int old_rows = std::max(1, to_prepare->job->rows);
        to_prepare->job->rows = to_prepare->state.rows;
        to_prepare->job->cost = to_prepare->job->cost / old_rows * to_prepare->state.rows;
        to_prepare->job->group_key = to_prepare->state.group_key;
        // Its wait counts from when it was queued: oldest waiting work goes first.
        to_prepare->last_stepped = to_prepare->enqueued_iteration;
        running_.push_back(to_prepare);
      }
    }

    // 4. One batched step for the group that goes first.
    std::vector<std::shared_ptr<Entry>> candidates;
    for (auto& e : running_)
      if (!e->ended && !e->state.done()) candidates.push_back(e);
    if (candidates.empty()) continue;
    auto key = [&](const std::shared_ptr<Entry>& e) {
      const bool starving = iteration_ - e->last_stepped >= options_.starvation_limit;
      return std::make_tuple(starving, starving ? 0 : e->job->priority, -e->last_stepped,
                             -static_cast<int64_t>(e->seq));
    };
    std::stable_sort(candidates.begin(), candidates.end(), [&](const auto& a, const auto& b) { return key(a) > key(b); });
    const std::string& group_key = candidates.front()->state.group_key;
    std::vector<std::shared_ptr<Entry>> group;
    int rows = 0;
    for (auto& e : candidates) {
      if (e->state.group_key != group_key) continue;
      if (!group.empty() && rows + e->state.rows > options_.max_batch_rows) continue;
      group.push_back(e);
      rows += e->state.rows;
    }
    try_step(group);
    drop_ended();
    double remaining = 0;
    for (auto& e : running_) {
      const int64_t per_step = e->job->cost / std::max(1, e->job->request.steps);
      remaining += static_cast<double>(per_step) * (e->state.steps_total - e->state.steps_done);
    }
    std::lock_guard<std::mutex> lock(mu_);
    running_remaining_cost_ = remaining;
  }
}

void Scheduler::try_step(const std::vector<std::shared_ptr<Entry>>& group) {
  if (group.empty()) return;
  std::vector<StageEngine::Handle*> handles;
  int rows = 0;
  for (auto& e : group) {
    handles.push_back(e->handle.get());
    rows += e->state.rows;
  }
  const auto t0 = Clock::now();
  for (auto& e : group) {
    if (!e->started) {
      e->started = true;
      e->first_step = t0;
      e->job->queue_ms = std::chrono::duration<double, std::milli>(t0 - e->job->admitted).count();
      if (metrics_) metrics_->queue_wait(e->job->queue_ms / 1000.0);
    }
  }
  Status s = engine_.step(handles);
  const double seconds = seconds_since(t0);
  if (s.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.steps;
      stats_.max_rows_seen = std::max(stats_.max_rows_seen, rows);
      double cost = 0;
      for (auto& e : group) cost += static_cast<double>(e->job->cost / std::max(1, e->job->request.steps));
      const double spc = seconds / std::max(1.0, cost);
      seconds_per_cost_ = seconds_per_cost_ <= 0 ? spc : 0.8 * seconds_per_cost_ + 0.2 * spc;
    }
    if (metrics_) {
      metrics_->batch_step(rows, seconds);
      const int64_t in_use = engine_.memory_in_use();
      if (in_use >= 0) metrics_->set_device_memory(in_use, engine_.memory_reserved());
    }
    after_step(group);
    return;
  }
  if (group.size() == 1) {
    log_event("error", "denoising step failed", {{"request_id", group[0]->job->id}, {"error", s.to_string()}});
    fail_entry(group[0], Status(StatusCode::kInternal, "denoising step failed: " + s.message()));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.step_retries;
  }
  log_event("warn", "batched step failed; retrying in smaller groups",
            {{"jobs", std::to_string(group.size())}, {"rows", std::to_string(rows)}, {"error", s.to_string()}});
  const size_t half = group.size() / 2;
  std::vector<std::shared_ptr<Entry>> a(group.begin(), group.begin() + half), b(group.begin() + half, group.end());
  try_step(a);
  try_step(b);
}

void Scheduler::after_step(const std::vector<std::shared_ptr<Entry>>& group) {
  const auto now = Clock::now();
  for (auto& e : group) {
    e->state = engine_.state(*e->handle);
    e->last_stepped = iteration_;
    const int done = e->state.steps_done, total = e->state.steps_total;
    const double elapsed_ms = std::chrono::duration<double, std::milli>(now - e->job->admitted).count();
    const double denoise_ms = std::chrono::duration<double, std::milli>(now - e->first_step).count();
    const double eta_ms = done > 0 ? denoise_ms / done * (total - done) : 0.0;
    std::optional<image::Image> preview;
    if (e->job->preview_every > 0 && done < total && done % e->job->preview_every == 0) {
      auto p = engine_.preview(*e->handle);
      if (p.ok()) {
        preview = std::move(p.value());
      } else {
        log_event("warn", "preview failed", {{"request_id", e->job->id}, {"error", p.status().to_string()}});
      }
    }
    if (e->job->sink)
      e->job->sink->progress(done, total, static_cast<int64_t>(elapsed_ms), static_cast<int64_t>(eta_ms),
                             std::move(preview));
  }
}

}  // namespace onereward::server
