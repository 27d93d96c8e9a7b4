#include "engine/models/vae.h"

#include <cmath>

#include "engine/models/attention.h"
#include "engine/models/layers.h"
#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace onereward::models {

namespace {

// diffusers hard-codes these for the KL autoencoder's Encoder/Decoder.
constexpr double kNormEps = 1e-6;            // every GroupNorm (resnets, attention, conv_norm_out)
constexpr double kOutputScaleFactor = 1.0;   // resnets and mid-block attention divide by this

enum class Activation { kSilu, kMish, kGelu, kRelu };

Activation parse_activation(const std::string& name) {
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "mish") return Activation::kMish;
  if (name == "gelu") return Activation::kGelu;
  if (name == "relu") return Activation::kRelu;
  throw_error(StatusCode::kInvalidArgument, "unknown activation '" + name + "'");
}

// In place on a tensor the caller owns (a fresh GroupNorm output), to keep peak memory down.
void activate_(torch::Tensor& x, Activation act) {
  switch (act) {
    case Activation::kSilu: x = torch::silu_(x); break;
    case Activation::kMish: x = torch::mish_(x); break;
    case Activation::kGelu: x = torch::gelu(x); break;  // exact erf form, like nn.GELU()
    case Activation::kRelu: x = torch::relu_(x); break;
  }
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(true));
}

torch::nn::GroupNorm group_norm(int64_t groups, int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(kNormEps).affine(true));
}

