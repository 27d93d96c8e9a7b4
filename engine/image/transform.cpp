// Pixel-layout operations: validation, EXIF orientation transposes, outpainting canvas,
// compositing. Pure C++ (no OpenCV), exact integer copies.
#include "engine/image/transform.h"

#include <algorithm>
#include <string>

#include "engine/image/canvas.h"
#include "engine/image/preprocess.h"
#include "engine/util/status.h"

namespace onereward::image {

void check_image(const Image& image, const char* what) {
  check_arg(image.width > 0 && image.height > 0,
            std::string(what) + ": empty image (" + std::to_string(image.width) + "x" +
                std::to_string(image.height) + ")");
  check_arg(image.rgb.size() == image.pixels() * 3,
            std::string(what) + ": pixel buffer has " + std::to_string(image.rgb.size()) +
                " bytes, expected width*height*3 = " + std::to_string(image.pixels() * 3));
}

namespace detail {

Image apply_orientation(Image in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const int W = in.width, H = in.height;
  const bool swap = orientation >= 5;  // TRANSPOSE, ROTATE_270, TRANSVERSE, ROTATE_90
  Image out(swap ? H : W, swap ? W : H);
  // For each output pixel (x, y), the source pixel PIL's Image.transpose reads.
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = W - 1 - x; sy = y; break;          // FLIP_LEFT_RIGHT
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;  // ROTATE_180
        case 4: sx = x; sy = H - 1 - y; break;          // FLIP_TOP_BOTTOM
        case 5: sx = y; sy = x; break;                  // TRANSPOSE
        case 6: sx = y; sy = H - 1 - x; break;          // ROTATE_270 (90 deg clockwise)
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;  // TRANSVERSE
        case 8: sx = W - 1 - y; sy = x; break;          // ROTATE_90 (counter-clockwise)
      }
      const uint8_t* s = in.at(sx, sy);
      uint8_t* d = out.at(x, y);
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

}  // namespace detail

Canvas extend_canvas(const Image& image, int left, int top, int right, int bottom) {
  check_image(image, "extend_canvas");
  check_arg(left >= 0 && top >= 0 && right >= 0 && bottom >= 0,
            "extend_canvas: margins must be >= 0 (got " + std::to_string(left) + "," +
                std::to_string(top) + "," + std::to_string(right) + "," +
                std::to_string(bottom) + ")");
  const int64_t W = int64_t(left) + image.width + right;
  const int64_t H = int64_t(top) + image.height + bottom;
  check_arg(W <= 0x7fffffff && H <= 0x7fffffff, "extend_canvas: canvas too large");
  Canvas c{Image(int(W), int(H), 128), Image(int(W), int(H), 255)};
  const size_t row = size_t(image.width) * 3;
  for (int y = 0; y < image.height; ++y) {
    std::copy_n(image.at(0, y), row, c.image.at(left, top + y));
    std::fill_n(c.mask.at(left, top + y), row, uint8_t(0));
  }
  return c;
}

Image paste_back(const Image& original, const Image& generated, const Image& mask_rgb) {
  check_image(original, "paste_back original");
  check_image(generated, "paste_back generated");
  check_image(mask_rgb, "paste_back mask");
  check_arg(original.width == generated.width && original.height == generated.height &&
                original.width == mask_rgb.width && original.height == mask_rgb.height,
            "paste_back: original, generated and mask must have the same size");
  const Gray luma = to_luma(mask_rgb);
  Image out = original;
  for (size_t i = 0; i < luma.data.size(); ++i) {
    if (luma.data[i] >= 128) std::copy_n(&generated.rgb[i * 3], 3, &out.rgb[i * 3]);
  }
  return out;
}

}  // namespace onereward::image
