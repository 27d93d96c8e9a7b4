// Status and error types of the engine.
//
// Inside the engine, failures are raised as onereward::Error (carrying a StatusCode) so
// that deep code (file parsing, tensor shape checks) can bail out cleanly; the engine's
// public API (engine/pipeline/engine.h) catches them and returns Status / Result values,
// so no exception crosses into the server.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace onereward {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     ///< bad input from the caller (names the field and the limit)
  kNotFound,            ///< a file, tensor key, variant or adapter that does not exist
  kFailedPrecondition,  ///< state does not allow the call (e.g. engine not loaded)
  kResourceExhausted,   ///< out of memory, queue full
  kUnavailable,         ///< loading or draining; retry later
  kCancelled,
  kDeadlineExceeded,
  kDataLoss,            ///< malformed or truncated checkpoint / tokenizer file
  kInternal,            ///< our own bug
};

const char* status_code_name(StatusCode code);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// Exception used inside the engine; converted to Status at the API boundary.
class Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  StatusCode code() const { return code_; }
  Status status() const { return Status(code_, what()); }

 private:
  StatusCode code_;
};

[[noreturn]] void throw_error(StatusCode code, const std::string& message);
inline void check_arg(bool cond, const std::string& message) {
  if (!cond) throw_error(StatusCode::kInvalidArgument, message);
}

/// A value or a non-OK status.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

/// Runs fn(), converting any exception into a Status (engine API boundary helper).
template <class Fn>
Status capture_status(Fn&& fn);

Status status_from_current_exception();

template <class Fn>
Status capture_status(Fn&& fn) {
  try {
    fn();
    return Status::Ok();
  } catch (...) {
    return status_from_current_exception();
  }
}

}  // namespace onereward
