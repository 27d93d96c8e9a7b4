// Encoded image <-> RGB pixels. Decoding follows what the Python reference does with an
// input file: diffusers.utils.load_image = PIL.Image.open -> ImageOps.exif_transpose ->
// convert("RGB"). Only PNG, JPEG and WebP are accepted (smaller attack surface than
// everything OpenCV could open).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/image/types.h"

namespace onereward::image {

/// Format and size from the container headers only (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X),
/// without decoding pixels, so a server can refuse huge images before decoding them.
/// The size is the one decode() returns: width/height are swapped when an EXIF
/// orientation of 5..8 is found (JPEG APP1 "Exif", PNG eXIf, WebP EXIF chunk; walking
/// the chunk/segment headers only). Never reads outside [data, data+size); returns
/// nullopt when the bytes are not a recognisable PNG/JPEG/WebP header.
std::optional<ImageHeader> probe(const uint8_t* data, size_t size);

/// PNG/JPEG/WebP -> 8-bit RGB, as PIL's load_image would produce it:
///  - alpha is dropped without compositing (PIL convert("RGB") from RGBA/LA/PA);
///  - grey is replicated to R=G=B; palettes are expanded;
///  - 16-bit samples keep their high byte (what PIL does for 16-bit RGB(A)/LA PNGs;
///    NOTE PIL opens 16-bit *grey* PNGs as mode "I" and convert("RGB") clips them to
///    255, which we deliberately do not copy);
///  - EXIF orientation (and, for PNG, an uncompressed XMP tiff:Orientation, as Pillow 9.4's
///    getexif does) is applied like ImageOps.exif_transpose;
///  - a JPEG whose entropy-coded data ends before the EOI marker is refused, like PIL
///    (libjpeg itself would silently pad it with grey).
///  - CMYK JPEGs may differ from PIL by 1 per sample (OpenCV's CMYK->RGB divides by 256
///    and truncates, Pillow's cmyk2rgb divides by 255 and rounds); all other inputs decode
///    bit-identically to Pillow 9.4 with the same libjpeg-turbo / libpng / libwebp.
/// Throws Error(kInvalidArgument) on empty, unrecognised, truncated or undecodable input,
/// and when max_pixels > 0 and width*height (from the headers) exceeds it.
Image decode(const uint8_t* data, size_t size, int64_t max_pixels = 0);
inline Image decode(const std::vector<uint8_t>& bytes, int64_t max_pixels = 0) {
  return decode(bytes.data(), bytes.size(), max_pixels);
}

/// Reads a whole file and decodes it (kNotFound if it cannot be opened).
Image read_file(const std::string& path);

/// RGB -> PNG (lossless), JPEG (quality 1..100, 4:2:0) or WebP (quality 1..100 lossy,
/// > 100 lossless, OpenCV's convention).
std::vector<uint8_t> encode(const Image& image, Format format, int quality = 95);

/// Encodes by the extension (.png, .jpg/.jpeg, .webp; case-insensitive) and writes the file.
void write_file(const Image& image, const std::string& path, int quality = 95);

/// Format from a file name's extension; nullopt if not one of ours.
std::optional<Format> format_from_extension(const std::string& path);

}  // namespace onereward::image
