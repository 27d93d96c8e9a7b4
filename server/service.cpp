#include "server/service.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "engine/image/codec.h"
#include "onereward/v1/image_fill.grpc.pb.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/scheduler.h"
#include "server/validation.h"

#ifndef ONEREWARD_VERSION
#define ONEREWARD_VERSION "0.0.0"
#endif

namespace onereward::server {
namespace {

constexpr const char* kServiceName = "onereward.v1.ImageFill";

grpc::StatusCode to_grpc(StatusCode c) {
  switch (c) {
    case StatusCode::kOk: return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kCancelled: return grpc::StatusCode::CANCELLED;
    case StatusCode::kDeadlineExceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kDataLoss: return grpc::StatusCode::DATA_LOSS;
    case StatusCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

const char* code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

/// onereward_failures_total's reason for a terminal code ("" for OK).
const char* failure_reason(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return "";
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::ALREADY_EXISTS: return "invalid";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "rejected";
    case grpc::StatusCode::CANCELLED: return "cancelled";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "deadline";
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    default: return "internal";
  }
}

/// Small fixed pool that encodes result images off the scheduler thread.
class EncoderPool {
 public:
  explicit EncoderPool(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) workers_.emplace_back([this] { run(); });
  }
  ~EncoderPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  void post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stop_ and nothing left
        fn = std::move(tasks_.front());
        tasks_.pop_front();
      }
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string new_request_id() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  std::ostringstream o;
  o << "req-" << std::hex << rng();
  return o.str();
}

}  // namespace

using SvcState = Service::State;
using SvcLoader = Service::Loader;

class FillReactor;

class ServiceImpl final : public v1::ImageFill::CallbackService {
 public:
  ServiceImpl(const ServerOptions& options, SvcLoader loader, Metrics* metrics)
      : opt(options), loader(std::move(loader)), metrics(metrics), pool(options.encode_threads) {}

  grpc::ServerWriteReactor<v1::FillEvent>* Fill(grpc::CallbackServerContext* ctx, const v1::FillRequest* req) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* ctx, const v1::CancelRequest* req,
                                   v1::CancelResponse* resp) override;
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx, const v1::GetInfoRequest* req,
                                    v1::GetInfoResponse* resp) override;

  void load();
  void set_health(bool serving) {
    if (!server) return;
    auto* h = server->GetHealthCheckService();
    if (!h) return;
    h->SetServingStatus("", serving);
    h->SetServingStatus(kServiceName, serving);
  }
  bool serving() const { return state.load() == SvcState::kServing; }

  ServerOptions opt;
  SvcLoader loader;
  Metrics* metrics;
  EncoderPool pool;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::atomic<SvcState> state{SvcState::kLoading};
  std::mutex mu;  // load_status, state changes
  std::condition_variable state_cv;
  Status load_status;
  std::unique_ptr<StageEngine> engine;
  std::unique_ptr<Scheduler> scheduler;
  std::thread loader_thread;
  std::atomic<int> active_calls{0};
  std::mutex calls_mu;
  std::condition_variable calls_cv;
  std::once_flag drained;
};

/// What a finished request logs (outcome, message and total_ms are filled in at the end)
/// and when its clock started (the RPC, then admission).
struct CallSummary {
  RequestLog log;
  Clock::time_point start = Clock::now();
};

/// The call's side of a job: bounded slots for the events not yet written (the latest
/// queued and progress events win; the result and the final status are never dropped).
class CallSink final : public JobSink, public std::enable_shared_from_this<CallSink> {
 public:
  CallSink(ServiceImpl* svc, FillReactor* reactor) : svc_(svc), reactor_(reactor) {}

  CallSummary summary;
  image::Format format = image::Format::kPng;
  std::weak_ptr<SchedJob> job;

