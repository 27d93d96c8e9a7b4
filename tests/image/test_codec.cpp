// decode / encode / files: PIL load_image semantics (checked against Pillow 9.4 outputs),
// EXIF orientation, error handling on bad input.
#include <cstdio>
#include <random>

#include "engine/image/image.h"
#include "engine/util/status.h"
#include "tests/image/test_util.h"

namespace onereward::image {
namespace {

using testing::data_path;
using testing::SameImage;

Image gradient(int w, int h) {
  Image img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = uint8_t(x * 255 / std::max(1, w - 1));
      p[1] = uint8_t(y * 255 / std::max(1, h - 1));
      p[2] = uint8_t((x * 7 + y * 3) & 0xff);
    }
  return img;
}

StatusCode decode_error(const std::vector<uint8_t>& bytes) {
  try {
    decode(bytes);
  } catch (const Error& e) {
    return e.code();
  }
  return StatusCode::kOk;
}

// A JPEG APP1 segment "Exif\0\0" + big-endian TIFF with IFD0 = {Orientation (SHORT)}.
std::vector<uint8_t> exif_app1(int orientation) {
  std::vector<uint8_t> tiff = {'M', 'M', 0, 42, 0, 0, 0, 8,  // header, IFD0 at 8
                               0, 1,                         // one entry
                               0x01, 0x12, 0, 3, 0, 0, 0, 1,  // tag 0x0112, SHORT, count 1
                               0, uint8_t(orientation), 0, 0,  // value (left-justified)
                               0, 0, 0, 0};                    // no next IFD
  std::vector<uint8_t> body = {'E', 'x', 'i', 'f', 0, 0};
  body.insert(body.end(), tiff.begin(), tiff.end());
  const size_t len = body.size() + 2;
  std::vector<uint8_t> seg = {0xFF, 0xE1, uint8_t(len >> 8), uint8_t(len & 0xff)};
  seg.insert(seg.end(), body.begin(), body.end());
  return seg;
}

std::vector<uint8_t> insert_after_soi(std::vector<uint8_t> jpeg, const std::vector<uint8_t>& seg) {
  jpeg.insert(jpeg.begin() + 2, seg.begin(), seg.end());
  return jpeg;
}

// tests/data/image/decode_cases.txt: for each file, what Pillow 9.4's
// ImageOps.exif_transpose(Image.open(f)).convert("RGB") returned. Covers JPEG 4:2:0 /
// 4:2:2 / progressive 4:4:4 / grey / CMYK (+-1, see below), PNG RGBA / LA / grey / 1-bit / palette with
// tRNS / 16-bit RGB, WebP lossy / lossless / lossy+alpha, and EXIF orientations 1..8
// (PNG eXIf), 6 (JPEG APP1), 7 (WebP EXIF chunk), and an XMP tiff:Orientation (PNG iTXt).
TEST(Decode, MatchesPillowLoadImage) {
  const auto rows = testing::read_manifest(data_path("image/decode_cases.txt"));
  ASSERT_GE(rows.size(), 20u);
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), 2u);
    SCOPED_TRACE(r[0]);
    const Image want = read_file(data_path("image/" + r[1]));
    const Image got = read_file(data_path("image/" + r[0]));
    if (r[0].find("cmyk") == std::string::npos) {
      EXPECT_TRUE(SameImage(got, want));
      continue;
    }
    // CMYK JPEG: OpenCV converts with nk - (c*nk >> 8), Pillow's cmyk2rgb with
    // nk - round(c*nk/255): known, documented difference of at most 1.
    ASSERT_EQ(got.width, want.width);
    ASSERT_EQ(got.height, want.height);
    int max_diff = 0;
    for (size_t i = 0; i < got.rgb.size(); ++i)
      max_diff = std::max(max_diff, std::abs(int(got.rgb[i]) - int(want.rgb[i])));
    EXPECT_LE(max_diff, 1);
  }
}

