// Umbrella header of the image library (namespace onereward::image):
//   types.h      Image (8-bit RGB), Gray, Format, ImageHeader
//   codec.h      probe / decode / encode / read_file / write_file
//   resize.h     resize_lanczos (bit-exact Pillow 9.4 LANCZOS)
//   preprocess.h to_luma, preprocess_image, preprocess_mask, to_image (VaeImageProcessor)
//   canvas.h     extend_canvas, paste_back
#pragma once

#include "engine/image/canvas.h"
#include "engine/image/codec.h"
#include "engine/image/preprocess.h"
#include "engine/image/resize.h"
#include "engine/image/types.h"
