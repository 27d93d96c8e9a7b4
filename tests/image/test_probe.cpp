// probe(): size from headers only, for every container variant, and safe on any prefix.
#include <random>

#include "engine/util/status.h"

#include "engine/image/image.h"
#include "tests/image/test_util.h"

namespace onereward::image {
namespace {

using testing::data_path;
using testing::read_bytes;

struct Expect {
  const char* file;
  Format format;
  int width, height;
};

// Files produced by Pillow (gen_resize_cases.py): photo* are 37x29, orient* are 13x7
// stored, 7x13 after orientations 5..8.
const Expect kFiles[] = {
    {"decode/photo_420.jpg", Format::kJpeg, 37, 29},
    {"decode/photo_444_progressive.jpg", Format::kJpeg, 37, 29},  // SOF2
    {"decode/gray.jpg", Format::kJpeg, 37, 29},
    {"decode/cmyk.jpg", Format::kJpeg, 37, 29},
    {"decode/orient6.jpg", Format::kJpeg, 7, 13},                 // APP1 Exif before SOF
    {"decode/rgba.png", Format::kPng, 37, 29},
    {"decode/orient3.png", Format::kPng, 13, 7},
    {"decode/orient5.png", Format::kPng, 7, 13},                  // eXIf chunk
    {"decode/xmp8.png", Format::kPng, 7, 13},                     // iTXt XMP
    {"decode/lossy.webp", Format::kWebp, 37, 29},                 // VP8
    {"decode/lossless.webp", Format::kWebp, 37, 29},              // VP8L
    {"decode/lossy_alpha.webp", Format::kWebp, 37, 29},           // VP8X + ALPH
    {"decode/orient7.webp", Format::kWebp, 7, 13},                // VP8X + EXIF
    {"noise_61x47.png", Format::kPng, 61, 47},
};

TEST(Probe, ReadsSizeOfEveryContainerVariant) {
  for (const auto& e : kFiles) {
    SCOPED_TRACE(e.file);
    const auto bytes = read_bytes(data_path(std::string("image/") + e.file));
    const auto h = probe(bytes.data(), bytes.size());
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->format, e.format);
    EXPECT_EQ(h->width, e.width);
    EXPECT_EQ(h->height, e.height);
    // And it is the size decode() returns.
    const Image d = decode(bytes);
    EXPECT_EQ(d.width, e.width);
    EXPECT_EQ(d.height, e.height);
  }
}

TEST(Probe, ProgressiveJpegReallyHasSof2) {
  const auto b = read_bytes(data_path("image/decode/photo_444_progressive.jpg"));
  bool sof2 = false;
  for (size_t i = 0; i + 1 < b.size(); ++i) sof2 |= b[i] == 0xFF && b[i + 1] == 0xC2;
  EXPECT_TRUE(sof2);
}

TEST(Probe, JpegSofAfterLargeSegments) {
  Image src(50, 30, 77);
  std::vector<uint8_t> jpg = encode(src, Format::kJpeg, 80);
  // COM segment with 0xFF bytes inside, and a 60 KB APP2, both before the SOF; plus fill
  // bytes (extra 0xFF) before a marker.
  std::vector<uint8_t> com = {0xFF, 0xFE, 0x00, 0x08, 0xFF, 0xC0, 0xFF, 0xD9, 0x01, 0x02};
  std::vector<uint8_t> app2 = {0xFF, 0xFF, 0xE2, 0xEA, 0x62};  // length 60002
  app2.resize(app2.size() + 60000, 0xC0);
  jpg.insert(jpg.begin() + 2, app2.begin(), app2.end());
  jpg.insert(jpg.begin() + 2, com.begin(), com.end());
  const auto h = probe(jpg.data(), jpg.size());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->format, Format::kJpeg);
  EXPECT_EQ(h->width, 50);
  EXPECT_EQ(h->height, 30);
  EXPECT_EQ(decode(jpg).width, 50);
}

