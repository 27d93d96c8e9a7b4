#include "client/commands.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"

namespace onereward::client {

namespace {

std::string format_seconds(uint64_t ms) {
  char buf[32];
  if (ms < 60 * 1000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else {
    const uint64_t s = ms / 1000;
    std::snprintf(buf, sizeof buf, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
  }
  return buf;
}

// Queue and step events on stderr: a bar redrawn in place on a terminal, one plain line
// per event otherwise (logs, pipes).
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool tty) : tty_(tty), start_(now_s()) {}

  void queued(const v1::Queued& q) {
    if (tty_) {
      const auto waited = static_cast<uint64_t>((now_s() - start_) * 1000.0);
      std::fprintf(stderr, "\rqueued: position %u  expected wait %s  waiting %s\033[K",
                   q.position(), format_seconds(q.expected_wait_ms()).c_str(),
                   format_seconds(waited).c_str());
      drawn_ = true;
    } else {
      std::fprintf(stderr, "queued position=%u expected_wait_ms=%" PRIu64 "\n", q.position(),
                   q.expected_wait_ms());
    }
    std::fflush(stderr);
  }

  void progress(const v1::Progress& p) {
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = p.steps() > 0 ? static_cast<int>(static_cast<uint64_t>(kWidth) *
                                                          std::min(p.step(), p.steps()) / p.steps())
                                       : 0;
      const std::string bar =
          std::string(static_cast<size_t>(filled), '#') + std::string(kWidth - filled, '.');
      std::fprintf(stderr, "\r[%s] step %u/%u  elapsed %s  eta %s\033[K", bar.c_str(), p.step(),
                   p.steps(), format_seconds(p.elapsed_ms()).c_str(),
                   format_seconds(p.eta_ms()).c_str());
      drawn_ = true;
    } else {
      std::fprintf(stderr, "step %u/%u elapsed_ms=%" PRIu64 " eta_ms=%" PRIu64 "\n", p.step(),
                   p.steps(), p.elapsed_ms(), p.eta_ms());
    }
    std::fflush(stderr);
  }

  // Ends the redrawn line so later output starts on a fresh one.
  void finish() {
    if (tty_ && drawn_) std::fputs("\n", stderr);
    drawn_ = false;
    std::fflush(stderr);
  }

 private:
  bool tty_;
  double start_;
  bool drawn_ = false;
};

void print_summary(const std::string& request_id, const v1::Result& r, double elapsed_s,
                   const std::vector<std::string>& files) {
  const v1::Timings& t = r.timings();
  std::printf("request_id: %s\n", request_id.c_str());
  std::printf("seed: %" PRIu64 "\n", r.seed());
  std::printf("size: %ux%u\n", r.width(), r.height());
  std::printf("images: %d\n", r.images_size());
  std::printf("timings_ms: queue=%.1f text=%.1f vae_encode=%.1f denoise=%.1f vae_decode=%.1f\n",
              t.queue_ms(), t.text_ms(), t.vae_encode_ms(), t.denoise_ms(), t.vae_decode_ms());
  std::printf("elapsed_ms: %.1f\n", elapsed_s * 1000.0);
  for (const auto& f : files) std::printf("wrote: %s\n", f.c_str());
  std::fflush(stdout);
}

}  // namespace