  void queued(int position, int64_t expected_wait_ms) override {
    v1::FillEvent ev;
    ev.set_request_id(summary.log.request_id);
    ev.mutable_queued()->set_position(static_cast<uint32_t>(std::max(0, position)));
    ev.mutable_queued()->set_expected_wait_ms(static_cast<uint64_t>(std::max<int64_t>(0, expected_wait_ms)));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (started_ || final_) return;  // a late position after the first step means nothing
      queued_ = std::move(ev);
    }
    pump();
  }

  void progress(int step, int steps, int64_t elapsed_ms, int64_t eta_ms,
                std::optional<image::Image> preview) override {
    v1::FillEvent ev;
    ev.set_request_id(summary.log.request_id);
    auto* p = ev.mutable_progress();
    p->set_step(static_cast<uint32_t>(step));
    p->set_steps(static_cast<uint32_t>(steps));
    p->set_elapsed_ms(static_cast<uint64_t>(std::max<int64_t>(0, elapsed_ms)));
    p->set_eta_ms(static_cast<uint64_t>(std::max<int64_t>(0, eta_ms)));
    if (preview) {
      try {
        auto bytes = image::encode(*preview, format);
        p->set_preview(std::string(bytes.begin(), bytes.end()));
      } catch (const std::exception& e) {
        log_event("warn", "preview encoding failed", {{"request_id", summary.log.request_id}, {"error", e.what()}});
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      started_ = true;
      queued_.reset();
      // Bounded: a reader that falls behind loses the oldest progress events (the latest
      // wins); one that keeps up gets every step.
      progress_bytes_ += ev.ByteSizeLong();
      progress_.push_back(std::move(ev));
      while (progress_.size() > kMaxPendingProgress || (progress_bytes_ > kMaxPendingBytes && progress_.size() > 1)) {
        progress_bytes_ -= progress_.front().ByteSizeLong();
        progress_.pop_front();
      }
    }
    pump();
  }

  void result(FillOutput out, double queue_ms) override {
    take_job_facts(queue_ms);
    auto self = shared_from_this();
    // Encoding (PNG of up to 4 large images) happens on the pool, not the scheduler thread.
    svc_->pool.post([self, out = std::move(out)]() mutable {
      v1::FillEvent ev;
      ev.set_request_id(self->summary.log.request_id);
      auto* r = ev.mutable_result();
      try {
        for (const auto& im : out.images) {
          auto bytes = image::encode(im, self->format);
          r->add_images(std::string(bytes.begin(), bytes.end()));
        }
      } catch (const std::exception& e) {
        self->terminal(grpc::Status(grpc::StatusCode::INTERNAL, std::string("encoding the result failed: ") + e.what()),
                       std::nullopt);
        return;
      }
      r->set_seed(out.seed);
      r->set_width(static_cast<uint32_t>(out.width));
      r->set_height(static_cast<uint32_t>(out.height));
      auto* t = r->mutable_timings();
      t->set_queue_ms(self->summary.log.queue_ms);
      t->set_text_ms(out.timings.text_ms);
      t->set_vae_encode_ms(out.timings.vae_encode_ms);
      t->set_denoise_ms(out.timings.denoise_ms);
      t->set_vae_decode_ms(out.timings.vae_decode_ms);
      self->terminal(grpc::Status::OK, std::move(ev));
    });
  }

  void failed(const Status& s) override {
    take_job_facts(-1);
    terminal(grpc::Status(to_grpc(s.code()), s.message()), std::nullopt);
  }

  /// Ends the call without a job (refused before admission).
  void refuse(const grpc::Status& s) { terminal(s, std::nullopt); }

  void on_write_done(bool ok) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) broken_ = true;  // the caller is gone; only the final status is left to give
    }
    pump();
  }

  void on_done() {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = nullptr;
  }

 private:
  void take_job_facts(double queue_ms) {
    if (auto j = job.lock()) {
      summary.log.rows = j->rows;
      summary.log.queue_ms = queue_ms >= 0 ? queue_ms : j->queue_ms;
    } else if (queue_ms >= 0) {
      summary.log.queue_ms = queue_ms;
    }
  }

  void terminal(grpc::Status s, std::optional<v1::FillEvent> result) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (final_) return;
      final_ = s;
      result_ = std::move(result);
    }
    record(s);
    pump();
  }

  void record(const grpc::Status& s) {
    RequestLog& l = summary.log;
    l.total_ms = ms_between(summary.start, Clock::now());
    l.outcome = code_name(s.error_code());
    l.message = s.ok() ? "" : s.error_message();
    if (svc_->metrics) {
      svc_->metrics->request_finished(l.task, l.outcome, l.total_ms / 1000.0);
      const char* reason = failure_reason(s.error_code());
      if (*reason) svc_->metrics->failure(reason);
    }
    log_request(l);
  }

  void pump();

  ServiceImpl* svc_;
  std::mutex mu_;
  FillReactor* reactor_;
  bool writing_ = false, finish_called_ = false, broken_ = false, started_ = false;
  static constexpr size_t kMaxPendingProgress = 32;
  static constexpr size_t kMaxPendingBytes = 4u << 20;
  std::optional<v1::FillEvent> queued_, result_;
  std::deque<v1::FillEvent> progress_;
  size_t progress_bytes_ = 0;
  std::optional<grpc::Status> final_;
  v1::FillEvent inflight_;
};

