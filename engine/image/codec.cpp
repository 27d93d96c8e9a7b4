// PNG / JPEG / WebP decoding and encoding through OpenCV's imgcodecs (libpng, libjpeg-turbo
// and libwebp underneath: the same libraries Pillow uses), plus the PIL load_image
// semantics OpenCV does not give by itself (see codec.h). OpenCV stays inside this file.
#include "engine/image/codec.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "engine/image/container.h"
#include "engine/image/transform.h"
#include "engine/util/status.h"

namespace onereward::image {
namespace {

const char* format_name(Format f) {
  switch (f) {
    case Format::kPng: return "PNG";
    case Format::kJpeg: return "JPEG";
    case Format::kWebp: return "WebP";
  }
  return "?";
}

// 8-bit BGR (OpenCV's order) -> our interleaved RGB.
Image from_bgr(const cv::Mat& bgr) {
  Image img(bgr.cols, bgr.rows);
  for (int y = 0; y < bgr.rows; ++y) {
    const uint8_t* s = bgr.ptr<uint8_t>(y);
    uint8_t* d = img.at(0, y);
    for (int x = 0; x < bgr.cols; ++x, s += 3, d += 3) {
      d[0] = s[2];
      d[1] = s[1];
      d[2] = s[0];
    }
  }
  return img;
}

cv::Mat to_bgr(const Image& img) {
  cv::Mat bgr(img.height, img.width, CV_8UC3);
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* s = img.at(0, y);
    uint8_t* d = bgr.ptr<uint8_t>(y);
    for (int x = 0; x < img.width; ++x, s += 3, d += 3) {
      d[0] = s[2];
      d[1] = s[1];
      d[2] = s[0];
    }
  }
  return bgr;
}

}  // namespace

Image decode(const uint8_t* data, size_t size, int64_t max_pixels) {
  check_arg(data != nullptr && size > 0, "image is empty");
  check_arg(size <= size_t(INT32_MAX), "image file is larger than 2 GiB");
  const auto hdr = detail::read_header(data, size);
  check_arg(hdr.has_value(), "image is not a recognisable PNG, JPEG or WebP file");
  const int64_t pixels = int64_t(hdr->width) * hdr->height;
  if (max_pixels > 0) {
    check_arg(pixels <= max_pixels, std::string(format_name(hdr->format)) + " image is " +
                                        std::to_string(hdr->width) + "x" +
                                        std::to_string(hdr->height) + ", more than " +
                                        std::to_string(max_pixels) + " pixels");
  }
  if (hdr->format == Format::kJpeg) {
    check_arg(detail::jpeg_complete(data, size), "JPEG image is truncated (no end marker)");
  }

  cv::Mat bgr;
  try {
    const cv::Mat buf(1, int(size), CV_8UC1,
                      const_cast<uint8_t*>(data));
    // IMREAD_COLOR: 8-bit BGR; alpha stripped (no compositing), grey replicated, palette
    // expanded, 16-bit reduced to the high byte. Orientation is applied by us below, the
    // PIL way, for every format.
    bgr = cv::imdecode(buf, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw_error(StatusCode::kInvalidArgument,
                std::string("cannot decode ") + format_name(hdr->format) + " image: " + e.what());
  }
  check_arg(!bgr.empty() && bgr.type() == CV_8UC3,
            std::string("cannot decode ") + format_name(hdr->format) +
                " image (corrupt, truncated or unsupported variant)");
  check_arg(bgr.cols == hdr->width && bgr.rows == hdr->height,
            std::string(format_name(hdr->format)) + " image decoded to an unexpected size");
  return detail::apply_orientation(from_bgr(bgr), hdr->orientation);
}

Image read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error(StatusCode::kNotFound, "cannot open image file " + path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  try {
    return decode(bytes.data(), bytes.size());
  } catch (const Error& e) {
    throw_error(e.code(), path + ": " + e.what());
  }
}

std::vector<uint8_t> encode(const Image& image, Format format, int quality) {
  check_image(image, "encode");
  std::string ext;
  std::vector<int> params;
  switch (format) {
    case Format::kPng:
      ext = ".png";
      params = {cv::IMWRITE_PNG_COMPRESSION, 6};  // zlib's default level
      break;
    case Format::kJpeg:
      check_arg(quality >= 1 && quality <= 100, "JPEG quality must be in 1..100");
      ext = ".jpg";
      params = {cv::IMWRITE_JPEG_QUALITY, quality};
      break;
    case Format::kWebp:
      check_arg(quality >= 1 && quality <= 101, "WebP quality must be in 1..101 (101 = lossless)");
      ext = ".webp";
      params = {cv::IMWRITE_WEBP_QUALITY, quality};
      break;
  }
  std::vector<uint8_t> out;
  try {
    if (!cv::imencode(ext, to_bgr(image), out, params)) out.clear();
  } catch (const cv::Exception& e) {
    throw_error(StatusCode::kInternal, std::string("cannot encode ") + format_name(format) +
                                           ": " + e.what());
  }
  if (out.empty()) throw_error(StatusCode::kInternal, std::string("cannot encode ") + format_name(format));
  return out;
}

std::optional<Format> format_from_extension(const std::string& path) {
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return std::nullopt;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == "png") return Format::kPng;
  if (ext == "jpg" || ext == "jpeg") return Format::kJpeg;
  if (ext == "webp") return Format::kWebp;
  return std::nullopt;
}

void write_file(const Image& image, const std::string& path, int quality) {
  const auto fmt = format_from_extension(path);
  check_arg(fmt.has_value(), "cannot tell the image format from the file name " + path +
                                 " (use .png, .jpg, .jpeg or .webp)");
  const std::vector<uint8_t> bytes = encode(image, *fmt, quality);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw_error(StatusCode::kInvalidArgument, "cannot write image file " + path);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) throw_error(StatusCode::kInternal, "error writing image file " + path);
}

}  // namespace onereward::image
