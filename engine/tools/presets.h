// Model size presets for make-tiny and bench:
//   tiny:  the shape of the golden reference pipeline (transformer inner dim 32, 2+2 blocks,
//          a 4-level 16..64 VAE, 2-layer text encoders of width 32);
//   bench: FLUX.1-Fill-dev's transformer with 2 double blocks, 4 single blocks and 8 heads of
//          128 (inner dim 1024), FLUX.1's real VAE, and one-layer text encoders of the real
//          output widths (CLIP 768, T5 4096);
//   full:  FLUX.1-Fill-dev's real transformer, VAE, CLIP-L and T5-XXL encoder (for
//          --random-weights measurements on a GPU; no files are written for it).
#pragma once

#include <string>

#include "engine/models/clip_text.h"
#include "engine/models/flux_transformer.h"
#include "engine/models/t5_encoder.h"
#include "engine/models/vae.h"

namespace onereward::tools {

struct PipelinePreset {
  models::FluxTransformerConfig transformer;
  models::VaeConfig vae;
  models::ClipTextConfig clip;
  models::T5EncoderConfig t5;
};

models::FluxTransformerConfig transformer_preset(const std::string& name);
/// Every component's config for a preset name; Error(kInvalidArgument) for an unknown one.
PipelinePreset pipeline_preset(const std::string& name);

}  // namespace onereward::tools
