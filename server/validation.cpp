#include "server/validation.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "engine/image/codec.h"

namespace onereward::server {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

std::string fmt(float f) {
  std::ostringstream o;
  o << f;
  return o.str();
}

std::string size_str(int64_t w, int64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

/// Header check and decode of one image field.
image::Image decode_field(const std::string& field, const std::string& bytes, const Limits& lim) {
  check_arg(!bytes.empty(), field + ": empty (a PNG, JPEG or WebP image is required)");
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  auto header = image::probe(data, bytes.size());
  check_arg(header.has_value(), field + ": not a PNG, JPEG or WebP image (" + std::to_string(bytes.size()) + " bytes)");
  const int64_t pixels = static_cast<int64_t>(header->width) * header->height;
  check_arg(pixels <= lim.max_pixels, field + ": " + size_str(header->width, header->height) + " = " +
                                          std::to_string(pixels) + " pixels exceeds the limit of " +
                                          std::to_string(lim.max_pixels) + " pixels");
  try {
    return image::decode(data, bytes.size(), lim.max_pixels);
  } catch (const Error& e) {
    throw Error(StatusCode::kInvalidArgument, field + ": cannot be decoded: " + e.what());
  }
}

void check_text(const std::string& field, const std::string& s, const Limits& lim) {
  check_arg(static_cast<int64_t>(s.size()) <= lim.max_prompt_bytes,
            field + ": " + std::to_string(s.size()) + " bytes exceeds the limit of " +
                std::to_string(lim.max_prompt_bytes) + " bytes");
}

void check_range(const std::string& field, float v, float lo, float hi) {
  check_arg(std::isfinite(v) && v >= lo && v <= hi,
            field + ": " + fmt(v) + " is outside [" + fmt(lo) + ", " + fmt(hi) + "]");
}

}  // namespace

const char* task_label(v1::Task task) {
  switch (task) {
    case v1::TASK_FILL: return "fill";
    case v1::TASK_EXTEND: return "extend";
    case v1::TASK_REMOVE: return "remove";
    default: return "unspecified";
  }
}

Result<ValidatedRequest> validate_request(const v1::FillRequest& req, const Limits& lim, const EngineInfo& info,
                                          bool previews_allowed, int min_preview_every) {
  ValidatedRequest out;
  Status s = capture_status([&] {
    FillRequest& r = out.request;
    check_arg(static_cast<int>(req.request_id().size()) <= lim.max_request_id_bytes,
              "request_id: " + std::to_string(req.request_id().size()) + " bytes exceeds the limit of " +
                  std::to_string(lim.max_request_id_bytes) + " bytes");
    for (unsigned char c : req.request_id())
      check_arg(c > 0x20 && c < 0x7f, "request_id: only printable ASCII without spaces is allowed");
    out.request_id = req.request_id();

    switch (req.task()) {
      case v1::TASK_FILL: r.task = Task::kFill; break;
      case v1::TASK_EXTEND: r.task = Task::kExtend; break;
      case v1::TASK_REMOVE: r.task = Task::kRemove; break;
      default:
        throw Error(StatusCode::kInvalidArgument,
                    "task: " + std::string(req.task() == v1::TASK_UNSPECIFIED ? "TASK_UNSPECIFIED" : "unknown value " + std::to_string(req.task())) +
                        "; set TASK_FILL, TASK_EXTEND or TASK_REMOVE");
    }
    const std::string task = v1::Task_Name(req.task());

    // Scalars first: they are cheap, and a bad one should not cost an image decode.
    const int steps = req.steps() == 0 ? 50 : static_cast<int>(std::min<uint32_t>(req.steps(), 1u << 30));
    check_arg(steps >= 1 && steps <= lim.max_steps,
              "steps: " + std::to_string(req.steps()) + " exceeds the limit of " + std::to_string(lim.max_steps));
    r.steps = steps;
    r.true_cfg = req.has_true_cfg() ? req.true_cfg() : 4.0f;
    check_range("true_cfg", r.true_cfg, lim.min_true_cfg, lim.max_true_cfg);
    r.guidance_scale = req.has_guidance_scale() ? req.guidance_scale() : 1.0f;
    check_range("guidance_scale", r.guidance_scale, lim.min_guidance_scale, lim.max_guidance_scale);
    r.strength = req.has_strength() ? req.strength() : 1.0f;
    check_arg(std::isfinite(r.strength) && r.strength > 0.0f && r.strength <= 1.0f,
              "strength: " + fmt(r.strength) + " is outside (0, 1]");
    const int num_images = req.num_images() == 0 ? 1 : static_cast<int>(std::min<uint32_t>(req.num_images(), 1u << 30));
    check_arg(num_images <= lim.max_images, "num_images: " + std::to_string(req.num_images()) +
                                                " exceeds the limit of " + std::to_string(lim.max_images));
    r.num_images = num_images;
    check_arg(req.preview_every() == 0 || previews_allowed, "preview_every: previews are disabled on this server");
    check_arg(req.preview_every() == 0 || static_cast<int>(req.preview_every()) >= min_preview_every,
              "preview_every: " + std::to_string(req.preview_every()) + " is below the minimum of " +
                  std::to_string(min_preview_every));
    out.preview_every = static_cast<int>(std::min<uint32_t>(req.preview_every(), 1u << 30));
    out.priority = req.priority();
    switch (req.output_format()) {
      case v1::OUTPUT_FORMAT_PNG: out.format = image::Format::kPng; break;
      case v1::OUTPUT_FORMAT_JPEG: out.format = image::Format::kJpeg; break;
      case v1::OUTPUT_FORMAT_WEBP: out.format = image::Format::kWebp; break;
      default:
        throw Error(StatusCode::kInvalidArgument,
                    "output_format: unknown value " + std::to_string(req.output_format()) +
                        "; set OUTPUT_FORMAT_PNG, OUTPUT_FORMAT_JPEG or OUTPUT_FORMAT_WEBP");
    }

    // Prompts.
    check_text("prompt", req.prompt(), lim);
    if (req.has_negative_prompt()) check_text("negative_prompt", req.negative_prompt(), lim);
    if (r.task == Task::kFill)
      check_arg(!req.prompt().empty(), "prompt: required for TASK_FILL (describe what fills the mask)");
    if (!req.prompt().empty()) r.prompts = {req.prompt()};
    if (req.has_negative_prompt()) r.negative_prompts = {req.negative_prompt()};

    // Variant and adapters.
    if (!req.variant().empty()) {
      check_arg(std::find(info.variants.begin(), info.variants.end(), req.variant()) != info.variants.end(),
                "variant: '" + req.variant() + "' is not loaded (available: " + join(info.variants) + ")");
    }
    r.variant = req.variant();
    for (int i = 0; i < req.adapters_size(); ++i) {
      const auto& a = req.adapters(i);
      const std::string f = "adapters[" + std::to_string(i) + "]";
      check_arg(std::find(info.adapters.begin(), info.adapters.end(), a.name()) != info.adapters.end(),
                f + ".name: '" + a.name() + "' is not loaded (available: " + join(info.adapters) + ")");
      check_arg(std::isfinite(a.weight()) && std::fabs(a.weight()) <= lim.max_adapter_weight,
                f + ".weight: " + fmt(a.weight()) + " is outside [-" + fmt(lim.max_adapter_weight) + ", " +
                    fmt(lim.max_adapter_weight) + "]");
      for (int k = 0; k < i; ++k)
        check_arg(req.adapters(k).name() != a.name(), f + ".name: '" + a.name() + "' is given twice");
      r.adapters.push_back({a.name(), a.weight()});
    }

    // Explicit output size.
    const int64_t mult = std::max<int64_t>(1, info.multiple);
    auto check_side = [&](const char* field, uint32_t v) {
      check_arg(v == 0 || (v >= static_cast<uint32_t>(lim.min_side) && v <= (1u << 16)),
                std::string(field) + ": " + std::to_string(v) + " must be 0 (from the image) or at least " +
                    std::to_string(lim.min_side));
    };
    check_side("width", req.width());
    check_side("height", req.height());

    // Images: headers before pixels.
    r.image = decode_field("image", req.image(), lim);
    const bool has_mask = !req.mask().empty();
    if (r.task == Task::kFill || r.task == Task::kRemove)
      check_arg(has_mask, "mask: required for " + task + " (white = the area to regenerate)");
    if (has_mask) {
      r.mask = decode_field("mask", req.mask(), lim);
      check_arg(r.mask->width == r.image.width && r.mask->height == r.image.height,
                "mask: " + size_str(r.mask->width, r.mask->height) + " differs from the image's " +
                    size_str(r.image.width, r.image.height));
    }
    int64_t cw = r.image.width, ch = r.image.height;
    if (r.task == Task::kExtend) {
      const auto& m = req.extend();
      const int64_t limit = 1 << 16;
      check_arg(m.left() <= limit && m.top() <= limit && m.right() <= limit && m.bottom() <= limit,
                "extend: each margin must be at most " + std::to_string(limit) + " pixels");
      r.extend = Margins{static_cast<int>(m.left()), static_cast<int>(m.top()), static_cast<int>(m.right()),
                         static_cast<int>(m.bottom())};
      check_arg(has_mask || !r.extend.empty(),
                "extend: all margins are 0 and no mask is given; TASK_EXTEND needs margins (or a mask)");
      if (!has_mask) {
        cw += r.extend.left + r.extend.right;
        ch += r.extend.top + r.extend.bottom;
        check_arg(cw * ch <= lim.max_pixels, "extend: the extended canvas " + size_str(cw, ch) + " = " +
                                                 std::to_string(cw * ch) + " pixels exceeds the limit of " +
                                                 std::to_string(lim.max_pixels) + " pixels");
      }
    }
    r.width = static_cast<int>(req.width());
    r.height = static_cast<int>(req.height());
    const int64_t ow = r.width > 0 ? r.width : cw, oh = r.height > 0 ? r.height : ch;
    out.width = static_cast<int>(ow);
    out.height = static_cast<int>(oh);
    check_arg(ow * oh <= lim.max_pixels, "width x height: " + size_str(ow, oh) + " = " + std::to_string(ow * oh) +
                                             " pixels exceeds the limit of " + std::to_string(lim.max_pixels) +
                                             " pixels");
    const int64_t fw = ow / mult * mult, fh = oh / mult * mult;
    check_arg(fw >= lim.min_side && fh >= lim.min_side,
              std::string(r.width > 0 || r.height > 0 ? "width x height" : "image") + ": " + size_str(ow, oh) +
                  " is " + size_str(fw, fh) + " after flooring to a multiple of " + std::to_string(mult) +
                  "; each side must be at least " + std::to_string(lim.min_side));

    if (req.has_seed()) {
      r.seed = req.seed();
    } else {
      static thread_local std::mt19937_64 rng{std::random_device{}()};
      // Reported back in the result; kept within int64 so every client can pass it back.
      r.seed = rng() >> 1;
    }
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace onereward::server
