// onereward-server: see `onereward-server --help` and docs/server.md.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

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

// SIGTERM/SIGINT: the handler only writes the signal number to a pipe; a thread reads it.
// (Blocking the signals and calling sigwait is not enough: libraries start threads before
// main() runs, and a signal delivered to one of them would take the default action.)
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  (void)!::write(g_signal_pipe[1], &b, 1);
}

int next_signal() {
  unsigned char b = 0;
  for (;;) {
    const ssize_t n = ::read(g_signal_pipe[0], &b, 1);
    if (n == 1) return b;
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

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

  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    std::cerr << "onereward-server: cannot create the signal pipe\n";
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

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
    const int sig = next_signal();
    log_event("info", "signal received; draining",
              {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}, {"grace_seconds", std::to_string(opt.drain_grace_s)}});
    std::thread second([&] {
      next_signal();
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
