// onereward-server: see `onereward-server --help` and docs/server.md.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "server/logging.h"
#include "server/metrics.h"
#include "server/options.h"
#include "server/service.h"

using namespace onereward;
using namespace onereward::server;

namespace {

bool write_port_file(const std::string& path, int grpc_port, int metrics_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) return false;
    f << "{\"grpc_port\": " << grpc_port << ", \"metrics_port\": " << metrics_port << "}\n";
    if (!f) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  ServerOptions opt;
  if (int rc = parse_options(argc, argv, opt); rc >= 0) return rc;
  try {
    setup_logging(opt.log_level, opt.log_format);
  } catch (const std::exception& e) {
    std::cerr << "onereward-server: " << e.what() << "\n";
    return 2;
  }

  // SIGTERM/SIGINT are taken by one thread (sigwait), so block them everywhere first:
  // every thread started from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<Metrics> metrics;
  try {
    metrics = std::make_unique<Metrics>(opt.metrics_listen);
  } catch (const std::exception& e) {
    log_event("error", "cannot start the metrics endpoint", {{"address", opt.metrics_listen}, {"error", e.what()}});
    return 1;
  }
  if (!opt.metrics_listen.empty())
    log_event("info", "metrics endpoint", {{"address", opt.metrics_listen}, {"port", std::to_string(metrics->port())}});

  auto started = Service::start(opt, Service::engine_loader(opt.engine), metrics.get());
  if (!started.ok()) {
    log_event("error", "cannot start", {{"error", started.status().to_string()}});
    return 1;
  }
  std::unique_ptr<Service> service = std::move(started.value());

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log_event("info", "signal received; draining",
              {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}, {"grace_seconds", std::to_string(opt.drain_grace_s)}});
    std::thread second([&] {
      int again = 0;
      sigwait(&signals, &again);
      log_event("warn", "second signal; exiting without finishing the drain");
      std::fflush(nullptr);
      std::_Exit(130);
    });
    second.detach();
    service->drain(opt.drain_grace_s);
  });
  signal_thread.detach();

  while (!service->wait_until_serving(3600)) {
    if (service->state() == Service::State::kFailed) {
      log_event("error", "exiting: the model could not be loaded", {{"error", service->load_status().to_string()}});
      return 1;
    }
    if (service->state() != Service::State::kLoading) break;  // draining before it ever served
  }
  if (service->serving() && !opt.port_file.empty()) {
    if (!write_port_file(opt.port_file, service->port(), metrics->port()))
      log_event("warn", "cannot write the port file", {{"path", opt.port_file}});
  }
  service->wait();
  log_event("info", "exit");
  return 0;
}
