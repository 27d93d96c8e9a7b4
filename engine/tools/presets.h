// Model size presets for make-tiny and bench: `tiny` (the shape of the golden pipeline),
// `bench` (FLUX.1-Fill-dev's transformer with 2 double blocks, 4 single blocks and 8 heads
// of 128, i.e. inner dim 1024) and `full` (FLUX.1-Fill-dev's real transformer).
#pragma once

#include <string>

#include "engine/models/flux_transformer.h"

namespace onereward::tools {

models::FluxTransformerConfig transformer_preset(const std::string& name);

}  // namespace onereward::tools
