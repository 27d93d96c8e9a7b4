// Header walking for PNG / JPEG / WebP: size and EXIF orientation without decoding.
//
// Every access goes through a bounds check against [data, data + size), because probe()
// runs on untrusted request bytes before anything else looks at them.
#include "engine/image/container.h"

#include <cstring>
#include <string_view>

#include "engine/image/codec.h"

namespace onereward::image::detail {
namespace {

// True if [off, off + n) lies inside a buffer of `size` bytes (overflow-safe).
bool in_bounds(size_t size, size_t off, size_t n) { return off <= size && n <= size - off; }

uint32_t be16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t be32(const uint8_t* p) { return (be16(p) << 16) | be16(p + 2); }
uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8); }
uint32_t le24(const uint8_t* p) { return le16(p) | (uint32_t(p[2]) << 16); }
uint32_t le32(const uint8_t* p) { return le24(p) | (uint32_t(p[3]) << 24); }

constexpr uint8_t kPngSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

bool positive_int(uint64_t v) { return v > 0 && v <= 0x7fffffffu; }

// ---------------------------------------------------------------------------------------
// PNG: signature, IHDR first; orientation from eXIf, else XMP text (see container.h).

// PIL (Image.getexif): re.search(r'tiff:Orientation(="|>)([0-9])', xmp) on the XMP text.
std::optional<int> xmp_orientation(std::string_view text) {
  constexpr std::string_view kKey = "tiff:Orientation";
  for (size_t pos = text.find(kKey); pos != std::string_view::npos;
       pos = text.find(kKey, pos + 1)) {
    std::string_view rest = text.substr(pos + kKey.size());
    size_t skip = 0;
    if (rest.size() >= 2 && rest[0] == '=' && rest[1] == '"') skip = 2;
    else if (!rest.empty() && rest[0] == '>') skip = 1;
    else continue;
    if (rest.size() > skip && rest[skip] >= '0' && rest[skip] <= '9') return rest[skip] - '0';
  }
  return std::nullopt;
}

// The XMP packet of a tEXt or iTXt chunk keyed "XML:com.adobe.xmp" (uncompressed only;
// PIL would also inflate a compressed iTXt/zTXt, which we do not).
std::optional<std::string_view> png_xmp_text(const uint8_t* chunk, size_t len, bool itxt) {
  constexpr std::string_view kKeyword = "XML:com.adobe.xmp";
  std::string_view s(reinterpret_cast<const char*>(chunk), len);
  if (s.size() < kKeyword.size() + 1 || s.substr(0, kKeyword.size()) != kKeyword ||
      s[kKeyword.size()] != '\0')
    return std::nullopt;
  s.remove_prefix(kKeyword.size() + 1);
  if (!itxt) return s;
  // iTXt: compression flag, compression method, language\0, translated keyword\0, text.
  if (s.size() < 2 || s[0] != 0) return std::nullopt;
  s.remove_prefix(2);
  for (int field = 0; field < 2; ++field) {
    size_t nul = s.find('\0');
    if (nul == std::string_view::npos) return std::nullopt;
    s.remove_prefix(nul + 1);
  }
  return s;
}

std::optional<RawHeader> png_header(const uint8_t* d, size_t size) {
  // signature(8) + IHDR length(4) + "IHDR"(4) + width(4) + height(4)
  if (!in_bounds(size, 0, 24) || std::memcmp(d + 12, "IHDR", 4) != 0) return std::nullopt;
  uint32_t w = be32(d + 16), h = be32(d + 20);
  if (!positive_int(w) || !positive_int(h)) return std::nullopt;
  RawHeader hdr{Format::kPng, int(w), int(h), 1};

  std::optional<int> exif, xmp;
  bool have_exif_block = false;
  size_t pos = 8;
  while (in_bounds(size, pos, 8)) {
    uint32_t len = be32(d + pos);
    const uint8_t* type = d + pos + 4;
    size_t body = pos + 8;
    if (len > 0x7fffffffu || !in_bounds(size, body, len)) break;  // truncated: stop here
    if (std::memcmp(type, "eXIf", 4) == 0 && !have_exif_block) {
      have_exif_block = true;  // PIL keeps the last one read; files carry one
      exif = exif_orientation(d + body, len);
    } else if (!xmp && (std::memcmp(type, "tEXt", 4) == 0 || std::memcmp(type, "iTXt", 4) == 0)) {
      if (auto text = png_xmp_text(d + body, len, type[0] == 'i')) xmp = xmp_orientation(*text);
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      break;
    }
    pos = body + size_t(len) + 4;  // + CRC
  }
  if (exif) hdr.orientation = *exif;
  else if (xmp) hdr.orientation = *xmp;
  return hdr;
}

