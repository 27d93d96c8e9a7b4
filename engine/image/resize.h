// Bit-exact port of Pillow 9.4's Image.resize(size, Image.LANCZOS) for 8-bit RGB images
// (libImaging/Resample.c: separable fixed-point convolution, horizontal pass first,
// intermediate rounded to uint8). Image.resize's defaults are assumed: box = whole image,
// reducing_gap = None (no reduce() pre-step).
#pragma once

#include "engine/image/types.h"

namespace onereward::image {

/// Same size -> exact copy (Image.resize returns self.copy()). Throws kInvalidArgument on
/// a malformed image or a non-positive target size.
Image resize_lanczos(const Image& image, int width, int height);

}  // namespace onereward::image
