// The single-call subcommands of onereward-client. Each returns the process exit code
// (see client.h) and prints errors as "error: <CODE_NAME>: <message>".
#pragma once

#include <string>

#include "client/client.h"

namespace onereward::client {

/// fill / extend / remove: one Fill call, progress on stderr, result files written.
/// Throws UsageError for bad flags or unreadable inputs.
int run_fill(const ConnectionFlags& conn, v1::Task task, const FillFlags& flags);

/// Cancel by request id; prints the job's state when cancelled.
int run_cancel(const ConnectionFlags& conn, const std::string& request_id);

/// GetInfo, printed readably, or as JSON (proto field names, all fields) with `json`.
int run_info(const ConnectionFlags& conn, bool json);

/// grpc.health.v1.Health/Check; prints the serving status; exit 0 only when SERVING.
int run_health(const ConnectionFlags& conn, const std::string& service);

}  // namespace onereward::client
