// Outpainting ("extend") inputs, as the reference's extend cases build them: the original
// pixels in place, the new border area flat grey 128, and a mask that is white (255) on
// exactly the new area and black (0) on the original pixels.
#pragma once

#include "engine/image/types.h"

namespace onereward::image {

struct Canvas {
  Image image;  ///< (left + W + right) x (top + H + bottom), new area = (128,128,128)
  Image mask;   ///< same size, RGB: 255 on the new area, 0 on the original
};

/// Margins must be >= 0. Throws kInvalidArgument otherwise or on a malformed image.
Canvas extend_canvas(const Image& image, int left, int top, int right, int bottom);

/// Composite for results: pixels where mask (luma >= 128, the same threshold as the
/// binarized mask) is set come from `generated`, the others from `original`. All three
/// must have the same size.
Image paste_back(const Image& original, const Image& generated, const Image& mask_rgb);

}  // namespace onereward::image
