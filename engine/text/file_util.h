// Whole-file reads for tokenizer files, with errors that name the file.
#pragma once

#include <string>

namespace onereward::text {

/// Reads a file; a missing / unreadable file throws Error(kNotFound, "<path>: ...").
std::string read_file(const std::string& path);

bool file_exists(const std::string& path);

/// dir + "/" + name (no separator doubling).
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace onereward::text