int run_fill(const ConnectionFlags& conn, v1::Task task, const FillFlags& flags) {
  if (flags.out.empty()) throw UsageError("--out is required");
  const v1::FillRequest request = build_fill_request(task, flags);
  const v1::OutputFormat format = request.output_format();
  if (!flags.previews_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(flags.previews_dir, ec);
    if (ec)
      throw UsageError("--previews-dir: cannot create '" + flags.previews_dir +
                       "': " + ec.message());
  }

  grpc::ClientContext ctx;
  // Ctrl-C cancels the call. Declared after ctx: its thread is joined before ctx goes.
  InterruptWatcher interrupts;
  interrupts.set_handler([&ctx] { ctx.TryCancel(); });
  auto stub = v1::ImageFill::NewStub(make_channel(conn));
  set_deadline(ctx, conn.timeout_s, std::nullopt);

  const double start = now_s();
  ProgressDisplay display(isatty(STDERR_FILENO) != 0);
  std::unique_ptr<grpc::ClientReader<v1::FillEvent>> reader = stub->Fill(&ctx, request);
  v1::FillEvent event;
  std::optional<v1::Result> result;
  std::string request_id = request.request_id();
  std::string write_error;
  while (reader->Read(&event)) {
    if (!event.request_id().empty()) request_id = event.request_id();
    switch (event.event_case()) {
      case v1::FillEvent::kQueued:
        display.queued(event.queued());
        break;
      case v1::FillEvent::kProgress: {
        const v1::Progress& p = event.progress();
        display.progress(p);
        if (p.has_preview() && !flags.previews_dir.empty() && write_error.empty()) {
          char name[64];
          std::snprintf(name, sizeof name, "step_%03u.%s", p.step(), format_extension(format));
          try {
            write_binary((std::filesystem::path(flags.previews_dir) / name).string(), p.preview());
          } catch (const std::exception& e) {
            write_error = e.what();
          }
        }
        break;
      }
      case v1::FillEvent::kResult:
        result = std::move(*event.mutable_result());
        break;
      default:
        break;
    }
  }
  const grpc::Status status = reader->Finish();
  display.finish();
  if (interrupts.interrupted()) {
    std::cerr << "error: CANCELLED: interrupted; the call was cancelled" << std::endl;
    return kExitInterrupted;
  }
  if (!status.ok()) {
    print_rpc_error(status);
    return kExitRpcError;
  }
  if (!write_error.empty()) {
    std::cerr << "error: " << write_error << std::endl;
    return kExitRpcError;
  }
  if (!result || result->images_size() == 0) {
    std::cerr << "error: INTERNAL: the call ended without a result image" << std::endl;
    return kExitRpcError;
  }

  std::vector<std::string> files;
  const int n = result->images_size();
  try {
    for (int i = 0; i < n; ++i) {
      files.push_back(numbered_path(flags.out, i, n));
      write_binary(files.back(), result->images(i));
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return kExitRpcError;
  }
  print_summary(request_id, *result, now_s() - start, files);
  return kExitOk;
}

int run_cancel(const ConnectionFlags& conn, const std::string& request_id) {
  auto stub = v1::ImageFill::NewStub(make_channel(conn));
  grpc::ClientContext ctx;
  set_deadline(ctx, conn.timeout_s, 10.0);
  v1::CancelRequest req;
  req.set_request_id(request_id);
  v1::CancelResponse resp;
  const grpc::Status status = stub->Cancel(&ctx, req, &resp);
  if (!status.ok()) {
    print_rpc_error(status);
    return kExitRpcError;
  }
  std::printf("cancelled %s (was %s)\n", request_id.c_str(),
              resp.state().empty() ? "unknown" : resp.state().c_str());
  return kExitOk;
}

namespace {

template <class List, class Fn>
std::string join(const List& list, Fn fn) {
  std::string s;
  for (const auto& x : list) {
    if (!s.empty()) s += ", ";
    s += fn(x);
  }
  return s.empty() ? "(none)" : s;
}

void print_info(const v1::GetInfoResponse& r) {
  const auto id = [](const std::string& s) { return s; };
  const v1::Defaults& d = r.defaults();
  const v1::Limits& l = r.limits();
  std::ostringstream o;
  o << "model:     " << r.model() << "\n"
    << "version:   " << r.version() << "\n"
    << "device:    " << r.device() << " (" << r.dtype() << ")\n"
    << "torch:     " << r.torch_version() << "\n"
    << "tasks:     "
    << join(r.tasks(), [](int t) { return std::string(task_name(static_cast<v1::Task>(t))); })
    << "\n"
    << "variants:  " << join(r.variants(), id) << "\n"
    << "adapters:  " << join(r.adapters(), id) << "\n"
    << "defaults:\n"
    << "  steps:            " << d.steps() << "\n"
    << "  true_cfg:         " << d.true_cfg() << "\n"
    << "  guidance_scale:   " << d.guidance_scale() << "\n"
    << "  strength:         " << d.strength() << "\n"
    << "  negative_prompt:  \"" << d.negative_prompt() << "\"\n"
    << "  variant:          " << d.variant() << "\n"
    << "limits:\n"
    << "  max_pixels:       " << l.max_pixels() << "\n"
    << "  min_side:         " << l.min_side() << "\n"
    << "  multiple:         " << l.multiple() << "\n"
    << "  max_steps:        " << l.max_steps() << "\n"
    << "  max_images:       " << l.max_images() << "\n"
    << "  max_prompt_bytes: " << l.max_prompt_bytes() << "\n"
    << "  queue_capacity:   " << l.queue_capacity() << "\n"
    << "  max_batch_rows:   " << l.max_batch_rows() << "\n"
    << "  max_message_bytes:"
    << " " << l.max_message_bytes() << "\n"
    << "  true_cfg:         [" << l.min_true_cfg() << ", " << l.max_true_cfg() << "]\n"
    << "  guidance_scale:   [" << l.min_guidance_scale() << ", " << l.max_guidance_scale() << "]\n"
    << "  max_adapter_weight: " << l.max_adapter_weight() << "\n";
  std::fputs(o.str().c_str(), stdout);
}

}  // namespace

int run_info(const ConnectionFlags& conn, bool json) {
  auto stub = v1::ImageFill::NewStub(make_channel(conn));
  grpc::ClientContext ctx;
  set_deadline(ctx, conn.timeout_s, 10.0);
  v1::GetInfoResponse resp;
  const grpc::Status status = stub->GetInfo(&ctx, v1::GetInfoRequest(), &resp);
  if (!status.ok()) {
    print_rpc_error(status);
    return kExitRpcError;
  }
  if (json) {
    google::protobuf::util::JsonPrintOptions opts;
    opts.add_whitespace = true;
    opts.always_print_primitive_fields = true;
    opts.preserve_proto_field_names = true;
    std::string out;
    const auto st = google::protobuf::util::MessageToJsonString(resp, &out, opts);
    if (!st.ok()) {
      std::cerr << "error: INTERNAL: cannot print the reply as JSON: " << st.ToString()
                << std::endl;
      return kExitRpcError;
    }
    std::fputs(out.c_str(), stdout);
    if (out.empty() || out.back() != '\n') std::fputs("\n", stdout);
  } else {
    print_info(resp);
  }
  return kExitOk;
}

int run_health(const ConnectionFlags& conn, const std::string& service) {
  namespace health = ::grpc::health::v1;
  auto stub = health::Health::NewStub(make_channel(conn));
  grpc::ClientContext ctx;
  set_deadline(ctx, conn.timeout_s, 10.0);
  health::HealthCheckRequest req;
  req.set_service(service);
  health::HealthCheckResponse resp;
  const grpc::Status status = stub->Check(&ctx, req, &resp);
  if (!status.ok()) {
    print_rpc_error(status);
    return kExitRpcError;
  }
  const std::string name = health::HealthCheckResponse::ServingStatus_Name(resp.status());
  std::printf("%s\n", name.empty() ? "UNKNOWN" : name.c_str());
  return resp.status() == health::HealthCheckResponse::SERVING ? kExitOk : kExitRpcError;
}

}  // namespace onereward::client
