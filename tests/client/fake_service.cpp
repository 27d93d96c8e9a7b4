#include "tests/client/fake_service.h"

#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace onereward::testing {

std::vector<v1::FillRequest> FakeImageFill::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

bool FakeImageFill::wait_blocked(int n, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return blocked_ >= n; });
}

grpc::Status FakeImageFill::Fill(grpc::ServerContext* ctx, const v1::FillRequest* req,
                                 grpc::ServerWriter<v1::FillEvent>* writer) {
  const int index = fill_calls_.fetch_add(1);
  const std::string id =
      req->request_id().empty() ? "fake-" + std::to_string(index) : req->request_id();
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(*req);
    if (running_.count(id))
      return {grpc::StatusCode::ALREADY_EXISTS, "request_id " + id + " is running"};
  }
  if (fail) {
    grpc::Status st = fail(*req, index);
    if (!st.ok()) return st;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[id] = false;
  }
  const int active = active_.fetch_add(1) + 1;
  for (int m = max_active_.load(); active > m && !max_active_.compare_exchange_weak(m, active);) {
  }
  struct Leave {
    FakeImageFill* self;
    std::string id;
    ~Leave() {
      self->active_.fetch_sub(1);
      std::lock_guard<std::mutex> lock(self->mu_);
      self->running_.erase(id);
    }
  } leave{this, id};

  const auto start = std::chrono::steady_clock::now();
  const auto elapsed_ms = [&] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count());
  };
  v1::FillEvent ev;
  ev.set_request_id(id);
  for (int q = 0; q < queued_events; ++q) {
    ev.mutable_queued()->set_position(static_cast<uint32_t>(queued_events - 1 - q));
    ev.mutable_queued()->set_expected_wait_ms(100u * static_cast<uint64_t>(queued_events - q));
    writer->Write(ev);
  }

  if (block && block(*req, index)) {
    std::unique_lock<std::mutex> lock(mu_);
    ++blocked_;
    cv_.notify_all();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!ctx->IsCancelled() && !running_[id] && std::chrono::steady_clock::now() < give_up)
      cv_.wait_for(lock, std::chrono::milliseconds(10));
    --blocked_;
    if (running_[id]) return {grpc::StatusCode::CANCELLED, "cancelled by Cancel"};
    if (ctx->IsCancelled()) {
      client_cancels_.fetch_add(1);
      return {grpc::StatusCode::CANCELLED, "cancelled by the caller"};
    }
    return {grpc::StatusCode::INTERNAL, "fake: blocked call never cancelled"};
  }

  const uint32_t steps = req->steps() ? req->steps() : static_cast<uint32_t>(default_steps);
  for (uint32_t s = 1; s <= steps; ++s) {
    if (step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms));
    if (ctx->IsCancelled()) {
      client_cancels_.fetch_add(1);
      return {grpc::StatusCode::CANCELLED, "cancelled by the caller"};
    }
    v1::Progress* p = ev.mutable_progress();
    p->Clear();
    p->set_step(s);
    p->set_steps(steps);
    p->set_elapsed_ms(elapsed_ms());
    p->set_eta_ms(static_cast<uint64_t>(steps - s) * 10);
    if (req->preview_every() && s % req->preview_every() == 0) p->set_preview(preview_bytes(s));
    writer->Write(ev);
  }

  v1::Result* r = ev.mutable_result();
  const uint32_t n = req->num_images() ? req->num_images() : 1;
  for (uint32_t i = 0; i < n; ++i) r->add_images(image_bytes(static_cast<int>(i)));
  r->set_seed(req->has_seed() ? req->seed() : 987654321u);
  r->set_width(req->width() ? req->width() : 64);
  r->set_height(req->height() ? req->height() : 48);
  r->mutable_timings()->set_queue_ms(1.5);
  r->mutable_timings()->set_text_ms(2.5);
  r->mutable_timings()->set_vae_encode_ms(3.5);
  r->mutable_timings()->set_denoise_ms(4.5);
  r->mutable_timings()->set_vae_decode_ms(5.5);
  writer->Write(ev);
  return grpc::Status::OK;
}

grpc::Status FakeImageFill::Cancel(grpc::ServerContext*, const v1::CancelRequest* req,
                                   v1::CancelResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(req->request_id());
  if (it == running_.end())
    return {grpc::StatusCode::NOT_FOUND, "no job with request_id '" + req->request_id() + "'"};
  it->second = true;
  cv_.notify_all();
  resp->set_state("running");
  return grpc::Status::OK;
}

grpc::Status FakeImageFill::GetInfo(grpc::ServerContext*, const v1::GetInfoRequest*,
                                    v1::GetInfoResponse* resp) {
  resp->set_model("/models/fake-fill");
  resp->add_variants("base");
  resp->add_variants("onereward");
  resp->add_adapters("removal");
  resp->set_device("cpu");
  resp->set_dtype("fp32");
  resp->set_version("9.8.7");
  resp->set_torch_version("2.1.0");
  resp->add_tasks(v1::TASK_FILL);
  resp->add_tasks(v1::TASK_EXTEND);
  resp->add_tasks(v1::TASK_REMOVE);
  v1::Defaults* d = resp->mutable_defaults();
  d->set_steps(50);
  d->set_true_cfg(4.0f);
  d->set_guidance_scale(1.0f);
  d->set_strength(1.0f);
  d->set_negative_prompt("nsfw");
  d->set_variant("onereward");
  v1::Limits* l = resp->mutable_limits();
  l->set_max_pixels(1048576);
  l->set_min_side(16);
  l->set_max_steps(100);
  l->set_max_images(4);
  l->set_queue_capacity(32);
  l->set_multiple(16);
  return grpc::Status::OK;
}

FakeServer::FakeServer() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("fake server did not start");
}

FakeServer::~FakeServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace onereward::testing