TEST(Decode, Gray16KeepsTheHighByte) {
  // Pixel values 0, 255, 256, 1000, 32768, 65535 (see gen_resize_cases.py). Pillow would
  // clip them to 0,255,255,255,255,255; we keep value >> 8 like every other 16-bit input.
  const Image img = read_file(data_path("image/decode_extra/gray16_0_255_256_1000_32768_65535.png"));
  ASSERT_EQ(img.width, 6);
  ASSERT_EQ(img.height, 1);
  const int want[6] = {0, 0, 1, 3, 128, 255};
  for (int x = 0; x < 6; ++x)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(img.at(x, 0)[c], want[x]) << x;
}

TEST(Decode, JpegExifOrientationIsApplied) {
  const Image src = gradient(20, 10);
  const std::vector<uint8_t> plain = encode(src, Format::kJpeg, 95);
  const Image base = decode(plain);
  ASSERT_EQ(base.width, 20);
  ASSERT_EQ(base.height, 10);

  // Orientation 6 = ROTATE_270 (90 degrees clockwise): out(x, y) = in(y, H-1-x).
  const std::vector<uint8_t> rotated = insert_after_soi(plain, exif_app1(6));
  const Image r = decode(rotated);
  ASSERT_EQ(r.width, 10);
  ASSERT_EQ(r.height, 20);
  for (int y = 0; y < r.height; ++y)
    for (int x = 0; x < r.width; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(r.at(x, y)[c], base.at(y, base.height - 1 - x)[c]) << x << "," << y;
  const auto h = probe(rotated.data(), rotated.size());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->width, 10);
  EXPECT_EQ(h->height, 20);

  // Every orientation: sizes transpose for 5..8; 1 and out-of-range values change nothing.
  for (int o : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
    const std::vector<uint8_t> jpg = insert_after_soi(plain, exif_app1(o));
    const Image d = decode(jpg);
    const bool swap = o >= 5 && o <= 8;
    EXPECT_EQ(d.width, swap ? 10 : 20) << o;
    EXPECT_EQ(d.height, swap ? 20 : 10) << o;
    if (o <= 1 || o == 9) EXPECT_TRUE(SameImage(d, base)) << o;
    const auto ph = probe(jpg.data(), jpg.size());
    ASSERT_TRUE(ph.has_value());
    EXPECT_EQ(ph->width, d.width) << o;
    EXPECT_EQ(ph->height, d.height) << o;
  }
  // Only the first Exif APP1 counts (PIL: `if "exif" not in self.info`).
  const Image first = decode(insert_after_soi(insert_after_soi(plain, exif_app1(3)), exif_app1(6)));
  EXPECT_EQ(first.width, 10);
}

TEST(Decode, PngRgbRoundTripIsExact) {
  std::mt19937 gen(3);
  Image src(31, 17);
  for (auto& v : src.rgb) v = uint8_t(gen());
  EXPECT_TRUE(SameImage(decode(encode(src, Format::kPng)), src));
}

TEST(Decode, WebpRoundTrip) {
  const Image src = gradient(40, 24);
  const std::vector<uint8_t> lossless = encode(src, Format::kWebp, 101);
  const auto hl = probe(lossless.data(), lossless.size());
  ASSERT_TRUE(hl.has_value());
  EXPECT_EQ(hl->format, Format::kWebp);
  EXPECT_TRUE(SameImage(decode(lossless), src));

  const std::vector<uint8_t> lossy = encode(src, Format::kWebp, 90);
  const Image d = decode(lossy);
  ASSERT_EQ(d.width, 40);
  ASSERT_EQ(d.height, 24);
  double err = 0;
  for (size_t i = 0; i < d.rgb.size(); ++i) err += std::abs(int(d.rgb[i]) - int(src.rgb[i]));
  EXPECT_LT(err / double(d.rgb.size()), 6.0);
}

