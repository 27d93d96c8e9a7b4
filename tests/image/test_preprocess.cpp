// VaeImageProcessor preprocessing / numpy_to_pil and PIL luma, against the golden
// pipeline cases (all of them) and Pillow-generated data.
#include <cmath>
#include <filesystem>
#include <limits>

#include "engine/image/image.h"
#include "engine/util/status.h"
#include "tests/image/test_util.h"

namespace onereward::image {
namespace {

using testing::data_path;
using testing::golden_case;
using testing::SameImage;

struct PipelineCase {
  std::string name;
  int width, height;
};

// Every golden pipeline case (case.json "kind": "pipeline") with its call width/height.
std::vector<PipelineCase> pipeline_cases() {
  std::vector<PipelineCase> out;
  for (const auto& dir : std::filesystem::directory_iterator(data_path("golden/cases"))) {
    const auto json_path = dir.path() / "case.json";
    if (!std::filesystem::exists(json_path)) continue;
    const auto bytes = testing::read_bytes(json_path.string());
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.end());
    if (j.value("kind", "") != "pipeline") continue;
    out.push_back({dir.path().filename().string(), j.at("width").get<int>(),
                   j.at("height").get<int>()});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

TEST(Preprocess, GoldenInitAndMaskImagesOfEveryPipelineCase) {
  const auto cases = pipeline_cases();
  ASSERT_GE(cases.size(), 11u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto ref = testing::read_safetensors_f32(golden_case(c.name, "expected.safetensors"));
    const auto& init = ref.at("init_image");
    const auto& mask = ref.at("mask_image");
    ASSERT_EQ(init.shape, (std::vector<int64_t>{1, 3, c.height, c.width}));
    ASSERT_EQ(mask.shape, (std::vector<int64_t>{1, 1, c.height, c.width}));

    const std::vector<float> x =
        preprocess_image(read_file(golden_case(c.name, "image.png")), c.width, c.height);
    ASSERT_EQ(x.size(), init.data.size());
    size_t diffs = 0;
    for (size_t i = 0; i < x.size(); ++i) diffs += x[i] != init.data[i];
    EXPECT_EQ(diffs, 0u) << "init_image not bit-identical";

    const std::vector<float> m =
        preprocess_mask(read_file(golden_case(c.name, "mask.png")), c.width, c.height);
    ASSERT_EQ(m.size(), mask.data.size());
    diffs = 0;
    for (size_t i = 0; i < m.size(); ++i) diffs += m[i] != mask.data[i];
    EXPECT_EQ(diffs, 0u) << "mask_image differs";
  }
}

// numpy_to_pil of the reference's `image` output is expected.png (expected_<i>.png).
TEST(ToImage, GoldenExpectedPngOfEveryPipelineCase) {
  for (const auto& c : pipeline_cases()) {
    SCOPED_TRACE(c.name);
    const auto ref = testing::read_safetensors_f32(golden_case(c.name, "expected.safetensors"));
    const auto& img = ref.at("image");  // [B, H, W, 3] in [0, 1]
    ASSERT_EQ(img.shape.size(), 4u);
    const int64_t B = img.shape[0], H = img.shape[1], W = img.shape[2];
    for (int64_t b = 0; b < B; ++b) {
      std::vector<float> chw(size_t(3 * H * W));
      for (int64_t i = 0; i < H * W; ++i)
        for (int c3 = 0; c3 < 3; ++c3) chw[c3 * H * W + i] = img.data[(b * H * W + i) * 3 + c3];
      const std::string png = b == 0 ? "expected.png" : "expected_" + std::to_string(b) + ".png";
      EXPECT_TRUE(SameImage(to_image(chw.data(), int(W), int(H)), read_file(golden_case(c.name, png))))
          << png;
    }
  }
}

// (x * 255).round() in float32 numpy: the product is rounded to float32 first, then ties go
// to even. Find, for every k, float32 inputs whose float32 product is exactly k + 0.5.
TEST(ToImage, RoundsHalfToEvenOnTheFloat32Product) {
  int ties = 0, double_would_differ = 0;
  for (int k = 0; k < 255; ++k) {
    const float target = float(k) + 0.5f;
    float x = target / 255.0f;
    for (int step = 0; step < 8 && x * 255.0f > target; ++step) x = std::nextafter(x, 0.0f);
    for (int step = 0; step < 16 && x * 255.0f != target; ++step) x = std::nextafter(x, 1.0f);
    if (x * 255.0f != target) continue;  // no float32 input lands exactly on this tie
    ++ties;
    const float chw[3] = {x, x, x};
    const Image px = to_image(chw, 1, 1);
    const int want = (k % 2 == 0) ? k : k + 1;
    EXPECT_EQ(int(px.rgb[0]), want) << "k=" << k << " x=" << x;
    // Rounding the exact (double) product instead would give a different answer here.
    if (int(std::lround(double(x) * 255.0)) != want) ++double_would_differ;
  }
  EXPECT_GT(ties, 100);
  EXPECT_GT(double_would_differ, 10);

  const float edge[12] = {0.0f, 1.0f, -0.25f, 1.5f, std::numeric_limits<float>::quiet_NaN(),
                          0.5f / 255.0f * 0.999f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  // 4 pixels, planes of 4: R = edge[0..3], G = edge[4..7], B = edge[8..11].
  const Image e = to_image(edge, 4, 1);
  EXPECT_EQ(e.at(0, 0)[0], 0);
  EXPECT_EQ(e.at(1, 0)[0], 255);
  EXPECT_EQ(e.at(2, 0)[0], 0);    // clamped
  EXPECT_EQ(e.at(3, 0)[0], 255);  // clamped
  EXPECT_EQ(e.at(0, 0)[1], 0);    // NaN
  EXPECT_EQ(e.at(1, 0)[1], 0);
}

TEST(Luma, MatchesPillowConvertL) {
  const Image src = read_file(data_path("image/noise_61x47.png"));
  const Image want = read_file(data_path("image/luma/noise_61x47_L.png"));  // grey -> R=G=B
  const Gray got = to_luma(src);
  ASSERT_EQ(got.width, want.width);
  ASSERT_EQ(got.height, want.height);
  size_t diffs = 0;
  for (size_t i = 0; i < got.data.size(); ++i) diffs += got.data[i] != want.rgb[i * 3];
  EXPECT_EQ(diffs, 0u);
}

TEST(Luma, FixedPointFormula) {
  Image img(6, 1);
  const uint8_t px[6][3] = {{0, 0, 0}, {255, 255, 255}, {255, 0, 0},
                            {0, 255, 0}, {0, 0, 255}, {128, 128, 127}};
  for (int i = 0; i < 6; ++i) std::copy_n(px[i], 3, img.at(i, 0));
  const Gray g = to_luma(img);
  // (r*19595 + g*38470 + b*7471 + 0x8000) >> 16
  EXPECT_EQ(g.data[0], 0);
  EXPECT_EQ(g.data[1], 255);
  EXPECT_EQ(g.data[2], 76);   // (4996725 + 32768) >> 16
  EXPECT_EQ(g.data[3], 150);  // (9809850 + 32768) >> 16
  EXPECT_EQ(g.data[4], 29);   // (1905105 + 32768) >> 16
  EXPECT_EQ(g.data[5], 128);  // 0.299*128 + 0.587*128 + 0.114*127 = 127.886 -> 128
}

TEST(Preprocess, TargetSizeFloorsToTheMultiple) {
  const Image img(80, 72);
  EXPECT_EQ(target_size(img, 64, 64), std::make_pair(64, 64));
  EXPECT_EQ(target_size(img, 0, 0), std::make_pair(80, 64));      // None -> image size
  EXPECT_EQ(target_size(img, 1000, 1030), std::make_pair(992, 1024));
  EXPECT_EQ(target_size(img, 100, 90, 8), std::make_pair(96, 88));
  EXPECT_THROW(target_size(img, 15, 64), Error);
  EXPECT_THROW(target_size(Image(10, 10), 0, 0), Error);
}

TEST(Preprocess, NoResizeWhenSizeMatchesAndFloorsOtherwise) {
  Image img(32, 16);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 37);
  const auto x = preprocess_image(img, 32, 16);
  ASSERT_EQ(x.size(), 3u * 32 * 16);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 32 * 16; ++i) {
      const float v = float(img.rgb[i * 3 + c]) / 255.0f;
      ASSERT_EQ(x[c * 32 * 16 + i], 2.0f * v - 1.0f);
    }
  // 40x20 requested -> 32x16 (floored), so a 40x20 image is resized to 32x16.
  EXPECT_EQ(preprocess_image(Image(40, 20, 3), 40, 20).size(), 3u * 32 * 16);
  // Binarization threshold: luma 127 -> 0, 128 -> 1.
  Image m(16, 16, 127);
  m.at(3, 4)[0] = m.at(3, 4)[1] = m.at(3, 4)[2] = 128;
  const auto mask = preprocess_mask(m, 16, 16);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(mask[i], i == 4 * 16 + 3 ? 1.0f : 0.0f) << i;
}

}  // namespace
}  // namespace onereward::image