class FillReactor final : public grpc::ServerWriteReactor<v1::FillEvent> {
 public:
  FillReactor(ServiceImpl* svc, grpc::CallbackServerContext* ctx) : svc_(svc), ctx_(ctx) {
    sink_ = std::make_shared<CallSink>(svc, this);
    ++svc_->active_calls;
  }

  void start(const v1::FillRequest& req) {
    RequestLog& sum = sink_->summary.log;
    sum.task = task_label(req.task());
    // Every call gets an id for its log line, refused ones too (a bad given id is cut short).
    sum.request_id = req.request_id().empty() ? new_request_id() : req.request_id().substr(0, 128);
    sum.steps = req.steps() == 0 ? 50 : static_cast<int>(std::min<uint32_t>(req.steps(), 1u << 30));
    sum.width = static_cast<int>(req.width());
    sum.height = static_cast<int>(req.height());
    sum.variant = req.variant();
    if (!svc_->serving()) {
      const bool loading = svc_->state.load() == SvcState::kLoading;
      sink_->refuse(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 loading ? "the model is loading; retry later" : "the server is shutting down"));
      return;
    }
    auto v = validate_request(req, svc_->opt.limits, svc_->engine->info(), svc_->opt.previews,
                              svc_->opt.min_preview_every);
    if (!v.ok()) {
      sink_->refuse(grpc::Status(to_grpc(v.status().code()), v.status().message()));
      return;
    }
    ValidatedRequest& vr = v.value();
    if (vr.request_id.empty()) vr.request_id = sum.request_id;
    id_ = vr.request_id;
    sum.request_id = id_;
    const auto& r = vr.request;
    sum.steps = r.steps;
    sum.width = vr.width;
    sum.height = vr.height;
    sum.variant = r.variant.empty() ? svc_->engine->info().default_variant : r.variant;
    for (const auto& a : r.adapters) {
      std::ostringstream o;
      o << a.name << ":" << a.weight;
      sum.adapters.push_back(o.str());
    }
    sum.prompt = req.prompt();
    sum.negative_prompt = req.has_negative_prompt() ? req.negative_prompt() : kDefaultNegativePrompt;
    sink_->format = vr.format;

    auto job = std::make_shared<SchedJob>();
    job->id = id_;
    job->request = std::move(vr.request);
    job->priority = vr.priority;
    job->preview_every = vr.preview_every;
    job->sink = sink_;
    const auto deadline = ctx_->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      job->deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(deadline - std::chrono::system_clock::now());
      deadline_ = job->deadline;
    }
    sink_->job = job;
    switch (svc_->scheduler->submit(job)) {
      case Scheduler::Admit::kOk:
        sink_->summary.start = job->admitted;
        break;
      case Scheduler::Admit::kQueueFull:
        sink_->refuse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                   "queue is full: " + std::to_string(svc_->opt.scheduler.queue_capacity) +
                                       " jobs are waiting (queue_capacity); retry later"));
        break;
      case Scheduler::Admit::kDuplicateId:
        sink_->refuse(grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                                   "request_id: '" + id_ + "' is already queued or running"));
        break;
      case Scheduler::Admit::kDraining:
        sink_->refuse(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
        break;
    }
  }

  void OnWriteDone(bool ok) override { sink_->on_write_done(ok); }

  void OnCancel() override {
    if (id_.empty() || !svc_->scheduler) return;
    // gRPC ends a call whose deadline passed by cancelling it; the two clocks differ by a
    // little, so a cancellation within 100 ms of the deadline counts as the deadline.
    const bool expired = deadline_ && Clock::now() + std::chrono::milliseconds(100) >= *deadline_;
    svc_->scheduler->cancel(id_, expired ? StatusCode::kDeadlineExceeded : StatusCode::kCancelled,
                            expired ? "deadline exceeded" : "cancelled by the caller");
  }

  void OnDone() override {
    sink_->on_done();
    ServiceImpl* svc = svc_;
    delete this;
    {
      std::lock_guard<std::mutex> lock(svc->calls_mu);
      --svc->active_calls;
    }
    svc->calls_cv.notify_all();
  }

 private:
  ServiceImpl* svc_;
  grpc::CallbackServerContext* ctx_;
  std::shared_ptr<CallSink> sink_;
  std::string id_;
  std::optional<Clock::time_point> deadline_;
};