bool is_kind(const std::string& type, const std::string& kind) {
  // get_down_block / get_up_block strip a "UNetRes" prefix before dispatching.
  return type == kind || type == "UNetRes" + kind;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Config

nlohmann::json VaeConfig::to_json() const {
  return {{"_class_name", "AutoencoderKL"},
          {"act_fn", act_fn},
          {"block_out_channels", block_out_channels},
          {"down_block_types", down_block_types},
          {"up_block_types", up_block_types},
          {"force_upcast", force_upcast},
          {"in_channels", in_channels},
          {"out_channels", out_channels},
          {"latent_channels", latent_channels},
          {"latents_mean", nullptr},
          {"latents_std", nullptr},
          {"layers_per_block", layers_per_block},
          {"mid_block_add_attention", mid_block_add_attention},
          {"norm_num_groups", norm_num_groups},
          {"sample_size", sample_size},
          {"scaling_factor", scaling_factor},
          {"shift_factor", shift_factor},
          {"use_quant_conv", use_quant_conv},
          {"use_post_quant_conv", use_post_quant_conv}};
}

VaeConfig VaeConfig::from_json_file(const std::string& path) {
  JsonConfig j = JsonConfig::load(path);
  VaeConfig c;
  c.in_channels = j.get_int("in_channels", c.in_channels);
  c.out_channels = j.get_int("out_channels", c.out_channels);
  c.latent_channels = j.get_int("latent_channels", c.latent_channels);
  if (j.has("block_out_channels")) c.block_out_channels = j.get_int_list("block_out_channels");
  c.layers_per_block = j.get_int("layers_per_block", c.layers_per_block);
  c.norm_num_groups = j.get_int("norm_num_groups", c.norm_num_groups);
  c.act_fn = j.get_string("act_fn", c.act_fn);
  c.scaling_factor = j.get_double("scaling_factor", c.scaling_factor);
  c.shift_factor = j.get_optional_double("shift_factor").value_or(0.0);
  c.use_quant_conv = j.get_bool("use_quant_conv", c.use_quant_conv);
  c.use_post_quant_conv = j.get_bool("use_post_quant_conv", c.use_post_quant_conv);
  c.mid_block_add_attention = j.get_bool("mid_block_add_attention", c.mid_block_add_attention);
  c.force_upcast = j.get_bool("force_upcast", c.force_upcast);
  if (j.has("sample_size")) {
    // int, or [h, w] (diffusers then uses the first entry for tiling).
    const auto& v = j.json().at("sample_size");
    if (v.is_array()) {
      auto l = j.get_int_list("sample_size");
      if (l.empty()) j.fail("sample_size", "must not be an empty list");
      c.sample_size = l[0];
    } else {
      c.sample_size = j.get_int("sample_size");
    }
  }
  if (j.has("down_block_types")) c.down_block_types = j.get_string_list("down_block_types");
  if (j.has("up_block_types")) c.up_block_types = j.get_string_list("up_block_types");

  for (const auto& t : c.down_block_types) {
    if (!is_kind(t, "DownEncoderBlock2D")) {
      j.fail("down_block_types", "has '" + t + "'; only DownEncoderBlock2D is supported");
    }
  }
  for (const auto& t : c.up_block_types) {
    if (!is_kind(t, "UpDecoderBlock2D")) j.fail("up_block_types", "has '" + t + "'; only UpDecoderBlock2D is supported");
  }
  try {
    parse_activation(c.act_fn);
  } catch (const Error&) {
    j.fail("act_fn", "is '" + c.act_fn + "'; supported: silu, swish, mish, gelu, relu");
  }
  if (c.block_out_channels.empty()) j.fail("block_out_channels", "must not be empty");
  if (c.down_block_types.size() != c.block_out_channels.size()) {
    j.fail("down_block_types", "must have one entry per block_out_channels entry");
  }
  if (c.up_block_types.size() != c.block_out_channels.size()) {
    j.fail("up_block_types", "must have one entry per block_out_channels entry");
  }
  if (c.norm_num_groups <= 0) j.fail("norm_num_groups", "must be positive");
  for (auto ch : c.block_out_channels) {
    if (ch <= 0 || ch % c.norm_num_groups != 0) {
      j.fail("block_out_channels", "entries must be positive multiples of norm_num_groups (" +
                                       std::to_string(c.norm_num_groups) + ")");
    }
  }
  if (c.in_channels <= 0) j.fail("in_channels", "must be positive");
  if (c.out_channels <= 0) j.fail("out_channels", "must be positive");
  if (c.latent_channels <= 0) j.fail("latent_channels", "must be positive");
  if (c.layers_per_block <= 0) j.fail("layers_per_block", "must be positive");
  if (!(c.scaling_factor > 0.0) || !std::isfinite(c.scaling_factor)) j.fail("scaling_factor", "must be positive");
  if (c.block_out_channels.size() > 16) j.fail("block_out_channels", "has too many blocks");
  c.validate(path);
  return c;
}

void VaeConfig::validate(const std::string& where) const {
  auto bad = [&](const std::string& what) { throw_error(StatusCode::kInvalidArgument, where + ": VAE " + what); };
  if (block_out_channels.empty() || block_out_channels.size() > 16) bad("needs 1..16 blocks");
  if (down_block_types.size() != block_out_channels.size() || up_block_types.size() != block_out_channels.size()) {
    bad("block type lists must match block_out_channels");
  }
  if (norm_num_groups <= 0) bad("norm_num_groups must be positive");
  for (auto ch : block_out_channels) {
    if (ch <= 0 || ch % norm_num_groups != 0) bad("channels must be positive multiples of norm_num_groups");
  }
  if (in_channels <= 0 || out_channels <= 0 || latent_channels <= 0 || layers_per_block <= 0) {
    bad("sizes must be positive");
  }
  parse_activation(act_fn);
}

// ---------------------------------------------------------------------------------------
// Building blocks

/// diffusers ResnetBlock2D without time embedding (temb_channels=None, "default" norm):
/// norm1 -> act -> conv1 -> norm2 -> act -> conv2, plus x (through a 1x1 conv_shortcut
/// when the channel count changes).
class VaeResnetImpl : public torch::nn::Module {
 public:
  VaeResnetImpl(int64_t in, int64_t out, int64_t groups, Activation act) : act_(act) {
    norm1 = register_module("norm1", group_norm(groups, in));
    conv1 = register_module("conv1", conv(in, out, 3, 1, 1));
    norm2 = register_module("norm2", group_norm(groups, out));
    conv2 = register_module("conv2", conv(out, out, 3, 1, 1));
    if (in != out) conv_shortcut = register_module("conv_shortcut", conv(in, out, 1, 1, 0));
  }
  // x: [N, in, H, W] -> [N, out, H, W]
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = norm1(x);
    activate_(h, act_);
    h = conv1(h);
    h = norm2(h);
    activate_(h, act_);
    // (dropout is identity at inference)
    h = conv2(h);
    // h is ours: add the shortcut in place instead of allocating input + h.
    if (conv_shortcut) {
      h.add_(conv_shortcut(x));
    } else {
      h.add_(x);
    }
    if (kOutputScaleFactor != 1.0) h.div_(kOutputScaleFactor);
    return h;
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};

 private:
  Activation act_;
};
TORCH_MODULE(VaeResnet);

