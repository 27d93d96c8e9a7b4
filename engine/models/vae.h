// The FLUX VAE (diffusers AutoencoderKL), with the checkpoint's key names:
// encoder.{conv_in, down_blocks.N.{resnets.M, downsamplers.0.conv}, mid_block, conv_norm_out, conv_out},
// decoder.{conv_in, mid_block, up_blocks.N.{resnets.M, upsamplers.0.conv}, conv_norm_out, conv_out},
// and the optional 1x1 quant_conv / post_quant_conv.
//
// Only the plain KL autoencoder is ported: DownEncoderBlock2D / UpDecoderBlock2D blocks,
// GroupNorm everywhere ("group" norm type), a mid block of resnet -> [attention] -> resnet.
// Everything sized comes from config.json; nothing assumes FLUX's 8x / 16-channel shape.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace onereward::models {

/// Typed view of the VAE's config.json.
struct VaeConfig {
  int64_t in_channels = 3;                           ///< image channels in
  int64_t out_channels = 3;                          ///< image channels out
  int64_t latent_channels = 4;                       ///< channels of one latent sample (the encoder emits 2x)
  std::vector<int64_t> block_out_channels = {64};    ///< one entry per down/up block
  int64_t layers_per_block = 1;                      ///< resnets per down block (up blocks have one more)
  int64_t norm_num_groups = 32;                      ///< GroupNorm groups (must divide every channel count)
  std::string act_fn = "silu";                       ///< resnet activation: silu/swish, mish, gelu, relu
  double scaling_factor = 0.18215;                   ///< latents fed to the transformer: (z - shift) * scaling
  double shift_factor = 0.0;                         ///< null in config.json reads as 0
  bool use_quant_conv = true;                        ///< 1x1 conv on the encoder's moments
  bool use_post_quant_conv = true;                   ///< 1x1 conv before the decoder
  bool mid_block_add_attention = true;               ///< the mid block has its single-head attention
  bool force_upcast = true;                          ///< informational: the FLUX pipelines ignore it
  int64_t sample_size = 32;                          ///< tile size in pixels for the optional tiled decode
  std::vector<std::string> down_block_types = {"DownEncoderBlock2D"};
  std::vector<std::string> up_block_types = {"UpDecoderBlock2D"};

  /// Spatial downscale between image and latent: 2^(len(block_out_channels) - 1).
  int64_t vae_scale_factor() const { return int64_t{1} << (block_out_channels.size() - 1); }
  /// Parses and validates config.json; errors name the file and the field.
  static VaeConfig from_json_file(const std::string& path);
  /// A diffusers-compatible config.json object (for writing tiny pipelines).
  nlohmann::json to_json() const;
  /// Throws Error(kInvalidArgument) if the sizes are inconsistent (`where` prefixes messages).
  void validate(const std::string& where) const;
};

/// The encoder's posterior: a diagonal Gaussian over latents (diffusers DiagonalGaussianDistribution).
struct DiagonalGaussian {
  torch::Tensor mean;    ///< [N, latent_channels, h, w]
  torch::Tensor logvar;  ///< clamped to [-30, 20]
  torch::Tensor std;     ///< exp(0.5 * logvar)
  /// mean + std * eps. eps: [N, latent_channels, h, w] standard normal draws (the caller owns
  /// the generator so the RNG order stays the pipeline's), in the posterior's dtype.
  torch::Tensor sample(const torch::Tensor& eps) const;
  /// The distribution's mode (diffusers `latent_dist.mode()`).
  const torch::Tensor& mode() const { return mean; }
};

/// How encode/decode split the work (memory vs. speed). Defaults run in one piece.
struct VaeRunOptions {
  /// Run the batch one image at a time (diffusers enable_slicing). Exact: same result.
  bool slicing = false;
  /// Decode in overlapping tiles of config.sample_size pixels, blended like diffusers
  /// `tiled_decode` (enable_tiling). NOT exact: tiles see less context. Off by default.
  bool tiling = false;
};

class VaeEncoderImpl;
class VaeDecoderImpl;

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const VaeConfig& cfg);

  // image: [N, in_channels, H, W] in [-1, 1] -> posterior over [N, latent_channels, H/f, W/f] (floor at each halving)
  DiagonalGaussian encode(const torch::Tensor& image, const VaeRunOptions& opts = {});
  // z: [N, latent_channels, h, w] (already unscaled: z / scaling + shift) -> [N, out_channels, h*f, w*f]
  torch::Tensor decode(const torch::Tensor& z, const VaeRunOptions& opts = {});

  const VaeConfig& config() const { return cfg_; }
  int64_t vae_scale_factor() const { return cfg_.vae_scale_factor(); }
  double scaling_factor() const { return cfg_.scaling_factor; }
  double shift_factor() const { return cfg_.shift_factor; }
  // (The (z - shift) * scaling conversions live with the latent layout: engine/sched/latents.h.)

  std::shared_ptr<VaeEncoderImpl> encoder;
  std::shared_ptr<VaeDecoderImpl> decoder;
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};

 private:
  torch::Tensor encode_moments(const torch::Tensor& x);
  torch::Tensor decode_one(const torch::Tensor& z, bool tiling);
  torch::Tensor tiled_decode(const torch::Tensor& z);
  VaeConfig cfg_;
};
TORCH_MODULE(AutoencoderKL);

}  // namespace onereward::models
