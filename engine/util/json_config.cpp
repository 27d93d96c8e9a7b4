#include "engine/util/json_config.h"

#include <fstream>
#include <sstream>

#include "engine/util/status.h"

namespace onereward {

JsonConfig JsonConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(StatusCode::kNotFound, path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw_error(StatusCode::kDataLoss, path + ": not valid JSON");
  if (!j.is_object()) throw_error(StatusCode::kDataLoss, path + ": top level is not a JSON object");
  return JsonConfig(std::move(j), path);
}

bool JsonConfig::has(const std::string& key) const {
  return j_.contains(key) && !j_.at(key).is_null();
}

void JsonConfig::fail(const std::string& key, const std::string& problem) const {
  throw_error(StatusCode::kDataLoss, path_ + ": field '" + key + "' " + problem);
}

const nlohmann::json& JsonConfig::at(const std::string& key) const {
  if (!j_.contains(key)) fail(key, "is missing");
  return j_.at(key);
}

int64_t JsonConfig::get_int(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_number_integer()) fail(key, "must be an integer");
  return v.get<int64_t>();
}
int64_t JsonConfig::get_int(const std::string& key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}
double JsonConfig::get_double(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_number()) fail(key, "must be a number");
  return v.get<double>();
}
double JsonConfig::get_double(const std::string& key, double def) const {
  return has(key) ? get_double(key) : def;
}
std::optional<double> JsonConfig::get_optional_double(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_double(key);
}
bool JsonConfig::get_bool(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_boolean()) fail(key, "must be true or false");
  return v.get<bool>();
}
bool JsonConfig::get_bool(const std::string& key, bool def) const {
  return has(key) ? get_bool(key) : def;
}
std::string JsonConfig::get_string(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_string()) fail(key, "must be a string");
  return v.get<std::string>();
}
std::string JsonConfig::get_string(const std::string& key, const std::string& def) const {
  return has(key) ? get_string(key) : def;
}
std::vector<int64_t> JsonConfig::get_int_list(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_array()) fail(key, "must be a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer()) fail(key, "must be a list of integers");
    out.push_back(e.get<int64_t>());
  }
  return out;
}
std::vector<std::string> JsonConfig::get_string_list(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_array()) fail(key, "must be a list of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) fail(key, "must be a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace onereward
