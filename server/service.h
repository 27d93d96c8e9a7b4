// The gRPC server: onereward.v1.ImageFill (callback API), grpc.health.v1.Health and server
// reflection, in front of one engine driven by one scheduler thread.
//
// Start-up: the gRPC port opens first (health answers NOT_SERVING, Fill and GetInfo answer
// UNAVAILABLE), the engine loads on a background thread and runs a warm-up job, then health
// turns SERVING. drain(): health NOT_SERVING, new calls UNAVAILABLE, accepted jobs get the
// grace period to finish, the rest end with UNAVAILABLE, then the server shuts down.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "server/options.h"
#include "server/stage_engine.h"

namespace onereward::server {

class Metrics;
class Scheduler;
class ServiceImpl;

class Service {
 public:
  using Loader = std::function<Result<std::unique_ptr<StageEngine>>()>;
  enum class State { kLoading, kServing, kDraining, kStopped, kFailed };

  /// Binds the gRPC port and starts loading in the background. `metrics` may be null and
  /// must outlive the service.
  static Result<std::unique_ptr<Service>> start(const ServerOptions& options, Loader loader, Metrics* metrics);
  /// The loader that opens the real engine from options.engine.
  static Loader engine_loader(const EngineOptions& options);
  ~Service();

  int port() const;
  State state() const;
  bool serving() const;
  /// The loader's error once state() is kFailed.
  Status load_status() const;
  /// Waits until SERVING; false when loading failed or the timeout passed.
  bool wait_until_serving(double timeout_s);
  /// Graceful stop (see above). Returns how many jobs were cancelled because the grace ran out.
  int drain(double grace_s);
  /// Blocks until drain() has finished.
  void wait();

  Scheduler* scheduler();

 private:
  explicit Service(std::unique_ptr<ServiceImpl> impl);
  std::unique_ptr<ServiceImpl> impl_;
};

}  // namespace onereward::server
