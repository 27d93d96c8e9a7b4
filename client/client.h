// Pieces shared by the onereward-client subcommands: the channel, gRPC status printing,
// the FillRequest built from command-line flags, output file naming and the synthetic
// inputs of the load generator. Speaks the proto only (no engine).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "onereward/v1/image_fill.grpc.pb.h"

namespace onereward::client {

namespace v1 = ::onereward::v1;

/// Exit codes: 0 success, 1 an RPC failed (or the result could not be written),
/// 2 bad command-line usage or unreadable input files, 130 interrupted by Ctrl-C.
constexpr int kExitOk = 0;
constexpr int kExitRpcError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

/// A command-line mistake found after parsing (bad --extend, unreadable --image, ...).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Flags every subcommand takes.
struct ConnectionFlags {
  std::string target = "localhost:50051";
  std::optional<double> timeout_s;  ///< per-call deadline; absent = the subcommand's default
  int max_message_mib = 128;        ///< receive limit
};

std::shared_ptr<grpc::Channel> make_channel(const ConnectionFlags& flags);

/// Sets the deadline `timeout_s` (or `default_s` when absent; none when both are absent).
void set_deadline(grpc::ClientContext& ctx, const std::optional<double>& timeout_s,
                  std::optional<double> default_s);

/// "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", ... (the canonical upper-case code names).
const char* code_name(grpc::StatusCode code);

/// Prints "error: <CODE_NAME>: <message>" to stderr.
void print_rpc_error(const grpc::Status& status);

/// Flags of fill / extend / remove, as given. Optional proto fields stay absent when unset.
struct FillFlags {
  std::string image_path;
  std::string mask_path;
  std::string extend;  ///< "L,T,R,B"
  std::optional<std::string> prompt;
  std::optional<std::string> negative_prompt;
  std::optional<uint32_t> steps;
  std::optional<float> true_cfg;
  std::optional<float> guidance;
  std::optional<uint64_t> seed;
  std::optional<float> strength;
  std::optional<uint32_t> width;
  std::optional<uint32_t> height;
  std::optional<uint32_t> num_images;
  std::string variant;
  std::vector<std::string> adapters;  ///< NAME[:WEIGHT]
  std::string format;                 ///< png|jpeg|webp; empty = from --out's extension
  std::optional<uint32_t> preview_every;
  std::string previews_dir;
  std::optional<int32_t> priority;
  std::string request_id;
  std::string out;
};

/// Builds the request (reads the image and mask files). Throws UsageError.
v1::FillRequest build_fill_request(v1::Task task, const FillFlags& flags);

/// "L,T,R,B" -> Margins (non-negative integers). Throws UsageError.
v1::Margins parse_margins(const std::string& text);
/// "NAME[:WEIGHT]" -> Adapter (weight 1 when absent). Throws UsageError.
v1::Adapter parse_adapter(const std::string& text);
/// "png" | "jpeg" (or "jpg") | "webp". Throws UsageError.
v1::OutputFormat parse_format(const std::string& text);
/// Format from a file name's extension (.png, .jpg/.jpeg, .webp); PNG otherwise.
v1::OutputFormat format_from_path(const std::string& path);
/// "png", "jpg" or "webp".
const char* format_extension(v1::OutputFormat format);

const char* task_name(v1::Task task);
/// "fill" | "extend" | "remove" -> Task; nullopt otherwise.
std::optional<v1::Task> parse_task(const std::string& text);

/// FILE, or with count > 1 FILE with "_<index>" before the extension (out.png -> out_1.png).
std::string numbered_path(const std::string& path, int index, int count);

/// Whole file -> bytes. Throws UsageError naming the file.
std::string read_binary(const std::string& path);
/// Writes bytes; throws std::runtime_error naming the file on failure.
void write_binary(const std::string& path, const std::string& bytes);

/// Deterministic synthetic inputs (PNG-encoded) for the load generator: a smooth colour
/// pattern and a mask whose centre half (in each dimension) is white.
struct SyntheticInput {
  std::string image;
  std::string mask;
};
SyntheticInput make_synthetic_input(int width, int height);

/// Seconds since an arbitrary epoch (steady clock).
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Turns SIGINT/SIGTERM into a callback on a thread of its own, so that a call in flight
/// can be cancelled cleanly (ClientContext::TryCancel is not async-signal-safe): the signal
/// handler only writes to a pipe that the thread watches. A second signal exits at once
/// with kExitInterrupted. One watcher at a time; the previous handlers come back when it
/// is destroyed.
class InterruptWatcher {
 public:
  InterruptWatcher();
  ~InterruptWatcher();
  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

  /// Runs `handler` on a signal (at once if one came already); empty = none.
  void set_handler(std::function<void()> handler);
  bool interrupted() const { return interrupted_.load(); }

 private:
  std::mutex mu_;
  std::function<void()> handler_;
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> stop_{false};
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace onereward::client
