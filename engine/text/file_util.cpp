#include "engine/text/file_util.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/util/status.h"

namespace onereward::text {

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw_error(StatusCode::kNotFound, path + ": cannot open file (" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) throw_error(StatusCode::kNotFound, path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(StatusCode::kNotFound, path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw_error(StatusCode::kDataLoss, path + ": read error");
  return ss.str();
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace onereward::text
