// Helpers for the observability tests: exposition-format parsing, stderr capture, a tiny
// HTTP GET, running promtool.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace obs_test {

using LabelMap = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  LabelMap labels;
  double value = 0;
};

/// Parses the samples of a text exposition (comments skipped).
inline std::vector<Sample> parse_samples(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t i = line.find_first_of("{ ");
    s.name = line.substr(0, i);
    if (i != std::string::npos && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        const std::string key = line.substr(i, eq - i);
        std::string value;
        size_t j = eq + 2;  // after ="
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value += line[j];
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;
    }
    while (i < line.size() && line[i] == ' ') ++i;
    const std::string v = line.substr(i, line.find(' ', i) - i);
    s.value = v == "+Inf" ? 1e308 : std::stod(v);
    out.push_back(std::move(s));
  }
  return out;
}

/// The value of the one sample `name` whose labels include `labels`; throws when there is
/// none or more than one.
inline double sample_value(const std::string& text, const std::string& name, const LabelMap& labels = {}) {
  const Sample* found = nullptr;
  const auto samples = parse_samples(text);
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) match = false;
    }
    if (!match) continue;
    if (found) throw std::runtime_error("more than one sample matches " + name);
    found = &s;
  }
  if (!found) throw std::runtime_error("no sample " + name);
  return found->value;
}

inline bool has_sample(const std::string& text, const std::string& name, const LabelMap& labels = {}) {
  try {
    sample_value(text, name, labels);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// Names of the metric families (# TYPE lines) with their types.
inline std::map<std::string, std::string> family_types(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream f(line.substr(7));
    std::string name, type;
    f >> name >> type;
    out[name] = type;
  }
  return out;
}

/// Redirects file descriptor 2 into a temporary file until stop().
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    char path[] = "/tmp/obs-stderr-XXXXXX";
    fd_ = mkstemp(path);
    if (fd_ < 0) throw std::runtime_error("mkstemp");
    path_ = path;
    saved_ = dup(2);
    dup2(fd_, 2);
  }
  ~StderrCapture() {
    if (saved_ >= 0) stop();
  }
  std::string stop() {
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
    close(fd_);
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::remove(path_.c_str());
    return ss.str();
  }

 private:
  int fd_ = -1, saved_ = -1;
  std::string path_;
};

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

/// HTTP/1.0 GET http://127.0.0.1:port/path; returns the whole response (status line,
/// headers, body).
inline std::string http_get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    throw std::runtime_error("connect to port " + std::to_string(port) + " failed");
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
    close(fd);
    throw std::runtime_error("send");
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

struct CommandResult {
  int status = -1;
  std::string output;
};

/// Runs a shell command with `input` on stdin; stdout and stderr together.
inline CommandResult run_with_input(const std::string& command, const std::string& input) {
  char path[] = "/tmp/obs-input-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw std::runtime_error("mkstemp");
  if (write(fd, input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    close(fd);
    throw std::runtime_error("write");
  }
  close(fd);
  CommandResult r;
  FILE* p = popen((command + " < " + path + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::remove(path);
  return r;
}

/// Whether `program` is on PATH.
inline bool on_path(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

/// The metric names of the service's contract.
inline const std::vector<std::string>& contract_names() {
  static const std::vector<std::string> names = {
      "onereward_requests_total",          "onereward_request_duration_seconds",
      "onereward_queue_wait_seconds",      "onereward_queue_depth",
      "onereward_running_jobs",            "onereward_batch_rows",
      "onereward_step_duration_seconds",   "onereward_stage_duration_seconds",
      "onereward_prompt_cache_hits_total", "onereward_prompt_cache_misses_total",
      "onereward_failures_total",          "onereward_model_ready",
      "onereward_build_info",              "onereward_device_memory_bytes"};
  return names;
}

}  // namespace obs_test