/// diffusers Downsample2D(use_conv=True, padding=0): pad right/bottom by one, 3x3 conv, stride 2.
class VaeDownsampleImpl : public torch::nn::Module {
 public:
  explicit VaeDownsampleImpl(int64_t ch) { conv = register_module("conv", models::conv(ch, ch, 3, 2, 0)); }
  // x: [N, C, H, W] -> [N, C, floor(H/2), floor(W/2)]
  torch::Tensor forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    return conv(F::pad(x, F::PadFuncOptions({0, 1, 0, 1}).mode(torch::kConstant).value(0)));
  }
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(VaeDownsample);

/// diffusers Upsample2D(use_conv=True): nearest-neighbour x2, then 3x3 conv (padding 1).
class VaeUpsampleImpl : public torch::nn::Module {
 public:
  explicit VaeUpsampleImpl(int64_t ch) { conv = register_module("conv", models::conv(ch, ch, 3, 1, 1)); }
  // x: [N, C, H, W] -> [N, C, 2H, 2W]
  torch::Tensor forward(const torch::Tensor& x) {
    // Nearest x2 == each pixel repeated 2x2 (F.interpolate picks src = floor(dst / 2)). Done as
    // a broadcast copy: one allocation, exact in every dtype (old libtorch has no bf16
    // upsample_nearest2d on CPU, which is why diffusers upcasts there).
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    torch::Tensor up = x.reshape({N, C, H, 1, W, 1}).expand({N, C, H, 2, W, 2}).reshape({N, C, 2 * H, 2 * W});
    return conv(up);
  }
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(VaeUpsample);

/// The mid block's Attention (diffusers Attention with group_norm, one head of dim C,
/// residual_connection=True, rescale_output_factor=1): attention over the H*W positions.
class VaeAttentionImpl : public torch::nn::Module {
 public:
  VaeAttentionImpl(int64_t ch, int64_t groups) : ch_(ch) {
    group_norm = register_module("group_norm", models::group_norm(groups, ch));
    to_q = register_module("to_q", Linear(ch, ch));
    to_k = register_module("to_k", Linear(ch, ch));
    to_v = register_module("to_v", Linear(ch, ch));
    to_out = register_module("to_out", torch::nn::ModuleList());
    to_out->push_back(Linear(ch, ch));  // to_out.1 is a Dropout: no weights
  }
  // x: [N, C, H, W] -> [N, C, H, W]
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), S = H * W;
    // GroupNorm over [N, C, H*W] has the same per-group statistics as over [N, C, H, W].
    // Made contiguous once here; to_q/to_k/to_v would each copy the transposed view otherwise.
    torch::Tensor h = group_norm(x).reshape({N, C, S}).transpose(1, 2).contiguous();  // [N, S, C]
    torch::Tensor q = to_q(h).view({N, S, 1, C});
    torch::Tensor k = to_k(h).view({N, S, 1, C});
    torch::Tensor v = to_v(h).view({N, S, 1, C});
    h = torch::Tensor();
    torch::Tensor o = attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(ch_)));  // [N, S, C]
    q = k = v = torch::Tensor();
    o = to_out[0]->as<LinearImpl>()->forward(o);  // [N, S, C]
    // A copy (or, when C or S is 1, a view of to_out's fresh output): either way ours, so the
    // residual goes in place.
    o = o.transpose(1, 2).reshape({N, C, H, W});
    o.add_(x);
    if (kOutputScaleFactor != 1.0) o.div_(kOutputScaleFactor);
    return o;
  }
  torch::nn::GroupNorm group_norm{nullptr};
  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};

 private:
  int64_t ch_;
};
TORCH_MODULE(VaeAttention);

