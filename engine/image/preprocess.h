// The reference's pixel preprocessing and postprocessing (diffusers 0.35
// VaeImageProcessor with PIL inputs), reproduced to the bit.
#pragma once

#include <utility>
#include <vector>

#include "engine/image/types.h"

namespace onereward::image {

/// PIL convert("L") of an RGB image: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16
/// (Pillow 9.4 libImaging/Convert.c, L24 macro: ITU-R 601-2 in 16-bit fixed point).
Gray to_luma(const Image& image);

/// VaeImageProcessor.get_default_height_width: width/height <= 0 mean "None" (take the
/// image's), then each is floored to a multiple of `multiple` (the processor's
/// vae_scale_factor: 16 for Flux = 2 * the VAE's 8). Returns {width, height}; throws
/// kInvalidArgument if a result would be 0.
std::pair<int, int> target_size(const Image& image, int width, int height, int multiple = 16);

/// image_processor.preprocess(image, height, width): resize to target_size with PIL LANCZOS
/// (exact copy when the size already matches) -> float32 x/255 -> 2x-1.
/// Returns CHW float32 [3, H, W] in [-1, 1] with H, W = target_size(...).
std::vector<float> preprocess_image(const Image& image, int width, int height,
                                    int multiple = 16);

/// mask_processor.preprocess(mask, height, width): resize the RGB mask (LANCZOS, as above)
/// -> convert("L") -> float32 /255 -> binarize (< 0.5 -> 0, else 1). Returns [H*W].
std::vector<float> preprocess_mask(const Image& mask_rgb, int width, int height,
                                   int multiple = 16);

/// VaeImageProcessor.numpy_to_pil: (images * 255).round().astype("uint8") with float32
/// numpy arithmetic (product rounded to float32, then round-half-to-even). Input is CHW
/// [3, H, W] in [0, 1] (the pipeline clamps before); values outside are clamped to
/// [0, 255] after rounding and NaN maps to 0 (numpy's cast would be undefined there).
Image to_image(const float* chw01, int width, int height);

}  // namespace onereward::image
