#include "client/client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "engine/image/codec.h"

namespace onereward::client {

std::shared_ptr<grpc::Channel> make_channel(const ConnectionFlags& flags) {
  grpc::ChannelArguments args;
  const int64_t limit = static_cast<int64_t>(flags.max_message_mib) * 1024 * 1024;
  args.SetMaxReceiveMessageSize(
      limit > INT32_MAX || flags.max_message_mib <= 0 ? -1 : static_cast<int>(limit));
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(flags.target, grpc::InsecureChannelCredentials(), args);
}

void set_deadline(grpc::ClientContext& ctx, const std::optional<double>& timeout_s,
                  std::optional<double> default_s) {
  const std::optional<double> t = timeout_s ? timeout_s : default_s;
  if (!t || *t <= 0) return;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::microseconds(static_cast<int64_t>(*t * 1e6)));
}

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

void print_rpc_error(const grpc::Status& status) {
  std::cerr << "error: " << code_name(status.error_code()) << ": " << status.error_message()
            << std::endl;
}

namespace {

// Strict unsigned integer: digits only, fits in uint32.
bool parse_u32(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

v1::Margins parse_margins(const std::string& text) {
  std::vector<uint32_t> v;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    uint32_t x = 0;
    if (!parse_u32(trim(part), &x))
      throw UsageError("--extend: '" + text + "' is not L,T,R,B (four non-negative integers)");
    v.push_back(x);
  }
  if (v.size() != 4 || (!text.empty() && text.back() == ','))
    throw UsageError("--extend: '" + text + "' is not L,T,R,B (four non-negative integers)");
  v1::Margins m;
  m.set_left(v[0]);
  m.set_top(v[1]);
  m.set_right(v[2]);
  m.set_bottom(v[3]);
  return m;
}

v1::Adapter parse_adapter(const std::string& text) {
  v1::Adapter a;
  const size_t colon = text.rfind(':');
  std::string name = text;
  float weight = 1.0f;
  if (colon != std::string::npos) {
    name = text.substr(0, colon);
    const std::string w = text.substr(colon + 1);
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(w.c_str(), &end);
    if (w.empty() || end != w.c_str() + w.size() || errno != 0 || !std::isfinite(d))
      throw UsageError("--adapter: '" + text + "' is not NAME[:WEIGHT]");
    weight = static_cast<float>(d);
  }
  if (name.empty()) throw UsageError("--adapter: '" + text + "' has no name");
  a.set_name(name);
  a.set_weight(weight);
  return a;
}

v1::OutputFormat parse_format(const std::string& text) {
  if (text == "png") return v1::OUTPUT_FORMAT_PNG;
  if (text == "jpeg" || text == "jpg") return v1::OUTPUT_FORMAT_JPEG;
  if (text == "webp") return v1::OUTPUT_FORMAT_WEBP;
  throw UsageError("--format: '" + text + "' is not png, jpeg or webp");
}

v1::OutputFormat format_from_path(const std::string& path) {
  const size_t dot = path.rfind('.');
  const size_t slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
    return v1::OUTPUT_FORMAT_PNG;
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "jpg" || ext == "jpeg") return v1::OUTPUT_FORMAT_JPEG;
  if (ext == "webp") return v1::OUTPUT_FORMAT_WEBP;
  return v1::OUTPUT_FORMAT_PNG;
}

const char* format_extension(v1::OutputFormat format) {
  switch (format) {
    case v1::OUTPUT_FORMAT_JPEG:
      return "jpg";
    case v1::OUTPUT_FORMAT_WEBP:
      return "webp";
    default:
      return "png";
  }
}

const char* task_name(v1::Task task) {
  switch (task) {
    case v1::TASK_FILL:
      return "fill";
    case v1::TASK_EXTEND:
      return "extend";
    case v1::TASK_REMOVE:
      return "remove";
    default:
      return "unspecified";
  }
}

std::optional<v1::Task> parse_task(const std::string& text) {
  if (text == "fill") return v1::TASK_FILL;
  if (text == "extend") return v1::TASK_EXTEND;
  if (text == "remove") return v1::TASK_REMOVE;
  return std::nullopt;
}