TEST(Probe, EncodedImagesOfEachFormat) {
  Image src(123, 45, 10);
  for (Format f : {Format::kPng, Format::kJpeg, Format::kWebp}) {
    for (int q : {80, 101}) {
      if (q == 101 && f != Format::kWebp) continue;
      const auto bytes = encode(src, f, q);
      const auto h = probe(bytes.data(), bytes.size());
      ASSERT_TRUE(h.has_value()) << int(f);
      EXPECT_EQ(h->format, f);
      EXPECT_EQ(h->width, 123);
      EXPECT_EQ(h->height, 45);
    }
  }
}

TEST(Probe, GarbageAndEmptyGiveNullopt) {
  EXPECT_FALSE(probe(nullptr, 0).has_value());
  EXPECT_FALSE(probe(nullptr, 100).has_value());
  const uint8_t one = 0xFF;
  EXPECT_FALSE(probe(&one, 1).has_value());
  std::mt19937 gen(11);
  for (int t = 0; t < 200; ++t) {
    std::vector<uint8_t> g(size_t(gen() % 300));
    for (auto& v : g) v = uint8_t(gen());
    EXPECT_FALSE(probe(g.data(), g.size()).has_value());
  }
  // Valid magic, invalid header content.
  std::vector<uint8_t> png0 = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                               'I', 'H', 'D', 'R', 0, 0, 0, 0, 0, 0, 0, 5};  // width 0
  EXPECT_FALSE(probe(png0.data(), png0.size()).has_value());
  std::vector<uint8_t> jpeg_h0 = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 0, 0, 16, 3, 1, 0x11, 0};
  EXPECT_FALSE(probe(jpeg_h0.data(), jpeg_h0.size()).has_value());  // height 0 (DNL)
  std::vector<uint8_t> riff = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P',
                               'A', 'B', 'C', 'D', 0, 0, 0, 0};
  EXPECT_FALSE(probe(riff.data(), riff.size()).has_value());
}

// Every prefix of every file: no read outside the buffer (each prefix lives in its own
// exactly-sized allocation, so a sanitizer/valgrind run would flag overreads), and the
// answer is either nullopt or the full file's answer.
TEST(Probe, TruncatedPrefixesAreSafe) {
  for (const auto& e : kFiles) {
    SCOPED_TRACE(e.file);
    const auto bytes = read_bytes(data_path(std::string("image/") + e.file));
    for (size_t n = 0; n <= bytes.size(); ++n) {
      std::unique_ptr<uint8_t[]> buf(new uint8_t[std::max<size_t>(n, 1)]);
      std::copy_n(bytes.begin(), n, buf.get());
      const auto h = probe(n ? buf.get() : nullptr, n);
      if (!h) continue;
      EXPECT_EQ(h->format, e.format) << n;
      // Orientation metadata may lie past the cut: either orientation is acceptable.
      const bool same = h->width == e.width && h->height == e.height;
      const bool transposed = h->width == e.height && h->height == e.width;
      EXPECT_TRUE(same || transposed) << "prefix " << n << ": " << h->width << "x" << h->height;
    }
  }
}

// Randomly corrupted files: probe must stay in bounds, decode must either succeed or throw
// onereward::Error (never crash or throw anything else). max_pixels keeps a corrupted
// header from asking for a giant allocation, as a server would.
TEST(Probe, CorruptedFilesNeverCrash) {
  std::mt19937 gen(99);
  for (const auto& e : kFiles) {
    SCOPED_TRACE(e.file);
    const auto bytes = read_bytes(data_path(std::string("image/") + e.file));
    for (int t = 0; t < 60; ++t) {
      std::vector<uint8_t> m = bytes;
      const int flips = 1 + int(gen() % 4);
      for (int f = 0; f < flips; ++f) {
        // Mostly near the start, where the headers are.
        const size_t at = (gen() % 2) ? gen() % std::min<size_t>(m.size(), 64) : gen() % m.size();
        m[at] = uint8_t(gen());
      }
      (void)probe(m.data(), m.size());
      try {
        const Image d = decode(m.data(), m.size(), int64_t(1) << 20);
        EXPECT_EQ(d.rgb.size(), d.pixels() * 3);
      } catch (const Error&) {
      }
    }
  }
}

}  // namespace
}  // namespace onereward::image