void CallSink::pump() {
  enum { kNone, kWrite, kFinish } action = kNone;
  FillReactor* r = nullptr;
  grpc::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!reactor_ || writing_ || finish_called_) return;
    if (!broken_) {
      if (queued_) {
        inflight_ = std::move(*queued_);
        queued_.reset();
      } else if (!progress_.empty()) {
        progress_bytes_ -= progress_.front().ByteSizeLong();
        inflight_ = std::move(progress_.front());
        progress_.pop_front();
      } else if (result_) {
        inflight_ = std::move(*result_);
        result_.reset();
      } else {
        inflight_.Clear();
      }
      if (inflight_.event_case() != v1::FillEvent::EVENT_NOT_SET) {
        writing_ = true;
        action = kWrite;
      }
    }
    if (action == kNone && final_) {
      finish_called_ = true;
      status = *final_;
      action = kFinish;
    }
    r = reactor_;
  }
  if (action == kWrite) r->StartWrite(&inflight_);
  if (action == kFinish) r->Finish(status);
}

grpc::ServerWriteReactor<v1::FillEvent>* ServiceImpl::Fill(grpc::CallbackServerContext* ctx,
                                                           const v1::FillRequest* req) {
  auto* reactor = new FillReactor(this, ctx);
  reactor->start(*req);
  return reactor;
}

grpc::ServerUnaryReactor* ServiceImpl::Cancel(grpc::CallbackServerContext* ctx, const v1::CancelRequest* req,
                                              v1::CancelResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!serving() && state.load() != SvcState::kDraining) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is loading; nothing to cancel"));
  } else if (req->request_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request_id: required"));
  } else if (!scheduler) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  } else if (auto st = scheduler->cancel(req->request_id(), StatusCode::kCancelled, "cancelled by a Cancel call")) {
    resp->set_state(*st);
    log_event("info", "cancel requested", {{"request_id", req->request_id()}, {"state", *st}});
    reactor->Finish(grpc::Status::OK);
  } else {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "request_id: '" + req->request_id() + "' is not queued or running"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* ServiceImpl::GetInfo(grpc::CallbackServerContext* ctx, const v1::GetInfoRequest*,
                                               v1::GetInfoResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!serving()) {
    const bool loading = state.load() == SvcState::kLoading;
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 loading ? "the model is loading; retry later" : "the server is shutting down"));
    return reactor;
  }
  const EngineInfo& info = engine->info();
  resp->set_model(info.model_dir);
  for (const auto& v : info.variants) resp->add_variants(v);
  for (const auto& a : info.adapters) resp->add_adapters(a);
  resp->set_device(info.device);
  resp->set_dtype(info.dtype);
  resp->set_version(ONEREWARD_VERSION);
  resp->set_torch_version(info.torch_version);
  auto* d = resp->mutable_defaults();
  d->set_steps(50);
  d->set_true_cfg(4.0f);
  d->set_guidance_scale(1.0f);
  d->set_strength(1.0f);
  d->set_negative_prompt(kDefaultNegativePrompt);
  d->set_variant(info.default_variant);
  auto* l = resp->mutable_limits();
  const Limits& lim = opt.limits;
  l->set_max_pixels(static_cast<uint64_t>(lim.max_pixels));
  l->set_min_side(static_cast<uint32_t>(lim.min_side));
  l->set_max_steps(static_cast<uint32_t>(lim.max_steps));
  l->set_max_images(static_cast<uint32_t>(lim.max_images));
  l->set_max_prompt_bytes(static_cast<uint32_t>(lim.max_prompt_bytes));
  l->set_queue_capacity(static_cast<uint32_t>(opt.scheduler.queue_capacity));
  l->set_max_batch_rows(static_cast<uint32_t>(opt.scheduler.max_batch_rows));
  l->set_max_message_bytes(static_cast<uint64_t>(lim.max_message_bytes));
  l->set_min_true_cfg(lim.min_true_cfg);
  l->set_max_true_cfg(lim.max_true_cfg);
  l->set_min_guidance_scale(lim.min_guidance_scale);
  l->set_max_guidance_scale(lim.max_guidance_scale);
  l->set_max_adapter_weight(lim.max_adapter_weight);
  l->set_multiple(static_cast<uint32_t>(info.multiple));
  resp->add_tasks(v1::TASK_FILL);
  resp->add_tasks(v1::TASK_EXTEND);
  resp->add_tasks(v1::TASK_REMOVE);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