TEST(Decode, RejectsEmptyGarbageAndUnsupported) {
  EXPECT_EQ(decode_error({}), StatusCode::kInvalidArgument);
  EXPECT_THROW(decode(nullptr, 10), Error);
  std::mt19937 gen(5);
  std::vector<uint8_t> garbage(4096);
  for (auto& v : garbage) v = uint8_t(gen());
  EXPECT_EQ(decode_error(garbage), StatusCode::kInvalidArgument);
  // A valid signature followed by garbage.
  std::vector<uint8_t> fake_png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  fake_png.insert(fake_png.end(), garbage.begin(), garbage.end());
  EXPECT_EQ(decode_error(fake_png), StatusCode::kInvalidArgument);
  std::vector<uint8_t> fake_jpeg = {0xFF, 0xD8, 0xFF};
  fake_jpeg.insert(fake_jpeg.end(), garbage.begin(), garbage.end());
  EXPECT_EQ(decode_error(fake_jpeg), StatusCode::kInvalidArgument);
  // BMP is a format OpenCV could read, but not one we accept.
  std::vector<uint8_t> bmp = {'B', 'M'};
  bmp.insert(bmp.end(), garbage.begin(), garbage.end());
  EXPECT_EQ(decode_error(bmp), StatusCode::kInvalidArgument);
}

TEST(Decode, RejectsTruncatedFiles) {
  const Image src = gradient(64, 48);
  for (Format f : {Format::kPng, Format::kJpeg, Format::kWebp}) {
    const std::vector<uint8_t> full = encode(src, f, f == Format::kWebp ? 101 : 90);
    ASSERT_NO_THROW(decode(full));
    // Cut anywhere from inside the header to just before the end.
    for (size_t cut : {size_t(1), size_t(8), size_t(30), full.size() / 3, full.size() / 2,
                       full.size() - 20, full.size() - 2}) {
      std::vector<uint8_t> part(full.begin(), full.begin() + long(cut));
      EXPECT_EQ(decode_error(part), StatusCode::kInvalidArgument)
          << "format " << int(f) << " cut at " << cut << " of " << full.size();
    }
  }
}

TEST(Decode, MaxPixelsIsCheckedBeforeDecoding) {
  const std::vector<uint8_t> png = encode(gradient(64, 48), Format::kPng);
  EXPECT_NO_THROW(decode(png, 64 * 48));
  try {
    decode(png, 64 * 48 - 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("64x48"), std::string::npos) << e.what();
  }
}

TEST(Files, WriteAndReadBackByExtension) {
  const Image src = gradient(32, 16);
  const std::string dir = ::testing::TempDir();
  for (const char* name : {"rt.png", "rt.PNG", "rt.jpg", "rt.jpeg", "rt.webp"}) {
    const std::string path = dir + "/onereward_image_" + name;
    write_file(src, path);
    const Image back = read_file(path);
    EXPECT_EQ(back.width, 32) << name;
    EXPECT_EQ(back.height, 16) << name;
    if (std::string(name).find(".png") != std::string::npos ||
        std::string(name).find(".PNG") != std::string::npos)
      EXPECT_TRUE(SameImage(back, src));
    std::remove(path.c_str());
  }
  EXPECT_THROW(write_file(src, dir + "/onereward_image_rt.bmp"), Error);
  EXPECT_THROW(write_file(src, dir + "/no_extension"), Error);
  try {
    read_file(dir + "/onereward_image_does_not_exist.png");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kNotFound);
  }
}

TEST(Files, FormatFromExtension) {
  EXPECT_EQ(format_from_extension("a/b.JPG"), Format::kJpeg);
  EXPECT_EQ(format_from_extension("x.webp"), Format::kWebp);
  EXPECT_EQ(format_from_extension("x.png"), Format::kPng);
  EXPECT_EQ(format_from_extension("dir.png/file"), std::nullopt);
  EXPECT_EQ(format_from_extension("x.gif"), std::nullopt);
}

}  // namespace
}  // namespace onereward::image
