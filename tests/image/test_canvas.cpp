// extend_canvas against the golden extend cases, and paste_back.
#include "engine/image/image.h"
#include "engine/util/status.h"
#include "tests/image/test_util.h"

namespace onereward::image {
namespace {

using testing::golden_case;
using testing::SameImage;

Image crop(const Image& src, int x0, int y0, int w, int h) {
  Image out(w, h);
  for (int y = 0; y < h; ++y) std::copy_n(src.at(x0, y0 + y), size_t(w) * 3, out.at(0, y));
  return out;
}

// The reference's extend inputs: original content in the centre, flat grey 128 around it,
// mask white exactly on the grey area (checked: no overlap, no gap). Margins measured from
// image.png (bounding box of the non-grey pixels = bounding box of the black mask):
//   extend_prompt_onereward_64x96: 96x64 canvas, content 48x32 at (24,16): L,T,R,B = 24,16,24,16
//   extend_noprompt_base_96x64:    64x96 canvas, content 32x48 at (16,24): L,T,R,B = 16,24,16,24
TEST(ExtendCanvas, ReproducesGoldenExtendInputs) {
  struct Case {
    const char* name;
    int left, top, right, bottom;
  };
  for (const Case& c : {Case{"extend_prompt_onereward_64x96", 24, 16, 24, 16},
                        Case{"extend_noprompt_base_96x64", 16, 24, 16, 24}}) {
    SCOPED_TRACE(c.name);
    const Image image = read_file(golden_case(c.name, "image.png"));
    const Image mask = read_file(golden_case(c.name, "mask.png"));
    const int w = image.width - c.left - c.right, h = image.height - c.top - c.bottom;
    const Canvas canvas = extend_canvas(crop(image, c.left, c.top, w, h), c.left, c.top,
                                        c.right, c.bottom);
    EXPECT_TRUE(SameImage(canvas.image, image));
    EXPECT_TRUE(SameImage(canvas.mask, mask));
  }
}

TEST(ExtendCanvas, ZeroMarginsAndValidation) {
  const Image src(5, 4, 200);
  const Canvas same = extend_canvas(src, 0, 0, 0, 0);
  EXPECT_TRUE(SameImage(same.image, src));
  EXPECT_TRUE(SameImage(same.mask, Image(5, 4, 0)));
  const Canvas one_side = extend_canvas(src, 0, 0, 3, 0);
  EXPECT_EQ(one_side.image.width, 8);
  EXPECT_EQ(one_side.image.at(7, 3)[0], 128);
  EXPECT_EQ(one_side.mask.at(7, 3)[2], 255);
  EXPECT_EQ(one_side.mask.at(4, 3)[2], 0);
  EXPECT_THROW(extend_canvas(src, -1, 0, 0, 0), Error);
  EXPECT_THROW(extend_canvas(Image(), 1, 1, 1, 1), Error);
}

TEST(PasteBack, TakesGeneratedPixelsWhereTheMaskIsSet) {
  const Image original(3, 1, 10), generated(3, 1, 250);
  Image mask(3, 1, 0);
  std::fill_n(mask.at(1, 0), 3, uint8_t(128));  // luma 128 -> binarized 1
  std::fill_n(mask.at(2, 0), 3, uint8_t(127));  // luma 127 -> 0
  const Image out = paste_back(original, generated, mask);
  EXPECT_EQ(out.at(0, 0)[0], 10);
  EXPECT_EQ(out.at(1, 0)[0], 250);
  EXPECT_EQ(out.at(2, 0)[0], 10);
  EXPECT_THROW(paste_back(original, Image(2, 1), mask), Error);
}

}  // namespace
}  // namespace onereward::image
