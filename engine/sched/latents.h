// Latent layout of the FLUX Fill pipeline (diffusers FluxFillPipeline): 2x2 patch packing of
// VAE latents into transformer tokens, the tokens' position ids, the folded inpainting mask,
// and the conditioning tensor (masked-image latents + mask) the transformer sees next to the
// noisy latents. Every size comes from the arguments (VAE scale factor, latent channels):
// nothing here assumes FLUX's 8x / 16 channels.
#pragma once

#include <torch/torch.h>

#include "engine/models/vae.h"

namespace onereward::sched {

/// Latent height or width for an image size: 2 * (pixels // (vae_scale_factor * 2)), the
/// pipeline's rule (latent sides must be even for 2x2 packing).
int64_t latent_side(int64_t pixels, int64_t vae_scale_factor);

/// [B, C, h, w] -> [B, (h/2)*(w/2), 4C]: token (r, c) holds the 2x2 patch, channel-major
/// (index c*4 + dy*2 + dx). h and w must be even.
torch::Tensor pack_latents(const torch::Tensor& latents);

/// Inverse of pack_latents for an image of height x width pixels:
/// [B, S, 4C] -> [B, C, latent_side(height), latent_side(width)].
torch::Tensor unpack_latents(const torch::Tensor& packed, int64_t height, int64_t width, int64_t vae_scale_factor);

/// Position ids of the packed tokens, [rows*cols, 3] float32, row-major:
/// (0, row, col). rows = latent_h / 2, cols = latent_w / 2.
torch::Tensor latent_image_ids(int64_t rows, int64_t cols, const torch::TensorOptions& options = torch::kFloat32);

/// The inpainting mask folded into latent channels and packed (prepare_mask_latents):
/// mask [B, 1, H, W] (1 = repaint) -> view(B, h, f, w, f).permute(0, 2, 4, 1, 3)
/// .reshape(B, f*f, h, w) -> pack -> [B, (h/2)*(w/2), 4*f*f], with f = vae_scale_factor and
/// h = latent_side(H). H and W must equal h*f and w*f (the reference's view needs it).
torch::Tensor pack_mask(const torch::Tensor& mask, int64_t vae_scale_factor);

/// Repeats a batch to `batch` rows the way the pipeline does (tiles: a, b, a, b), when
/// `batch` is a multiple of its rows; equal sizes pass through. Anything else is an
/// Error(kInvalidArgument) naming `what`.
torch::Tensor repeat_to_batch(const torch::Tensor& t, int64_t batch, const char* what);

/// The Fill conditioning, [batch, S, 4*latent_channels + 4*f*f] (f = vae_scale_factor):
/// cat(pack((masked_sample - shift) * scaling), pack_mask(mask), -1), with the masked-image
/// latents and the mask each repeated to `batch` (prepare_mask_latents).
/// masked_sample: the VAE posterior sample of image * (1 - mask), [n, C, h, w];
/// mask: [m, 1, H, W]; batch must be a multiple of n and of m.
torch::Tensor fill_condition(const torch::Tensor& masked_sample, const torch::Tensor& mask, int64_t batch,
                             const models::VaeConfig& vae);

/// The starting latents (prepare_latents): image latents ((sample - shift) * scaling,
/// repeated to noise's batch) noised to `sigma` (per row [B] or one value), then packed.
/// image_sample: [n, C, h, w]; noise: [B, C, h, w] -> [B, S, 4C].
torch::Tensor initial_latents(const torch::Tensor& image_sample, const torch::Tensor& noise, const torch::Tensor& sigma,
                              const models::VaeConfig& vae);

/// (z - shift_factor) * scaling_factor, the VAE sample in transformer latent space.
torch::Tensor scale_vae_latents(const torch::Tensor& z, const models::VaeConfig& vae);
/// z / scaling_factor + shift_factor, transformer latents back to the decoder's input.
torch::Tensor unscale_vae_latents(const torch::Tensor& z, const models::VaeConfig& vae);

}  // namespace onereward::sched