/// diffusers UNetMidBlock2D (num_layers=1): resnets.0 -> [attentions.0] -> resnets.1.
class VaeMidBlockImpl : public torch::nn::Module {
 public:
  VaeMidBlockImpl(int64_t ch, int64_t groups, Activation act, bool add_attention) {
    resnets = register_module("resnets", torch::nn::ModuleList());
    resnets->push_back(VaeResnet(ch, ch, groups, act));
    resnets->push_back(VaeResnet(ch, ch, groups, act));
    if (add_attention) {
      attentions = register_module("attentions", torch::nn::ModuleList());
      attentions->push_back(VaeAttention(ch, groups));
    }
  }
  // x: [N, C, h, w] -> [N, C, h, w]
  torch::Tensor forward(torch::Tensor x) {
    x = resnets[0]->as<VaeResnetImpl>()->forward(x);
    if (attentions) x = attentions[0]->as<VaeAttentionImpl>()->forward(x);
    return resnets[1]->as<VaeResnetImpl>()->forward(x);
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(VaeMidBlock);

/// DownEncoderBlock2D / UpDecoderBlock2D: `layers` resnets, then (except the last block)
/// a resampler registered as `downsamplers.0` or `upsamplers.0`.
class VaeBlockImpl : public torch::nn::Module {
 public:
  enum class Resample { kNone, kDown, kUp };
  VaeBlockImpl(int64_t in, int64_t out, int64_t layers, int64_t groups, Activation act, Resample resample) {
    resnets = register_module("resnets", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers; ++i) resnets->push_back(VaeResnet(i == 0 ? in : out, out, groups, act));
    if (resample == Resample::kDown) {
      resampler_ = VaeDownsample(out).ptr();
      register_module("downsamplers", torch::nn::ModuleList(resampler_));
    } else if (resample == Resample::kUp) {
      resampler_ = VaeUpsample(out).ptr();
      register_module("upsamplers", torch::nn::ModuleList(resampler_));
    }
  }
  // x: [N, in, H, W] -> [N, out, H', W'] (H' = floor(H/2) down, 2H up, H without resampler)
  torch::Tensor forward(torch::Tensor x) {
    for (auto& r : *resnets) x = r->as<VaeResnetImpl>()->forward(x);
    if (auto* d = resampler_ ? resampler_->as<VaeDownsampleImpl>() : nullptr) return d->forward(x);
    if (auto* u = resampler_ ? resampler_->as<VaeUpsampleImpl>() : nullptr) return u->forward(x);
    return x;
  }
  torch::nn::ModuleList resnets{nullptr};

 private:
  std::shared_ptr<torch::nn::Module> resampler_;
};
TORCH_MODULE(VaeBlock);

/// diffusers vae.Encoder with double_z=True.
class VaeEncoderImpl : public torch::nn::Module {
 public:
  explicit VaeEncoderImpl(const VaeConfig& c) {
    const Activation act = parse_activation(c.act_fn);
    const auto& ch = c.block_out_channels;
    const int64_t n = static_cast<int64_t>(ch.size());
    conv_in = register_module("conv_in", conv(c.in_channels, ch[0], 3, 1, 1));
    down_blocks = register_module("down_blocks", torch::nn::ModuleList());
    int64_t prev = ch[0];
    for (int64_t i = 0; i < n; ++i) {
      down_blocks->push_back(VaeBlock(prev, ch[i], c.layers_per_block, c.norm_num_groups, act,
                                     i != n - 1 ? VaeBlockImpl::Resample::kDown : VaeBlockImpl::Resample::kNone));
      prev = ch[i];
    }
    mid_block = register_module("mid_block", VaeMidBlock(ch.back(), c.norm_num_groups, act, c.mid_block_add_attention));
    conv_norm_out = register_module("conv_norm_out", group_norm(c.norm_num_groups, ch.back()));
    conv_out = register_module("conv_out", conv(ch.back(), 2 * c.latent_channels, 3, 1, 1));
  }
  // x: [N, in_channels, H, W] -> moments [N, 2*latent_channels, h, w]
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = conv_in(x);
    for (auto& b : *down_blocks) h = b->as<VaeBlockImpl>()->forward(h);
    h = mid_block(h);
    h = conv_norm_out(h);
    h = torch::silu_(h);  // conv_act is always nn.SiLU, whatever act_fn says
    return conv_out(h);
  }
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  VaeMidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};

/// diffusers vae.Decoder with norm_type "group"; each up block has layers_per_block + 1 resnets.
class VaeDecoderImpl : public torch::nn::Module {
 public:
  explicit VaeDecoderImpl(const VaeConfig& c) {
    const Activation act = parse_activation(c.act_fn);
    const auto& ch = c.block_out_channels;
    const int64_t n = static_cast<int64_t>(ch.size());
    conv_in = register_module("conv_in", conv(c.latent_channels, ch.back(), 3, 1, 1));
    mid_block = register_module("mid_block", VaeMidBlock(ch.back(), c.norm_num_groups, act, c.mid_block_add_attention));
    up_blocks = register_module("up_blocks", torch::nn::ModuleList());
    int64_t prev = ch.back();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t out = ch[n - 1 - i];
      up_blocks->push_back(VaeBlock(prev, out, c.layers_per_block + 1, c.norm_num_groups, act,
                                   i != n - 1 ? VaeBlockImpl::Resample::kUp : VaeBlockImpl::Resample::kNone));
      prev = out;
    }
    conv_norm_out = register_module("conv_norm_out", group_norm(c.norm_num_groups, ch[0]));
    conv_out = register_module("conv_out", conv(ch[0], c.out_channels, 3, 1, 1));
  }
  // z: [N, latent_channels, h, w] -> [N, out_channels, h*f, w*f]
  torch::Tensor forward(const torch::Tensor& z) {
    torch::Tensor h = conv_in(z);
    h = mid_block(h);
    for (auto& b : *up_blocks) h = b->as<VaeBlockImpl>()->forward(h);
    h = conv_norm_out(h);
    h = torch::silu_(h);
    return conv_out(h);
  }
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  VaeMidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};

