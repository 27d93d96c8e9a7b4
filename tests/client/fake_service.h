// A fake onereward.v1.ImageFill service for client tests: an in-process gRPC server on
// 127.0.0.1:0 whose Fill emits queued/progress/result events on demand, fails or blocks
// the requests a test chooses, records what arrived, and serves the standard health
// service (grpc::EnableDefaultHealthCheckService).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "onereward/v1/image_fill.grpc.pb.h"

namespace onereward::testing {

namespace v1 = ::onereward::v1;

class FakeImageFill final : public v1::ImageFill::Service {
 public:
  // ---- behaviour (set before the client runs) ----
  int queued_events = 0;  ///< queued events (positions n-1 .. 0) before the first step
  int default_steps = 3;  ///< steps when the request leaves steps at 0
  int step_delay_ms = 0;  ///< sleep before each progress event
  /// Non-OK: the call ends with it before any event. `index` counts Fill calls from 0.
  std::function<grpc::Status(const v1::FillRequest&, int index)> fail;
  /// True: after the queued events the call waits until cancelled (Cancel or the caller).
  std::function<bool(const v1::FillRequest&, int index)> block;

  // ---- observations ----
  std::vector<v1::FillRequest> requests() const;
  int fill_calls() const { return fill_calls_.load(); }
  int max_concurrent() const { return max_active_.load(); }
  /// Calls that ended because the client cancelled them.
  int client_cancels() const { return client_cancels_.load(); }
  /// Waits until `n` Fill calls are blocked (or `timeout_ms` passes).
  bool wait_blocked(int n, int timeout_ms);

  /// Bytes of result image `i` and of the preview at `step`.
  static std::string image_bytes(int i) { return "IMAGE-" + std::to_string(i); }
  static std::string preview_bytes(uint32_t step) { return "PREVIEW-" + std::to_string(step); }

  grpc::Status Fill(grpc::ServerContext* ctx, const v1::FillRequest* req,
                    grpc::ServerWriter<v1::FillEvent>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* ctx, const v1::CancelRequest* req,
                      v1::CancelResponse* resp) override;
  grpc::Status GetInfo(grpc::ServerContext* ctx, const v1::GetInfoRequest* req,
                       v1::GetInfoResponse* resp) override;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::FillRequest> requests_;
  std::map<std::string, bool> running_;  // request id -> cancelled by the Cancel RPC
  int blocked_ = 0;
  std::atomic<int> fill_calls_{0};
  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  std::atomic<int> client_cancels_{0};
};

/// The fake behind a real server bound to an ephemeral port.
class FakeServer {
 public:
  FakeServer();
  ~FakeServer();
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  FakeImageFill& service() { return service_; }
  grpc::Server& server() { return *server_; }

 private:
  FakeImageFill service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace onereward::testing
