#include "engine/sched/latents.h"

#include "engine/sched/flow_match.h"
#include "engine/util/status.h"

namespace onereward::sched {

int64_t latent_side(int64_t pixels, int64_t vae_scale_factor) {
  check_arg(pixels > 0 && vae_scale_factor > 0, "latent_side: sizes must be positive");
  return 2 * (pixels / (vae_scale_factor * 2));
}

torch::Tensor pack_latents(const torch::Tensor& latents) {
  check_arg(latents.dim() == 4, "pack_latents: expected [B, C, h, w], got " + c10::str(latents.sizes()));
  const int64_t B = latents.size(0), C = latents.size(1), h = latents.size(2), w = latents.size(3);
  check_arg(h % 2 == 0 && w % 2 == 0, "pack_latents: latent height and width must be even, got " +
                                          std::to_string(h) + "x" + std::to_string(w));
  // [B, C, h/2, 2, w/2, 2] -> [B, h/2, w/2, C, 2, 2] -> [B, S, 4C]
  return latents.reshape({B, C, h / 2, 2, w / 2, 2})
      .permute({0, 2, 4, 1, 3, 5})
      .reshape({B, (h / 2) * (w / 2), C * 4});
}

torch::Tensor unpack_latents(const torch::Tensor& packed, int64_t height, int64_t width, int64_t vae_scale_factor) {
  check_arg(packed.dim() == 3, "unpack_latents: expected [B, S, 4C], got " + c10::str(packed.sizes()));
  const int64_t B = packed.size(0), S = packed.size(1), D = packed.size(2);
  const int64_t h = latent_side(height, vae_scale_factor), w = latent_side(width, vae_scale_factor);
  check_arg(D % 4 == 0, "unpack_latents: channels must be a multiple of 4, got " + std::to_string(D));
  check_arg(S == (h / 2) * (w / 2), "unpack_latents: " + std::to_string(S) + " tokens do not fit a " +
                                        std::to_string(height) + "x" + std::to_string(width) + " image");
  // [B, h/2, w/2, C, 2, 2] -> [B, C, h/2, 2, w/2, 2] -> [B, C, h, w]
  return packed.reshape({B, h / 2, w / 2, D / 4, 2, 2}).permute({0, 3, 1, 4, 2, 5}).reshape({B, D / 4, h, w});
}

torch::Tensor latent_image_ids(int64_t rows, int64_t cols, const torch::TensorOptions& options) {
  check_arg(rows > 0 && cols > 0, "latent_image_ids: grid must be non-empty");
  // Built in float32 like the reference (zeros + arange), then converted.
  torch::Tensor ids = torch::zeros({rows, cols, 3}, torch::kFloat32);
  ids.select(2, 1).add_(torch::arange(rows, torch::kFloat32).unsqueeze(1));
  ids.select(2, 2).add_(torch::arange(cols, torch::kFloat32).unsqueeze(0));
  return ids.reshape({rows * cols, 3}).to(options);
}

torch::Tensor pack_mask(const torch::Tensor& mask, int64_t vae_scale_factor) {
  check_arg(mask.dim() == 4 && mask.size(1) == 1, "pack_mask: expected [B, 1, H, W], got " + c10::str(mask.sizes()));
  const int64_t f = vae_scale_factor;
  const int64_t B = mask.size(0), H = mask.size(2), W = mask.size(3);
  const int64_t h = latent_side(H, f), w = latent_side(W, f);
  check_arg(H == h * f && W == w * f, "pack_mask: mask size " + std::to_string(H) + "x" + std::to_string(W) +
                                          " must be a multiple of " + std::to_string(2 * f));
  // [B, h, f, w, f] -> [B, f, f, h, w] -> [B, f*f, h, w]: channel (dy*f + dx) holds pixel
  // (y*f + dy, x*f + dx) of latent cell (y, x).
  torch::Tensor folded = mask.select(1, 0).reshape({B, h, f, w, f}).permute({0, 2, 4, 1, 3}).reshape({B, f * f, h, w});
  return pack_latents(folded);
}

torch::Tensor repeat_to_batch(const torch::Tensor& t, int64_t batch, const char* what) {
  const int64_t n = t.size(0);
  if (n == batch) return t;
  if (n < batch && n > 0 && batch % n == 0) {
    std::vector<int64_t> reps(static_cast<size_t>(t.dim()), 1);
    reps[0] = batch / n;
    return t.repeat(reps);
  }
  throw_error(StatusCode::kInvalidArgument, std::string(what) + ": " + std::to_string(n) +
                                                " rows cannot be repeated to a batch of " + std::to_string(batch) +
                                                " (the batch must be a multiple of them)");
}

torch::Tensor scale_vae_latents(const torch::Tensor& z, const models::VaeConfig& vae) {
  // The same two ops as the pipeline, so the float rounding matches.
  return (z - vae.shift_factor) * vae.scaling_factor;
}

torch::Tensor unscale_vae_latents(const torch::Tensor& z, const models::VaeConfig& vae) {
  return z / vae.scaling_factor + vae.shift_factor;
}

torch::Tensor fill_condition(const torch::Tensor& masked_sample, const torch::Tensor& mask, int64_t batch,
                             const models::VaeConfig& vae) {
  check_arg(masked_sample.dim() == 4 && masked_sample.size(1) == vae.latent_channels,
            "fill_condition: masked-image latents must be [n, " + std::to_string(vae.latent_channels) +
                ", h, w], got " + c10::str(masked_sample.sizes()));
  check_arg(batch > 0, "fill_condition: batch must be positive");
  check_arg(mask.dim() == 4 && mask.size(1) == 1, "fill_condition: mask must be [m, 1, H, W], got " +
                                                      c10::str(mask.sizes()));
  const int64_t f = vae.vae_scale_factor();
  // The reference repeats the mask first, then the latents (same error order).
  torch::Tensor m = repeat_to_batch(mask, batch, "mask");
  torch::Tensor lat = repeat_to_batch(scale_vae_latents(masked_sample, vae), batch, "masked image latents");
  check_arg(lat.size(2) == latent_side(mask.size(2), f) && lat.size(3) == latent_side(mask.size(3), f),
            "fill_condition: mask " + c10::str(mask.sizes()) + " does not match latents " + c10::str(lat.sizes()));
  torch::Tensor packed = pack_latents(lat);               // [B, S, 4C]
  torch::Tensor packed_mask = pack_mask(m, f).to(lat.options());  // [B, S, 4 f^2]
  return torch::cat({packed, packed_mask}, -1);           // [B, S, 4C + 4 f^2]
}

torch::Tensor initial_latents(const torch::Tensor& image_sample, const torch::Tensor& noise, const torch::Tensor& sigma,
                              const models::VaeConfig& vae) {
  check_arg(image_sample.dim() == 4 && noise.dim() == 4 && image_sample.sizes().slice(1) == noise.sizes().slice(1),
            "initial_latents: image latents " + c10::str(image_sample.sizes()) + " and noise " +
                c10::str(noise.sizes()) + " differ");
  torch::Tensor lat = repeat_to_batch(scale_vae_latents(image_sample, vae), noise.size(0), "image latents");
  return pack_latents(scale_noise(lat, noise, sigma));
}

}  // namespace onereward::sched
