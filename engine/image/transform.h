// Internal: geometric transforms used by the decoder.
#pragma once

#include "engine/image/types.h"

namespace onereward::image::detail {

/// PIL.ImageOps.exif_transpose for an EXIF orientation value: 2 FLIP_LEFT_RIGHT,
/// 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90;
/// any other value returns the image unchanged.
Image apply_orientation(Image image, int orientation);

}  // namespace onereward::image::detail