// Same naming as `onereward-engine generate`: FILE, FILE_1, FILE_2, ...
std::string numbered_path(const std::string& path, int index, int /*count*/) {
  if (index == 0) return path;
  const size_t dot = path.rfind('.');
  const size_t slash = path.rfind('/');
  const std::string suffix = "_" + std::to_string(index);
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) ||
      dot == (slash == std::string::npos ? 0 : slash + 1))
    return path + suffix;
  return path.substr(0, dot) + suffix + path.substr(dot);
}

std::string read_binary(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UsageError("cannot read '" + path + "': " + std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_binary(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) throw std::runtime_error("cannot write '" + path + "'");
}

v1::FillRequest build_fill_request(v1::Task task, const FillFlags& flags) {
  v1::FillRequest req;
  req.set_request_id(flags.request_id);
  req.set_task(task);
  if (flags.image_path.empty()) throw UsageError("--image is required");
  req.set_image(read_binary(flags.image_path));
  if (!flags.mask_path.empty()) req.set_mask(read_binary(flags.mask_path));
  if (!flags.extend.empty()) *req.mutable_extend() = parse_margins(flags.extend);
  if (flags.prompt) req.set_prompt(*flags.prompt);
  if (flags.negative_prompt) req.set_negative_prompt(*flags.negative_prompt);
  if (flags.steps) req.set_steps(*flags.steps);
  if (flags.true_cfg) req.set_true_cfg(*flags.true_cfg);
  if (flags.guidance) req.set_guidance_scale(*flags.guidance);
  if (flags.seed) req.set_seed(*flags.seed);
  if (flags.strength) req.set_strength(*flags.strength);
  if (flags.width) req.set_width(*flags.width);
  if (flags.height) req.set_height(*flags.height);
  if (flags.num_images) req.set_num_images(*flags.num_images);
  req.set_variant(flags.variant);
  for (const auto& a : flags.adapters) *req.add_adapters() = parse_adapter(a);
  req.set_output_format(flags.format.empty() ? format_from_path(flags.out)
                                             : parse_format(flags.format));
  // Saving previews without asking for them would save nothing: default to every step.
  if (flags.preview_every)
    req.set_preview_every(*flags.preview_every);
  else if (!flags.previews_dir.empty())
    req.set_preview_every(1);
  if (flags.priority) req.set_priority(*flags.priority);
  return req;
}

SyntheticInput make_synthetic_input(int width, int height) {
  image::Image img(width, height);
  image::Image mask(width, height, 0);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, width - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, height - 1));
      p[2] = static_cast<uint8_t>(((x / 8 + y / 8) % 2) ? 200 : 60);
      const bool inside =
          x >= width / 4 && x < width - width / 4 && y >= height / 4 && y < height - height / 4;
      if (inside) {
        uint8_t* m = mask.at(x, y);
        m[0] = m[1] = m[2] = 255;
      }
    }
  }
  SyntheticInput in;
  const auto ib = image::encode(img, image::Format::kPng);
  const auto mb = image::encode(mask, image::Format::kPng);
  in.image.assign(ib.begin(), ib.end());
  in.mask.assign(mb.begin(), mb.end());
  return in;
}

}  // namespace onereward::client

namespace onereward::client {

namespace {

int g_interrupt_fd = -1;
std::atomic<int> g_interrupts{0};
struct sigaction g_old_int, g_old_term;

void on_signal(int) {
  const int saved = errno;
  if (g_interrupts.fetch_add(1) >= 1) _exit(kExitInterrupted);
  const char c = 1;
  if (g_interrupt_fd >= 0) (void)!write(g_interrupt_fd, &c, 1);
  errno = saved;
}

}  // namespace

InterruptWatcher::InterruptWatcher() {
  if (pipe(pipe_) != 0) throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  fcntl(pipe_[1], F_SETFL, O_NONBLOCK);
  g_interrupts.store(0);
  g_interrupt_fd = pipe_[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      pollfd pfd{pipe_[0], POLLIN, 0};
      if (poll(&pfd, 1, 50) <= 0) continue;  // timeout or EINTR
      char c;
      if (read(pipe_[0], &c, 1) != 1) continue;
      interrupted_.store(true);
      std::lock_guard<std::mutex> lock(mu_);
      if (handler_) handler_();
    }
  });
}

InterruptWatcher::~InterruptWatcher() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  g_interrupt_fd = -1;
  close(pipe_[0]);
  close(pipe_[1]);
}

void InterruptWatcher::set_handler(std::function<void()> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_ = std::move(handler);
  if (handler_ && interrupted_.load()) handler_();
}

}  // namespace onereward::client
