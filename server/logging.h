// Server logs (spdlog): human-readable lines by default, JSON lines with --log-format json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace onereward::server {

/// Configures the default spdlog logger. `level`: trace|debug|info|warn|error|off;
/// `format`: text|json. Throws onereward::Error (kInvalidArgument) on an unknown value.
void setup_logging(const std::string& level, const std::string& format);

/// One line per finished request (info level; warn for INTERNAL, UNKNOWN and DATA_LOSS).
/// Text: `<local time> info request_id=.. task=.. size=WxH steps=.. rows=.. variant=..
/// adapters=a:1,b:0.5 queue_ms=.. total_ms=.. outcome=.. [message=".."]`; JSON: an object
/// with ts (UTC), level, msg "request" and the same fields (adapters an array, numbers as
/// numbers). prompt / negative_prompt are added only when the logger is at debug or below.
struct RequestLog {
  std::string request_id;
  std::string task;        // fill|extend|remove|unspecified
  int width = 0, height = 0;
  int steps = 0;
  int rows = 0;            // transformer rows per step
  std::string variant;
  std::vector<std::string> adapters;  // "name:weight"
  double queue_ms = 0, total_ms = 0;
  std::string outcome;     // OK or the gRPC code name
  std::string message;     // error message ("" on OK)
  std::string prompt;      // logged only at debug level
  std::string negative_prompt;
};
void log_request(const RequestLog& r);

/// A free-form event with key/value fields: `log_event("info", "model loaded", {{"seconds","1.2"}})`.
/// In json format the fields are members of the line's object; in text format `key=value`.
void log_event(const std::string& level, const std::string& message,
               const std::vector<std::pair<std::string, std::string>>& fields = {});

}  // namespace onereward::server