// ---------------------------------------------------------------------------------------
// JPEG: marker segments from SOI until SOS; size from the first SOFn, orientation from
// the first APP1 "Exif\0" segment (PIL keeps the first: `if "exif" not in self.info`).

bool is_sof(uint8_t m) {
  // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

// Walks the segments; returns the offset of the first SOS marker's segment data (or
// `size` when none is found). Fills hdr's size/orientation as it goes.
size_t jpeg_walk(const uint8_t* d, size_t size, RawHeader* hdr, bool* have_sof) {
  bool have_exif = false;
  size_t pos = 2;  // after SOI
  while (pos < size) {
    // Junk before a marker is skipped, as PIL's JPEG plugin and libjpeg both do.
    while (pos < size && d[pos] != 0xFF) ++pos;
    while (pos < size && d[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= size) return size;
    uint8_t m = d[pos++];
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
    if (m == 0xD9) return size;                                         // EOI before SOS
    if (!in_bounds(size, pos, 2)) return size;
    size_t len = be16(d + pos);
    if (len < 2) return size;
    size_t body = pos + 2, body_len = len - 2;
    if (m == 0xDA) return body;  // SOS: entropy-coded data follows
    if (is_sof(m) && !*have_sof) {
      // precision(1) height(2) width(2); height 0 (defined later by DNL) is refused.
      if (body_len < 5 || !in_bounds(size, body, 5)) return size;
      uint32_t h = be16(d + body + 1), w = be16(d + body + 3);
      if (w == 0 || h == 0) return size;
      hdr->width = int(w);
      hdr->height = int(h);
      *have_sof = true;
    } else if (m == 0xE1 && !have_exif && body_len >= 5 && in_bounds(size, body, 5) &&
               std::memcmp(d + body, "Exif\0", 5) == 0) {
      have_exif = true;
      if (in_bounds(size, body, body_len)) {
        if (auto o = exif_orientation(d + body, body_len)) hdr->orientation = *o;
      }
    }
    pos = body + body_len;
  }
  return size;
}

std::optional<RawHeader> jpeg_header(const uint8_t* d, size_t size) {
  RawHeader hdr{Format::kJpeg, 0, 0, 1};
  bool have_sof = false;
  jpeg_walk(d, size, &hdr, &have_sof);
  if (!have_sof) return std::nullopt;
  return hdr;
}

// ---------------------------------------------------------------------------------------
// WebP: RIFF container; the first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended).

std::optional<RawHeader> webp_header(const uint8_t* d, size_t size) {
  if (!in_bounds(size, 12, 8)) return std::nullopt;
  const uint8_t* fourcc = d + 12;
  uint32_t chunk_len = le32(d + 16);
  const size_t body = 20;
  RawHeader hdr{Format::kWebp, 0, 0, 1};
  if (std::memcmp(fourcc, "VP8 ", 4) == 0) {
    // frame tag(3), start code 9d 01 2a, then 14-bit width and height (+2 scale bits).
    if (chunk_len < 10 || !in_bounds(size, body, 10)) return std::nullopt;
    if (d[body + 3] != 0x9d || d[body + 4] != 0x01 || d[body + 5] != 0x2a) return std::nullopt;
    hdr.width = int(le16(d + body + 6) & 0x3fff);
    hdr.height = int(le16(d + body + 8) & 0x3fff);
  } else if (std::memcmp(fourcc, "VP8L", 4) == 0) {
    // signature 0x2f, then 14 bits (width - 1), 14 bits (height - 1), little-endian.
    if (chunk_len < 5 || !in_bounds(size, body, 5) || d[body] != 0x2f) return std::nullopt;
    uint32_t bits = le32(d + body + 1);
    hdr.width = int((bits & 0x3fff) + 1);
    hdr.height = int(((bits >> 14) & 0x3fff) + 1);
  } else if (std::memcmp(fourcc, "VP8X", 4) == 0) {
    // flags(1) reserved(3) canvas width - 1 (24 bits) canvas height - 1 (24 bits).
    if (chunk_len < 10 || !in_bounds(size, body, 10)) return std::nullopt;
    hdr.width = int(le24(d + body + 4) + 1);
    hdr.height = int(le24(d + body + 7) + 1);
    // Metadata chunks usually follow the image data: hop over chunk headers only.
    size_t pos = body + chunk_len + (chunk_len & 1);
    while (in_bounds(size, pos, 8)) {
      uint32_t len = le32(d + pos + 4);
      if (std::memcmp(d + pos, "EXIF", 4) == 0) {
        if (in_bounds(size, pos + 8, len)) {
          if (auto o = exif_orientation(d + pos + 8, len)) hdr.orientation = *o;
        }
        break;
      }
      size_t next = pos + 8 + size_t(len) + (len & 1);
      if (next <= pos) break;
      pos = next;
    }
  } else {
    return std::nullopt;
  }
  if (hdr.width <= 0 || hdr.height <= 0) return std::nullopt;
  return hdr;
}

}  // namespace

std::optional<Format> sniff_format(const uint8_t* d, size_t size) {
  if (d == nullptr) return std::nullopt;
  if (in_bounds(size, 0, 8) && std::memcmp(d, kPngSig, 8) == 0) return Format::kPng;
  if (in_bounds(size, 0, 3) && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return Format::kJpeg;
  if (in_bounds(size, 0, 12) && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0)
    return Format::kWebp;
  return std::nullopt;
}

std::optional<int> exif_orientation(const uint8_t* d, size_t size) {
  if (in_bounds(size, 0, 6) && std::memcmp(d, "Exif\0\0", 6) == 0) {
    d += 6;
    size -= 6;
  }
  if (!in_bounds(size, 0, 8)) return std::nullopt;
  bool little;
  if (d[0] == 'I' && d[1] == 'I') little = true;
  else if (d[0] == 'M' && d[1] == 'M') little = false;
  else return std::nullopt;
  auto u16 = [&](size_t off) { return little ? le16(d + off) : be16(d + off); };
  auto u32 = [&](size_t off) { return little ? le32(d + off) : be32(d + off); };
  if (u16(2) != 42) return std::nullopt;
  size_t ifd = u32(4);
  if (!in_bounds(size, ifd, 2)) return std::nullopt;
  size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    size_t e = ifd + 2 + 12 * i;
    if (!in_bounds(size, e, 12)) return std::nullopt;
    if (u16(e) != 0x0112) continue;
    uint32_t type = u16(e + 2), n = u32(e + 4);
    if (n != 1) return std::nullopt;  // PIL would get a tuple, which maps to no transpose
    switch (type) {
      case 1: return int(d[e + 8]);      // BYTE
      case 3: return int(u16(e + 8));    // SHORT (the usual)
      case 4: return int(u32(e + 8) & 0x7fffffff);  // LONG
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<RawHeader> read_header(const uint8_t* data, size_t size) {
  auto fmt = sniff_format(data, size);
  if (!fmt) return std::nullopt;
  switch (*fmt) {
    case Format::kPng: return png_header(data, size);
    case Format::kJpeg: return jpeg_header(data, size);
    case Format::kWebp: return webp_header(data, size);
  }
  return std::nullopt;
}

bool jpeg_complete(const uint8_t* d, size_t size) {
  RawHeader hdr;
  bool have_sof = false;
  size_t sos = jpeg_walk(d, size, &hdr, &have_sof);
  for (size_t i = sos; i + 1 < size; ++i) {
    if (d[i] == 0xFF && d[i + 1] == 0xD9) return true;
  }
  return false;
}

}  // namespace onereward::image::detail

namespace onereward::image {

std::optional<ImageHeader> probe(const uint8_t* data, size_t size) {
  auto raw = detail::read_header(data, size);
  if (!raw) return std::nullopt;
  ImageHeader h{raw->format, raw->width, raw->height};
  // Orientations 5..8 transpose the image (ImageOps.exif_transpose).
  if (raw->orientation >= 5 && raw->orientation <= 8) std::swap(h.width, h.height);
  return h;
}

}  // namespace onereward::image