void ServiceImpl::load() {
  const auto t0 = Clock::now();
  log_event("info", "loading the model", {{"model", opt.engine.model_dir}, {"device", opt.engine.device},
                                          {"dtype", opt.engine.dtype}});
  auto fail = [&](const Status& s) {
    {
      std::lock_guard<std::mutex> lock(mu);
      load_status = s;
      state = SvcState::kFailed;
    }
    log_event("error", "loading failed", {{"error", s.to_string()}});
    state_cv.notify_all();
  };
  auto e = loader();
  if (!e.ok()) return fail(e.status());
  engine = std::move(e.value());
  const EngineInfo& info = engine->info();
  for (const auto& line : info.load_log) log_event("info", line);
  log_event("info", "model loaded",
            {{"model", info.model_dir}, {"variants", [&] { std::string s; for (auto& v : info.variants) s += (s.empty() ? "" : ",") + v; return s; }()},
             {"default_variant", info.default_variant},
             {"adapters", [&] { std::string s; for (auto& v : info.adapters) s += (s.empty() ? "" : ",") + v; return s; }()},
             {"device", info.device}, {"dtype", info.dtype}, {"torch", info.torch_version},
             {"seconds", std::to_string(info.load_seconds)}});
  if (opt.warmup) {
    // One small job through every stage, so the first request does not pay for lazy
    // initialisation (allocator pools, kernels, thread pools).
    const auto w0 = Clock::now();
    FillRequest r;
    const int side = static_cast<int>(std::max<int64_t>(64, info.multiple * 4));
    r.task = Task::kFill;
    r.image = image::Image(side, side, 128);
    image::Image mask(side, side, 0);
    for (int y = side / 4; y < 3 * side / 4; ++y)
      for (int x = side / 4; x < 3 * side / 4; ++x) std::fill(mask.at(x, y), mask.at(x, y) + 3, 255);
    r.mask = std::move(mask);
    r.prompts = {"warm-up"};
    r.steps = 2;
    r.seed = 0;
    Status s = [&]() -> Status {
      auto h = engine->prepare(r);
      if (!h.ok()) return h.status();
      while (!engine->state(*h.value()).done()) {
        Status st = engine->step({h.value().get()});
        if (!st.ok()) return st;
      }
      auto out = engine->finish(*h.value());
      return out.ok() ? Status::Ok() : out.status();
    }();
    if (!s.ok()) return fail(Status(s.code(), "warm-up job failed: " + s.message()));
    log_event("info", "warm-up job done", {{"size", std::to_string(side) + "x" + std::to_string(side)},
                                           {"ms", std::to_string(ms_between(w0, Clock::now()))}});
  }
  scheduler = std::make_unique<Scheduler>(*engine, opt.scheduler, metrics);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (state.load() == SvcState::kLoading) {
      state = SvcState::kServing;
      set_health(true);
    }
  }
  if (metrics) {
    metrics->set_build_info(ONEREWARD_VERSION, info.torch_version, info.device, info.dtype);
    metrics->set_model_ready(serving());
  }
  log_event("info", "serving", {{"port", std::to_string(port)},
                                {"startup_seconds", std::to_string(ms_between(t0, Clock::now()) / 1000.0)},
                                {"max_batch_rows", std::to_string(opt.scheduler.max_batch_rows)},
                                {"queue_capacity", std::to_string(opt.scheduler.queue_capacity)}});
  state_cv.notify_all();
}

