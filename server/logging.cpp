// Server logs: spdlog's default logger writing to stderr, as text lines or JSON lines.
//
// Text:  2026-12-04 22:00:00.123 info request_id=r1 task=fill size=64x64 steps=20 ...
// JSON:  {"ts":"2026-12-04T22:00:00.123Z","level":"info","msg":"request","request_id":"r1",...}
//
// Structured lines (log_event, log_request) are rendered to their final form before they
// reach spdlog; in JSON mode they carry a leading marker byte so that the formatter knows
// the payload already is the body of an object. Plain spdlog calls elsewhere in the server
// still produce one valid JSON object per line (their text becomes "msg").
#include "server/logging.h"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/util/status.h"

namespace onereward::server {

namespace {

constexpr char kStructured = '\x1e';  // payload is the inside of a JSON object
std::atomic<bool> g_json{false};

using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

const char* level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

bool parse_level(const std::string& s, spdlog::level::level_enum* out) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},   {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"critical", spdlog::level::critical}, {"off", spdlog::level::off}};
  for (const auto& [name, level] : kLevels) {
    if (s == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

void append(spdlog::memory_buf_t& dest, const std::string& s) { dest.append(s.data(), s.data() + s.size()); }

class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(bool json) : json_(json) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto t = msg.time;
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    const auto ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000);
    std::tm tm{};
    char stamp[40];
    const std::string payload(msg.payload.data(), msg.payload.size());
    if (json_) {
      gmtime_r(&secs, &tm);
      std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
      append(dest, "{\"ts\":\"");
      append(dest, stamp);
      append(dest, "\",\"level\":\"");
      append(dest, level_name(msg.level));
      append(dest, "\",");
      if (!payload.empty() && payload.front() == kStructured) {
        append(dest, payload.substr(1));
      } else {
        append(dest, "\"msg\":");
        append(dest, dump(ojson(payload)));
      }
      append(dest, "}\n");
    } else {
      localtime_r(&secs, &tm);
      std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02d %02d:%02d:%02d.%03d ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
      append(dest, stamp);
      append(dest, level_name(msg.level));
      dest.push_back(' ');
      append(dest, payload);
      dest.push_back('\n');
    }
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LineFormatter>(json_); }

 private:
  bool json_;
};

// logfmt-style value: bare when safe, else double-quoted with escapes (one line always).
std::string text_value(const std::string& v) {
  bool bare = !v.empty();
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
      bare = false;
      break;
    }
  }
  if (bare) return v;
  std::string out = "\"";
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string text_key(const std::string& k) {
  std::string out;
  for (char c : k) out += (static_cast<unsigned char>(c) <= ' ' || c == '=' || c == '"') ? '_' : c;
  return out.empty() ? "_" : out;
}

// A structured line under construction: ordered fields, rendered for the active format.
class Line {
 public:
  explicit Line(std::string msg) : msg_(std::move(msg)) { j_["msg"] = msg_; }

  void str(const std::string& k, const std::string& v) {
    j_[json_key(k)] = v;
    text_ += ' ' + text_key(k) + '=' + text_value(v);
  }
  void num(const std::string& k, long long v) {
    j_[json_key(k)] = v;
    text_ += ' ' + text_key(k) + '=' + std::to_string(v);
  }
  void ms(const std::string& k, double v) {
    if (!std::isfinite(v)) v = 0;
    j_[json_key(k)] = std::round(v * 1000.0) / 1000.0;
    char buf[48];
    std::snprintf(buf, sizeof(buf), "%.1f", v);
    text_ += ' ' + text_key(k) + '=' + buf;
  }
  void list(const std::string& k, const std::vector<std::string>& v) {
    j_[json_key(k)] = v;
    std::string joined;
    for (size_t i = 0; i < v.size(); ++i) joined += (i ? "," : "") + v[i];
    text_ += ' ' + text_key(k) + '=' + text_value(joined);
  }

  void emit(spdlog::level::level_enum level) const {
    if (g_json.load()) {
      const std::string body = dump(j_);  // "{...}"
      std::string payload(1, kStructured);
      payload.append(body, 1, body.size() - 2);
      spdlog::default_logger_raw()->log(level, spdlog::string_view_t(payload));
    } else {
      // The message leads the line unquoted (flattened to one line); fields follow.
      const std::string payload = msg_.empty() ? text_.substr(text_.empty() ? 0 : 1) : msg_for_text() + text_;
      spdlog::default_logger_raw()->log(level, spdlog::string_view_t(payload));
    }
  }

 private:
  // ts, level and msg belong to the line itself; a field with such a name is kept aside.
  static std::string json_key(const std::string& k) {
    return (k == "ts" || k == "level" || k == "msg") ? "field_" + k : k;
  }
  std::string msg_for_text() const {
    std::string out;
    for (unsigned char c : msg_) {
      if (c == '\n' || c == '\r') out += ' ';
      else if (c < 0x20 || c == 0x7f) out += '?';
      else out += static_cast<char>(c);
    }
    return out;
  }

  std::string msg_;
  ojson j_;
  std::string text_;
};

spdlog::level::level_enum event_level(const std::string& level) {
  spdlog::level::level_enum l = spdlog::level::info;
  if (!parse_level(level, &l) || l == spdlog::level::off) l = spdlog::level::info;
  return l;
}

}  // namespace

void setup_logging(const std::string& level, const std::string& format) {
  spdlog::level::level_enum l;
  if (!parse_level(level, &l)) {
    throw_error(StatusCode::kInvalidArgument,
                "unknown log level '" + level + "' (trace, debug, info, warn, error, off)");
  }
  if (format != "text" && format != "json") {
    throw_error(StatusCode::kInvalidArgument, "unknown log format '" + format + "' (text, json)");
  }
  const bool json = format == "json";
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(std::make_unique<LineFormatter>(json));
  auto logger = std::make_shared<spdlog::logger>("onereward", std::move(sink));
  logger->set_level(l);
  logger->flush_on(spdlog::level::trace);
  g_json.store(json);
  spdlog::set_default_logger(std::move(logger));
}

void log_request(const RequestLog& r) {
  auto* logger = spdlog::default_logger_raw();
  const bool server_fault = r.outcome == "INTERNAL" || r.outcome == "UNKNOWN" || r.outcome == "DATA_LOSS";
  const auto level = server_fault ? spdlog::level::warn : spdlog::level::info;
  if (!logger->should_log(level)) return;

  Line line(g_json.load() ? "request" : "");
  line.str("request_id", r.request_id);
  line.str("task", r.task);
  line.str("size", std::to_string(r.width) + "x" + std::to_string(r.height));
  line.num("steps", r.steps);
  line.num("rows", r.rows);
  line.str("variant", r.variant);
  line.list("adapters", r.adapters);
  line.ms("queue_ms", r.queue_ms);
  line.ms("total_ms", r.total_ms);
  line.str("outcome", r.outcome);
  if (r.outcome != "OK" || !r.message.empty()) line.str("message", r.message);
  // Prompts are user content: only when the operator asked for debug logs.
  if (logger->should_log(spdlog::level::debug)) {
    line.str("prompt", r.prompt);
    line.str("negative_prompt", r.negative_prompt);
  }
  line.emit(level);
}

void log_event(const std::string& level, const std::string& message,
               const std::vector<std::pair<std::string, std::string>>& fields) {
  const auto l = event_level(level);
  if (!spdlog::default_logger_raw()->should_log(l)) return;
  Line line(message);
  for (const auto& [k, v] : fields) line.str(k, v);
  line.emit(l);
}

}  // namespace onereward::server
