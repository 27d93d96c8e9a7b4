// Bit-exact port of Pillow 9.4.0 src/libImaging/Resample.c for 8-bit RGB with the LANCZOS
// filter, as reached from Image.resize(size, LANCZOS) with its defaults (box = the whole
// image, reducing_gap = None so no reduce() pre-step; RGB needs no premultiplication).
//
// What has to match Pillow for bit-exactness:
//  * precompute_coeffs: per output pixel a window [xmin, xmin+n) around
//    center = in0 + (xx + 0.5) * scale, support = 3 * max(scale, 1), weights
//    lanczos((x + xmin - center + 0.5) / filterscale) in double, normalised by their sum;
//    the same expression order is kept so the doubles round the same way.
//  * normalize_coeffs_8bpc: weights -> int32 fixed point with PRECISION_BITS = 22,
//    rounding half away from zero by truncating (w * 2^22 +- 0.5).
//  * Each pass accumulates pixel * weight in int starting from 2^21 (rounding), then
//    clips (sum >> 22) to [0, 255]. The horizontal pass runs first (only on the source
//    rows the vertical pass will read) and its result is stored as uint8 before the
//    vertical pass: the intermediate rounding is part of the result.
//  * A pass is skipped when its size is unchanged (need_horizontal / need_vertical).
// Integer sums are exact, so accumulating in a different order (row-wise below, for
// cache-friendliness) gives identical results; the bound |sum| < 2^31 holds for any order
// because sum(|w|) * 255 * 2^22 < 2^31 for the lanczos kernel.
#include "engine/image/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/util/status.h"

namespace onereward::image {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kLanczosSupport = 3.0;

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  // truncated sinc
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

// Fixed-point kernel for one axis: for output index i, taps k[i*ksize .. i*ksize+n[i]) apply
// to input indices start[i] .. start[i]+n[i].
struct Coeffs {
  int ksize = 0;
  std::vector<int> start, count;
  std::vector<int32_t> k;
};

// precompute_coeffs + normalize_coeffs_8bpc. in0/in1 are float in Pillow (the box); with
// the default box they are 0 and the input size.
Coeffs precompute_coeffs(int in_size, float in0, float in1, int out_size) {
  double filterscale, scale;
  filterscale = scale = double(in1 - in0) / out_size;
  if (filterscale < 1.0) filterscale = 1.0;
  const double support = kLanczosSupport * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.start.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);  // "Round the value" (truncation, as Pillow)
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      const double v = lanczos_filter((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    int32_t* k = &c.k[size_t(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits))
                   : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.start[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t in) {
  const int32_t v = in >> kPrecisionBits;  // arithmetic shift, as Pillow
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Horizontal pass over source rows [row0, row0 + rows): RGB in (in_w wide) -> RGB out.
std::vector<uint8_t> resample_horizontal(const uint8_t* in, int in_w, int row0, int rows,
                                         int out_w, const Coeffs& c) {
  std::vector<uint8_t> out(size_t(out_w) * rows * 3);
  const int32_t half = 1 << (kPrecisionBits - 1);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in + size_t(row0 + y) * in_w * 3;
    uint8_t* dst = &out[size_t(y) * out_w * 3];
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.k[size_t(xx) * c.ksize];
      const uint8_t* p = src + size_t(c.start[xx]) * 3;
      int32_t s0 = half, s1 = half, s2 = half;
      for (int x = 0, n = c.count[xx]; x < n; ++x, p += 3) {
        s0 += int32_t(p[0]) * k[x];
        s1 += int32_t(p[1]) * k[x];
        s2 += int32_t(p[2]) * k[x];
      }
      dst[xx * 3 + 0] = clip8(s0);
      dst[xx * 3 + 1] = clip8(s1);
      dst[xx * 3 + 2] = clip8(s2);
    }
  }
  return out;
}

// Vertical pass: `in` holds the rows the coefficients index (after the row offset shift).
std::vector<uint8_t> resample_vertical(const uint8_t* in, int width, int out_h,
                                       const Coeffs& c, int row_offset) {
  const size_t row_len = size_t(width) * 3;
  std::vector<uint8_t> out(row_len * out_h);
  std::vector<int32_t> acc(row_len);
  const int32_t half = 1 << (kPrecisionBits - 1);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * c.ksize];
    std::fill(acc.begin(), acc.end(), half);
    for (int y = 0, n = c.count[yy]; y < n; ++y) {
      const uint8_t* src = in + size_t(c.start[yy] - row_offset + y) * row_len;
      const int32_t ky = k[y];
      for (size_t i = 0; i < row_len; ++i) acc[i] += int32_t(src[i]) * ky;
    }
    uint8_t* dst = &out[size_t(yy) * row_len];
    for (size_t i = 0; i < row_len; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

Image resize_lanczos(const Image& image, int width, int height) {
  check_image(image, "resize_lanczos");
  check_arg(width > 0 && height > 0, "resize_lanczos: target size must be positive (got " +
                                         std::to_string(width) + "x" + std::to_string(height) +
                                         ")");
  // Image.resize: same size and default box -> self.copy().
  if (width == image.width && height == image.height) return image;

  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;
  const Coeffs horiz = precompute_coeffs(image.width, 0.0f, float(image.width), width);
  const Coeffs vert = precompute_coeffs(image.height, 0.0f, float(image.height), height);
  // First and one-past-last source rows the vertical pass reads.
  const int ybox_first = vert.start[0];
  const int ybox_last = vert.start[height - 1] + vert.count[height - 1];

  Image out;
  out.width = width;
  out.height = height;
  if (need_horizontal) {
    std::vector<uint8_t> tmp = resample_horizontal(image.rgb.data(), image.width, ybox_first,
                                                   ybox_last - ybox_first, width, horiz);
    if (need_vertical) {
      out.rgb = resample_vertical(tmp.data(), width, height, vert, ybox_first);
    } else {
      out.rgb = std::move(tmp);  // rows 0..H: the whole image when the height is unchanged
    }
  } else {
    out.rgb = resample_vertical(image.rgb.data(), width, height, vert, 0);
  }
  return out;
}

}  // namespace onereward::image