Service::Service(std::unique_ptr<ServiceImpl> impl) : impl_(std::move(impl)) {}

Service::~Service() {
  drain(0);
}

Service::Loader Service::engine_loader(const EngineOptions& options) {
  return [options]() -> Result<std::unique_ptr<StageEngine>> {
    auto e = Engine::load(options);
    if (!e.ok()) return e.status();
    return make_stage_engine(std::move(e.value()));
  };
}

Result<std::unique_ptr<Service>> Service::start(const ServerOptions& options, Loader loader, Metrics* metrics) {
  auto impl = std::make_unique<ServiceImpl>(options, std::move(loader), metrics);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &impl->port);
  const int limit = static_cast<int>(std::min<int64_t>(options.limits.max_message_bytes, INT32_MAX));
  builder.SetMaxReceiveMessageSize(limit);
  builder.SetMaxSendMessageSize(limit);
  builder.RegisterService(impl.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0)
    return Status(StatusCode::kUnavailable, "cannot listen on '" + options.listen + "' (address in use or invalid)");
  impl->set_health(false);
  if (metrics) metrics->set_model_ready(false);
  log_event("info", "listening", {{"address", options.listen}, {"port", std::to_string(impl->port)}});
  ServiceImpl* raw = impl.get();
  impl->loader_thread = std::thread([raw] { raw->load(); });
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

int Service::port() const { return impl_->port; }
Service::State Service::state() const { return impl_->state.load(); }
Status Service::load_status() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->load_status;
}
Scheduler* Service::scheduler() { return serving() ? impl_->scheduler.get() : nullptr; }

bool Service::serving() const { return impl_->serving(); }

bool Service::wait_until_serving(double timeout_s) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->state_cv.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] {
    auto s = impl_->state.load();
    return s != State::kLoading;
  });
  return impl_->state.load() == State::kServing;
}

int Service::drain(double grace_s) {
  int cancelled = 0;
  std::call_once(impl_->drained, [&] {
    ServiceImpl& s = *impl_;
    const auto t0 = Clock::now();
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.state.load() != State::kFailed) s.state = State::kDraining;
    }
    s.set_health(false);
    if (s.metrics) s.metrics->set_model_ready(false);
    if (s.loader_thread.joinable()) s.loader_thread.join();
    if (s.scheduler) {
      s.scheduler->begin_drain();
      const size_t in_flight = s.scheduler->queued() + s.scheduler->running();
      log_event("info", "draining", {{"jobs", std::to_string(in_flight)}, {"grace_seconds", std::to_string(grace_s)}});
      if (!s.scheduler->wait_idle(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_s)))) {
        cancelled = static_cast<int>(s.scheduler->queued() + s.scheduler->running());
        log_event("warn", "drain grace ran out; cancelling the remaining jobs", {{"jobs", std::to_string(cancelled)}});
        s.scheduler->cancel_all(StatusCode::kUnavailable, "the server is shutting down (the drain grace ran out)");
        s.scheduler->wait_idle(Clock::now() + std::chrono::seconds(60));
      }
    }
    // Let every call write its last events (result encodes run on the pool) before the
    // server stops: calls end by themselves once their final status is sent.
    {
      std::unique_lock<std::mutex> lock(s.calls_mu);
      s.calls_cv.wait_for(lock, std::chrono::seconds(30), [&] { return s.active_calls.load() == 0; });
    }
    if (s.server) {
      s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      s.server->Wait();
    }
    if (s.scheduler) s.scheduler->stop();
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.state.load() != State::kFailed) s.state = State::kStopped;
    }
    s.state_cv.notify_all();
    log_event("info", "stopped", {{"drain_ms", std::to_string(ms_between(t0, Clock::now()))},
                                  {"cancelled", std::to_string(cancelled)}});
  });
  return cancelled;
}

void Service::wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->state_cv.wait(lock, [&] {
    auto s = impl_->state.load();
    return s == State::kStopped;
  });
}

}  // namespace onereward::server
