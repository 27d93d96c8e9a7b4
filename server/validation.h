// FillRequest (proto) -> engine request: every check the API promises, with messages that
// name the field and the limit. Image headers are checked before any pixel is decoded.
#pragma once

#include <string>

#include "engine/image/types.h"
#include "engine/pipeline/engine.h"
#include "onereward/v1/image_fill.pb.h"
#include "server/options.h"

namespace onereward::server {

struct ValidatedRequest {
  std::string request_id;  ///< as given (may be empty: the service assigns one)
  FillRequest request;     ///< decoded images, defaults applied, seed chosen
  image::Format format = image::Format::kPng;
  int preview_every = 0;
  int priority = 0;
  int width = 0, height = 0;  ///< output size before flooring (explicit, or the (extended) image's)
};

/// kInvalidArgument with "field: problem (limit)" on bad input.
Result<ValidatedRequest> validate_request(const v1::FillRequest& req, const Limits& limits, const EngineInfo& info,
                                          bool previews_allowed, int min_preview_every);

const char* task_label(v1::Task task);  ///< fill|extend|remove|unspecified

}  // namespace onereward::server