// ---------------------------------------------------------------------------------------
// AutoencoderKL

torch::Tensor DiagonalGaussian::sample(const torch::Tensor& eps) const {
  check_arg(eps.sizes() == mean.sizes(), "VAE posterior sample: eps has shape " + c10::str(eps.sizes()) +
                                             ", the posterior " + c10::str(mean.sizes()));
  return mean + std * eps.to(mean.options());
}

AutoencoderKLImpl::AutoencoderKLImpl(const VaeConfig& cfg) : cfg_(cfg) {
  cfg_.validate("AutoencoderKL");
  encoder = register_module("encoder", std::make_shared<VaeEncoderImpl>(cfg_));
  decoder = register_module("decoder", std::make_shared<VaeDecoderImpl>(cfg_));
  const int64_t lc = cfg_.latent_channels;
  if (cfg_.use_quant_conv) quant_conv = register_module("quant_conv", conv(2 * lc, 2 * lc, 1, 1, 0));
  if (cfg_.use_post_quant_conv) post_quant_conv = register_module("post_quant_conv", conv(lc, lc, 1, 1, 0));
}

torch::Tensor AutoencoderKLImpl::encode_moments(const torch::Tensor& x) {
  torch::Tensor h = encoder->forward(x);
  if (quant_conv) h = quant_conv(h);
  return h;
}

DiagonalGaussian AutoencoderKLImpl::encode(const torch::Tensor& image, const VaeRunOptions& opts) {
  torch::NoGradGuard no_grad;
  check_arg(image.dim() == 4 && image.size(1) == cfg_.in_channels,
            "VAE encode: image must be [N, " + std::to_string(cfg_.in_channels) + ", H, W], got " +
                c10::str(image.sizes()));
  // Each stride-2 downsample needs at least 2 rows/columns in, so the image needs f of them.
  check_arg(image.size(0) > 0 && image.size(2) >= vae_scale_factor() && image.size(3) >= vae_scale_factor(),
            "VAE encode: image " + c10::str(image.sizes()) + " is smaller than the VAE scale factor " +
                std::to_string(vae_scale_factor()));
  const torch::Tensor& w = encoder->conv_in->weight;
  torch::Tensor x = image.to(w.device(), w.scalar_type());
  torch::Tensor moments;  // [N, 2*latent_channels, h, w]
  if (opts.slicing && x.size(0) > 1) {
    std::vector<torch::Tensor> parts;
    for (const auto& one : x.split(1)) parts.push_back(encode_moments(one));
    moments = torch::cat(parts);
  } else {
    moments = encode_moments(x);
  }
  auto mv = moments.chunk(2, 1);
  DiagonalGaussian d;
  d.mean = mv[0];
  d.logvar = torch::clamp(mv[1], -30.0, 20.0);
  d.std = torch::exp(0.5 * d.logvar);
  return d;
}

