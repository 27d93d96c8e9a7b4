// An in-process server on 127.0.0.1:0 and a small synchronous client for tests.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/image/codec.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "onereward/v1/image_fill.grpc.pb.h"
#include "server/service.h"

namespace onereward::server::testing {

struct FillCall {
  grpc::Status status;
  std::vector<v1::FillEvent> events;
  std::vector<int> progress_steps() const {
    std::vector<int> s;
    for (const auto& e : events)
      if (e.has_progress()) s.push_back(static_cast<int>(e.progress().step()));
    return s;
  }
  std::vector<int> queue_positions() const {
    std::vector<int> s;
    for (const auto& e : events)
      if (e.has_queued()) s.push_back(static_cast<int>(e.queued().position()));
    return s;
  }
  const v1::Result* result() const {
    for (const auto& e : events)
      if (e.has_result()) return &e.result();
    return nullptr;
  }
};

class Client {
 public:
  /// `small_windows`: no BDP probing, so a slow reader's flow-control window stays small
  /// and back-pressure reaches the server quickly.
  explicit Client(int port, bool small_windows = false) {
    grpc::ChannelArguments args;
    if (small_windows) {
      args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
      args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 10);
    }
    args.SetMaxReceiveMessageSize(256 << 20);
    // A distinct channel per client: separate connections (Cancel "across connections").
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::ImageFill::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }

  FillCall fill(const v1::FillRequest& req, double deadline_s = 60, grpc::ClientContext* ctx_in = nullptr,
                int read_delay_ms = 0) {
    grpc::ClientContext local;
    grpc::ClientContext& ctx = ctx_in ? *ctx_in : local;
    if (deadline_s > 0)
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(deadline_s * 1000)));
    FillCall out;
    auto reader = stub_->Fill(&ctx, req);
    v1::FillEvent ev;
    while (reader->Read(&ev)) {
      out.events.push_back(ev);
      if (read_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(read_delay_ms));
    }
    out.status = reader->Finish();
    return out;
  }

  grpc::Status cancel(const std::string& id, std::string* state = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CancelRequest req;
    req.set_request_id(id);
    v1::CancelResponse resp;
    auto s = stub_->Cancel(&ctx, req, &resp);
    if (state) *state = resp.state();
    return s;
  }

  grpc::Status info(v1::GetInfoResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub_->GetInfo(&ctx, v1::GetInfoRequest(), resp);
  }

  /// grpc.health.v1 status name: SERVING, NOT_SERVING, ... or the RPC's error code name.
  std::string health(const std::string& service = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    auto s = health_->Check(&ctx, req, &resp);
    if (!s.ok()) return "error:" + std::to_string(s.error_code());
    return grpc::health::v1::HealthCheckResponse_ServingStatus_Name(resp.status());
  }

  v1::ImageFill::Stub& stub() { return *stub_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ImageFill::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

inline std::string png_bytes(const image::Image& im) {
  auto b = image::encode(im, image::Format::kPng);
  return std::string(b.begin(), b.end());
}

/// A mask with a white rectangle in the middle.
inline image::Image center_mask(int w, int h) {
  image::Image m(w, h, 0);
  for (int y = h / 4; y < 3 * h / 4; ++y)
    for (int x = w / 4; x < 3 * w / 4; ++x) std::fill(m.at(x, y), m.at(x, y) + 3, 255);
  return m;
}

inline image::Image gradient(int w, int h) {
  image::Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, h - 1));
      p[2] = static_cast<uint8_t>((x + y) % 256);
    }
  return im;
}

}  // namespace onereward::server::testing
