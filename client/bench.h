// onereward-client bench: a load generator for ImageFill.Fill.
//
// Closed loop: `concurrency` callers, each starting its next request when the previous one
// ends. Open loop: Poisson arrivals at `rate` requests per second, independent of how fast
// the server answers (up to `max_in_flight` outstanding calls; arrivals beyond it are
// counted as dropped). Requests draw a task and an input size from weighted mixes; inputs
// are synthetic PNGs generated once per size. Calls use gRPC's callback API, so the
// generator needs no thread per call.
//
// The run ends by itself: after `duration_s` or `requests` (whichever comes first), calls
// still in flight are waited for up to `grace_s`, then cancelled and counted as
// cancelled_at_end. The report (stdout table, optional JSON file) gives throughput,
// latency and queue-wait percentiles, and errors by gRPC code.
#pragma once

#include <optional>
#include <string>

#include "client/client.h"

namespace onereward::client {

struct BenchFlags {
  int concurrency = 1;               ///< closed loop callers (ignored with rate)
  std::optional<double> rate;        ///< open loop: Poisson arrivals per second
  std::optional<double> duration_s;  ///< stop issuing after this long
  std::optional<int64_t> requests;   ///< stop issuing after this many
  std::string tasks = "fill";        ///< "fill,extend,remove" with optional ":WEIGHT"
  std::string sizes = "64x64";       ///< "WxH[:WEIGHT],..."
  std::optional<uint32_t> steps;
  std::optional<float> true_cfg;
  std::optional<uint64_t> seed;  ///< request i gets seed+i; also seeds the mix and arrivals
  std::optional<std::string>
      prompt;  ///< fill default "a photo of a cat"; extend: none unless given
  std::optional<uint32_t> num_images;
  double grace_s = 30.0;     ///< wait for in-flight calls at the end, then cancel
  int max_in_flight = 1024;  ///< open loop cap on outstanding calls
  std::string json_path;     ///< also write the report as JSON here
};

/// Runs the benchmark and prints the report. Exit code: 0 when it ran and some request
/// succeeded (errors are reported, not fatal), 1 when every request failed,
/// 130 when interrupted (the partial report is still printed). Throws UsageError.
int run_bench(const ConnectionFlags& conn, const BenchFlags& flags);

}  // namespace onereward::client
