// resize_lanczos: bit-exact against Pillow 9.4 (golden pipeline case + generated cases),
// plus properties that follow from the filter itself.
#include <cmath>
#include <random>

#include "engine/image/image.h"
#include "engine/util/status.h"
#include "tests/image/test_util.h"

namespace onereward::image {
namespace {

using testing::data_path;
using testing::golden_case;
using testing::SameImage;

Image random_image(int w, int h, uint32_t seed) {
  std::mt19937 gen(seed);
  Image img(w, h);
  for (auto& v : img.rgb) v = uint8_t(gen() & 0xff);
  return img;
}

// The reference pipeline's resize case: 80x72 image.png -> 64x64 through
// VaeImageProcessor (PIL LANCZOS). init_image = x/255*2-1 of the resized pixels.
TEST(ResizeLanczos, GoldenFillResizeImageMatchesPillowExactly) {
  const std::string c = "fill_resize_onereward_64x64_from_80x72";
  const Image src = read_file(golden_case(c, "image.png"));
  ASSERT_EQ(src.width, 80);
  ASSERT_EQ(src.height, 72);
  const auto ref = testing::read_safetensors_f32(golden_case(c, "expected.safetensors"));
  const auto& init = ref.at("init_image");
  ASSERT_EQ(init.shape, (std::vector<int64_t>{1, 3, 64, 64}));

  // 1) The uint8 resize itself: recover the reference bytes from init_image.
  const Image got = resize_lanczos(src, 64, 64);
  Image want(64, 64);
  for (int c3 = 0; c3 < 3; ++c3)
    for (int i = 0; i < 64 * 64; ++i)
      want.rgb[i * 3 + c3] =
          uint8_t(std::lround((init.data[c3 * 64 * 64 + i] + 1.0) / 2.0 * 255.0));
  EXPECT_TRUE(SameImage(got, want));

  // 2) The full preprocess_image tensor.
  const std::vector<float> x = preprocess_image(src, 64, 64);
  ASSERT_EQ(x.size(), init.data.size());
  float max_diff = 0;
  for (size_t i = 0; i < x.size(); ++i) max_diff = std::max(max_diff, std::abs(x[i] - init.data[i]));
  EXPECT_LE(max_diff, 1e-6f);
  EXPECT_EQ(max_diff, 0.0f) << "expected bit-identical float32";
}

TEST(ResizeLanczos, GoldenFillResizeMaskMatchesExactly) {
  const std::string c = "fill_resize_onereward_64x64_from_80x72";
  const Image mask = read_file(golden_case(c, "mask.png"));
  const auto ref = testing::read_safetensors_f32(golden_case(c, "expected.safetensors"));
  const auto& want = ref.at("mask_image");
  ASSERT_EQ(want.shape, (std::vector<int64_t>{1, 1, 64, 64}));
  const std::vector<float> got = preprocess_mask(mask, 64, 64);
  ASSERT_EQ(got.size(), want.data.size());
  size_t diffs = 0;
  for (size_t i = 0; i < got.size(); ++i) diffs += got[i] != want.data[i];
  EXPECT_EQ(diffs, 0u);
}

// tests/data/image/resize_cases.txt: Pillow 9.4 outputs for down/up/one-axis/extreme
// sizes of noise (with saturated rows/cols), hard-edged stripes and a 3x2 image.
TEST(ResizeLanczos, MatchesPillowGeneratedCases) {
  const auto rows = testing::read_manifest(data_path("image/resize_cases.txt"));
  ASSERT_GE(rows.size(), 20u);
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), 4u);
    SCOPED_TRACE(r[0] + " -> " + r[1] + "x" + r[2]);
    const Image src = read_file(data_path("image/" + r[0]));
    const Image want = read_file(data_path("image/" + r[3]));
    EXPECT_TRUE(SameImage(resize_lanczos(src, std::stoi(r[1]), std::stoi(r[2])), want));
  }
}

TEST(ResizeLanczos, SameSizeIsAnExactCopy) {
  const Image src = random_image(33, 21, 1);
  EXPECT_TRUE(SameImage(resize_lanczos(src, 33, 21), src));
}

