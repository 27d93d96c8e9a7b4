// Internal: walking PNG / JPEG / WebP container structure without decoding pixels
// (format sniffing, header size, EXIF orientation). Every read is bounds-checked against
// the buffer, so these are safe on truncated or hostile input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "engine/image/types.h"

namespace onereward::image::detail {

/// Format from the magic bytes only.
std::optional<Format> sniff_format(const uint8_t* data, size_t size);

/// Stored (pre-orientation) size and EXIF orientation (1..8, 1 if none or unreadable).
struct RawHeader {
  Format format = Format::kPng;
  int width = 0;
  int height = 0;
  int orientation = 1;
};

/// Parses the headers; nullopt if the size cannot be determined. The orientation is
/// looked up the way Pillow 9.4's Image.getexif() finds it for load_image():
///  JPEG: the first APP1 segment starting "Exif\0" (before SOS);
///  PNG:  the eXIf chunk, else (if that has no Orientation tag) a tEXt/uncompressed iTXt
///        "XML:com.adobe.xmp" chunk containing tiff:Orientation="N" or tiff:Orientation>N;
///  WebP: the EXIF chunk of an extended (VP8X) file.
std::optional<RawHeader> read_header(const uint8_t* data, size_t size);

/// Orientation tag (0x0112, a single BYTE/SHORT/LONG) of IFD0 of a TIFF-structured EXIF
/// block (a leading "Exif\0\0" is skipped, as PIL's Exif.load does). nullopt when the tag
/// is absent or the block is unreadable (PIL would raise on a corrupt block; we ignore it).
/// The value is returned as stored (callers treat anything outside 2..8 as "no change").
std::optional<int> exif_orientation(const uint8_t* data, size_t size);

/// True when a JPEG's first SOS is followed, somewhere, by an EOI marker (FF D9). Entropy-
/// coded data cannot contain FF D9 (0xFF bytes are stuffed as FF 00), so its absence
/// means the file was cut short.
bool jpeg_complete(const uint8_t* data, size_t size);

}  // namespace onereward::image::detail