torch::Tensor AutoencoderKLImpl::decode_one(const torch::Tensor& z, bool tiling) {
  // diffusers tiles only when the latent exceeds one tile (tile_latent_min_size).
  const int64_t T = cfg_.sample_size / vae_scale_factor();
  if (tiling && T > 0 && (z.size(2) > T || z.size(3) > T)) return tiled_decode(z);
  torch::Tensor h = post_quant_conv ? post_quant_conv(z) : z;
  return decoder->forward(h);
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& z, const VaeRunOptions& opts) {
  torch::NoGradGuard no_grad;
  check_arg(z.dim() == 4 && z.size(1) == cfg_.latent_channels,
            "VAE decode: latents must be [N, " + std::to_string(cfg_.latent_channels) + ", h, w], got " +
                c10::str(z.sizes()));
  check_arg(z.size(0) > 0 && z.size(2) > 0 && z.size(3) > 0, "VAE decode: latents are empty");
  const torch::Tensor& w = decoder->conv_in->weight;
  torch::Tensor x = z.to(w.device(), w.scalar_type());
  if (opts.slicing && x.size(0) > 1) {
    // Decode one image at a time into the preallocated output (no list + cat copy).
    torch::Tensor first = decode_one(x.narrow(0, 0, 1), opts.tiling);
    std::vector<int64_t> shape = first.sizes().vec();
    shape[0] = x.size(0);
    torch::Tensor out = torch::empty(shape, first.options());
    out.narrow(0, 0, 1).copy_(first);
    first = torch::Tensor();
    for (int64_t i = 1; i < x.size(0); ++i) out.narrow(0, i, 1).copy_(decode_one(x.narrow(0, i, 1), opts.tiling));
    return out;
  }
  return decode_one(x, opts.tiling);
}

torch::Tensor AutoencoderKLImpl::tiled_decode(const torch::Tensor& z) {
  // diffusers AutoencoderKL.tiled_decode: latent tiles of T = sample_size / f, stepping by
  // int(T * 0.75); each decoded tile is blended (linear ramp over int(sample_size * 0.25)
  // pixels) with the tile above and the tile to its left, in place, then cropped to
  // sample_size - blend. The in-place blending matters: later tiles blend against the
  // already-blended neighbours, as in the reference.
  constexpr double kOverlap = 0.25;
  const int64_t sample = cfg_.sample_size;
  const int64_t T = sample / vae_scale_factor();
  const int64_t step = static_cast<int64_t>(T * (1 - kOverlap));
  const int64_t blend = static_cast<int64_t>(sample * kOverlap);
  const int64_t limit = sample - blend;
  check_arg(step > 0, "VAE tiled decode: sample_size is too small to tile");
  std::vector<std::vector<torch::Tensor>> rows;
  for (int64_t i = 0; i < z.size(2); i += step) {
    std::vector<torch::Tensor> row;
    for (int64_t j = 0; j < z.size(3); j += step) {
      torch::Tensor tile = z.narrow(2, i, std::min(T, z.size(2) - i)).narrow(3, j, std::min(T, z.size(3) - j));
      if (post_quant_conv) tile = post_quant_conv(tile);
      row.push_back(decoder->forward(tile));
    }
    rows.push_back(std::move(row));
  }
  auto blend_v = [](const torch::Tensor& a, torch::Tensor& b, int64_t extent) {
    extent = std::min({a.size(2), b.size(2), extent});
    for (int64_t y = 0; y < extent; ++y) {
      const double t = static_cast<double>(y) / static_cast<double>(extent);
      b.select(2, y).copy_(a.select(2, a.size(2) - extent + y) * (1 - t) + b.select(2, y) * t);
    }
  };
  auto blend_h = [](const torch::Tensor& a, torch::Tensor& b, int64_t extent) {
    extent = std::min({a.size(3), b.size(3), extent});
    for (int64_t x = 0; x < extent; ++x) {
      const double t = static_cast<double>(x) / static_cast<double>(extent);
      b.select(3, x).copy_(a.select(3, a.size(3) - extent + x) * (1 - t) + b.select(3, x) * t);
    }
  };
  std::vector<torch::Tensor> out_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<torch::Tensor> out_row;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      torch::Tensor& tile = rows[i][j];
      if (i > 0) blend_v(rows[i - 1][j], tile, blend);
      if (j > 0) blend_h(rows[i][j - 1], tile, blend);
      out_row.push_back(tile.narrow(2, 0, std::min(limit, tile.size(2))).narrow(3, 0, std::min(limit, tile.size(3))));
    }
    out_rows.push_back(torch::cat(out_row, 3));
  }
  return torch::cat(out_rows, 2);
}

}  // namespace onereward::models
