// Plain pixel containers of the image library (no OpenCV in any public header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace onereward::image {

/// 8-bit RGB, interleaved (R,G,B), row-major, no padding: rgb.size() == width*height*3.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;

  Image() = default;
  Image(int w, int h, uint8_t fill = 0)
      : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3, fill) {}
  bool empty() const { return width <= 0 || height <= 0; }
  size_t pixels() const { return static_cast<size_t>(width) * static_cast<size_t>(height); }
  uint8_t* at(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* at(int x, int y) const {
    return rgb.data() + (static_cast<size_t>(y) * width + x) * 3;
  }
};

/// 8-bit single channel (PIL mode "L"), row-major: data.size() == width*height.
struct Gray {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> data;
};

enum class Format { kPng, kJpeg, kWebp };

/// Size of an encoded image as the decoder will return it (EXIF orientation applied).
struct ImageHeader {
  Format format = Format::kPng;
  int width = 0;
  int height = 0;
};

/// Throws Error(kInvalidArgument) unless width/height > 0 and rgb has width*height*3 bytes.
void check_image(const Image& image, const char* what);

}  // namespace onereward::image