// Normalised weights sum to 1 (to within a few 2^-22 units), so a flat image stays flat
// for any scale, including upscaling and different factors per axis.
TEST(ResizeLanczos, FlatImageStaysFlat) {
  for (uint8_t v : {uint8_t(0), uint8_t(1), uint8_t(128), uint8_t(254), uint8_t(255)}) {
    const Image src(19, 11, v);
    for (auto [w, h] : {std::pair{57, 11}, {19, 40}, {5, 3}, {64, 2}, {1, 1}, {200, 150}}) {
      const Image out = resize_lanczos(src, w, h);
      EXPECT_TRUE(SameImage(out, Image(w, h, v))) << int(v) << " " << w << "x" << h;
    }
  }
}

// Resizing only the width must treat every row independently (and the height only every
// column): a row-constant image keeps constant rows.
TEST(ResizeLanczos, OneAxisResizeIsSeparable) {
  Image src(23, 17);
  for (int y = 0; y < 17; ++y)
    for (int x = 0; x < 23; ++x)
      for (int c = 0; c < 3; ++c) src.at(x, y)[c] = uint8_t(y * 13 + c * 50);
  const Image out = resize_lanczos(src, 71, 17);
  for (int y = 0; y < 17; ++y)
    for (int x = 0; x < 71; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(out.at(x, y)[c], src.at(0, y)[c]) << x << "," << y;
}

// Independent floating-point model of the same filter (window, lanczos-3 kernel scaled by
// the downscale factor, normalised weights, two passes with the intermediate rounded and
// clipped to uint8). Pillow's weights are 22-bit fixed point, so only +-1 differences are
// allowed, and they must be rare.
TEST(ResizeLanczos, AgreesWithFloatModelWithinOne) {
  auto lanczos = [](double x) {
    auto sinc = [](double t) { return t == 0 ? 1.0 : std::sin(M_PI * t) / (M_PI * t); };
    return (x >= -3 && x < 3) ? sinc(x) * sinc(x / 3) : 0.0;
  };
  auto weights = [&](int in, int out) {
    std::vector<std::vector<std::pair<int, double>>> w(out);
    const double scale = double(in) / out, fs = std::max(scale, 1.0), support = 3 * fs;
    for (int i = 0; i < out; ++i) {
      const double center = (i + 0.5) * scale;
      double sum = 0;
      for (int x = std::max(0, int(center - support + 0.5));
           x < std::min(in, int(center + support + 0.5)); ++x) {
        const double v = lanczos((x - center + 0.5) / fs);
        w[i].push_back({x, v});
        sum += v;
      }
      for (auto& p : w[i]) p.second /= sum;
    }
    return w;
  };
  const Image src = random_image(45, 38, 7);
  for (auto [W, H] : {std::pair{20, 16}, {90, 76}, {45, 100}, {131, 9}, {11, 38}}) {
    const auto wx = weights(src.width, W), wy = weights(src.height, H);
    std::vector<double> tmp(size_t(W) * src.height * 3);
    for (int y = 0; y < src.height; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < 3; ++c) {
          double s = 0;
          for (auto [sx, v] : wx[x]) s += v * src.at(sx, y)[c];
          tmp[(size_t(y) * W + x) * 3 + c] = std::clamp(std::floor(s + 0.5), 0.0, 255.0);
        }
    const Image got = resize_lanczos(src, W, H);
    int max_diff = 0, off_by_one = 0;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < 3; ++c) {
          double s = 0;
          for (auto [sy, v] : wy[y]) s += v * tmp[(size_t(sy) * W + x) * 3 + c];
          const int ref = int(std::clamp(std::floor(s + 0.5), 0.0, 255.0));
          const int d = std::abs(ref - int(got.at(x, y)[c]));
          max_diff = std::max(max_diff, d);
          off_by_one += d == 1;
        }
    EXPECT_LE(max_diff, 1) << W << "x" << H;
    EXPECT_LT(off_by_one, W * H * 3 / 50) << W << "x" << H;
  }
}

TEST(ResizeLanczos, RejectsBadArguments) {
  const Image src(4, 4, 9);
  EXPECT_THROW(resize_lanczos(src, 0, 4), Error);
  EXPECT_THROW(resize_lanczos(src, 4, -1), Error);
  Image broken(4, 4);
  broken.rgb.resize(5);
  EXPECT_THROW(resize_lanczos(broken, 2, 2), Error);
  EXPECT_THROW(resize_lanczos(Image(), 2, 2), Error);
}

}  // namespace
}  // namespace onereward::image
