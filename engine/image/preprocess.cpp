// diffusers 0.35 VaeImageProcessor preprocess/postprocess for PIL images, to the bit.
//
// Reference arithmetic being reproduced:
//   pil_to_numpy:  np.array(img).astype(np.float32) / 255.0   -> float32 division
//   normalize:     2.0 * x - 1.0 (torch float32)               -> two float32 roundings
//   binarize:      x[x < 0.5] = 0; x[x >= 0.5] = 1
//   numpy_to_pil:  (x * 255).round().astype("uint8")           -> float32 product, half-even
// The library is compiled with -ffp-contract=off so 2*x-1 is never fused into an FMA.
#include "engine/image/preprocess.h"

#include <cfenv>
#include <cmath>
#include <string>

#include "engine/image/resize.h"
#include "engine/util/status.h"

namespace onereward::image {
namespace {

// VaeImageProcessor.resize(resize_mode="default") -> PIL Image.resize(LANCZOS), which
// copies when the size is unchanged (resize_lanczos does too).
Image resize_to(const Image& image, int width, int height) {
  return resize_lanczos(image, width, height);
}

}  // namespace

Gray to_luma(const Image& image) {
  check_image(image, "to_luma");
  Gray g;
  g.width = image.width;
  g.height = image.height;
  g.data.resize(image.pixels());
  const uint8_t* p = image.rgb.data();
  for (size_t i = 0; i < g.data.size(); ++i, p += 3) {
    // Pillow Convert.c rgb2l: L24(rgb) >> 16, L24 = r*19595 + g*38470 + b*7471 + 0x8000.
    g.data[i] = uint8_t((uint32_t(p[0]) * 19595 + uint32_t(p[1]) * 38470 +
                         uint32_t(p[2]) * 7471 + 0x8000) >> 16);
  }
  return g;
}

std::pair<int, int> target_size(const Image& image, int width, int height, int multiple) {
  check_arg(multiple > 0, "target_size: multiple must be positive");
  // get_default_height_width: None -> the image's size; then x - x % vae_scale_factor.
  if (width <= 0) width = image.width;
  if (height <= 0) height = image.height;
  width -= width % multiple;
  height -= height % multiple;
  check_arg(width > 0 && height > 0,
            "image size must be at least " + std::to_string(multiple) + "x" +
                std::to_string(multiple) + " after rounding down to a multiple of " +
                std::to_string(multiple));
  return {width, height};
}

std::vector<float> preprocess_image(const Image& image, int width, int height, int multiple) {
  check_image(image, "preprocess_image");
  auto [w, h] = target_size(image, width, height, multiple);
  const Image r = resize_to(image, w, h);
  const size_t plane = r.pixels();
  std::vector<float> out(plane * 3);
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) {
      const float x = float(r.rgb[i * 3 + c]) / 255.0f;  // pil_to_numpy
      out[c * plane + i] = 2.0f * x - 1.0f;              // normalize
    }
  }
  return out;
}

std::vector<float> preprocess_mask(const Image& mask_rgb, int width, int height, int multiple) {
  check_image(mask_rgb, "preprocess_mask");
  auto [w, h] = target_size(mask_rgb, width, height, multiple);
  // The mask arrives as RGB (load_image), is resized as RGB, then convert("L").
  const Gray l = to_luma(resize_to(mask_rgb, w, h));
  std::vector<float> out(l.data.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const float x = float(l.data[i]) / 255.0f;
    out[i] = x < 0.5f ? 0.0f : 1.0f;
  }
  return out;
}

Image to_image(const float* chw01, int width, int height) {
  check_arg(chw01 != nullptr && width > 0 && height > 0, "to_image: empty input");
  Image img(width, height);
  const size_t plane = img.pixels();
  // np.round is round-half-to-even; std::nearbyint does that in the default rounding mode,
  // which we set explicitly in case a caller changed it.
  const int saved = std::fegetround();
  std::fesetround(FE_TONEAREST);
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) {
      const float v = chw01[c * plane + i] * 255.0f;  // float32 product, as numpy
      float r = std::nearbyint(v);
      if (!(r >= 0.0f)) r = 0.0f;  // also NaN
      if (r > 255.0f) r = 255.0f;
      img.rgb[i * 3 + c] = uint8_t(r);
    }
  }
  std::fesetround(saved);
  return img;
}

}  // namespace onereward::image
