// Typed access to JSON configuration files (diffusers / transformers config.json).
// Every error names the file and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace onereward {

/// A parsed JSON object plus the path it came from, for error messages.
class JsonConfig {
 public:
  JsonConfig(nlohmann::json j, std::string path) : j_(std::move(j)), path_(std::move(path)) {}

  /// Reads and parses a JSON object; throws Error(kNotFound / kDataLoss) naming the file.
  static JsonConfig load(const std::string& path);

  const std::string& path() const { return path_; }
  const nlohmann::json& json() const { return j_; }
  bool has(const std::string& key) const;

  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_double(const std::string& key) const;
  double get_double(const std::string& key, double def) const;
  bool get_bool(const std::string& key) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;
  /// Optional double: absent or JSON null gives nullopt.
  std::optional<double> get_optional_double(const std::string& key) const;

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

 private:
  const nlohmann::json& at(const std::string& key) const;
  nlohmann::json j_;
  std::string path_;
};

}  // namespace onereward
