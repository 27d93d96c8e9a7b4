// FLUX.1 transformer (diffusers FluxTransformer2DModel), with the checkpoint's key names:
// x_embedder, context_embedder, time_text_embed, transformer_blocks.N (double-stream),
// single_transformer_blocks.N (single-stream), norm_out, proj_out.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/models/layers.h"

namespace onereward::models {

/// Typed view of the transformer's config.json (every size comes from here).
struct FluxTransformerConfig {
  int64_t in_channels = 64;            ///< packed latent (+ conditioning) channels per token
  int64_t out_channels = 64;           ///< predicted channels per token (in_channels if absent)
  int64_t num_layers = 19;             ///< double-stream blocks
  int64_t num_single_layers = 38;      ///< single-stream blocks
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 24;
  int64_t joint_attention_dim = 4096;  ///< T5 hidden size
  int64_t pooled_projection_dim = 768; ///< CLIP pooled size
  bool guidance_embeds = true;
  std::vector<int64_t> axes_dims_rope = {16, 56, 56};
  int64_t patch_size = 1;

  int64_t inner_dim() const { return attention_head_dim * num_attention_heads; }
  static FluxTransformerConfig from_json_file(const std::string& path);
  /// A diffusers-compatible config.json object (for writing tiny pipelines).
  nlohmann::json to_json() const;
  /// FLUX.1-Fill-dev's real config.
  static FluxTransformerConfig flux_fill_dev();
};

/// Rotary tables for a token layout: cos/sin [S_txt + S_img, head_dim] on the model's device.
struct FluxRope {
  torch::Tensor cos, sin;
};

/// Inputs of one transformer call. Batch rows may have different timesteps and guidance.
struct FluxInputs {
  torch::Tensor hidden_states;          ///< [B, S_img, in_channels]
  torch::Tensor encoder_hidden_states;  ///< [B, S_txt, joint_attention_dim]
  torch::Tensor pooled_projections;     ///< [B, pooled_projection_dim]
  torch::Tensor timestep;               ///< [B], t / 1000 (the model scales by 1000)
  torch::Tensor guidance;               ///< [B] (ignored without guidance_embeds)
  torch::Tensor img_ids;                ///< [S_img, 3]
  torch::Tensor txt_ids;                ///< [S_txt, 3]
  /// Optional precomputed rope(txt_ids, img_ids) (a job's layout is fixed, so callers that
  /// step the same layout many times compute it once); computed from the ids when empty.
  FluxRope rope;
  const ForwardContext* ctx = nullptr;  ///< per-row adapter weights (may be null)
};

class FluxAttentionImpl;
class FluxDoubleBlockImpl;
class FluxSingleBlockImpl;
class TimeTextEmbedImpl;
class AdaNormContinuousImpl;

class FluxTransformerImpl : public torch::nn::Module {
 public:
  explicit FluxTransformerImpl(const FluxTransformerConfig& cfg);
  // -> [B, S_img, out_channels]
  torch::Tensor forward(const FluxInputs& in);
  const FluxTransformerConfig& config() const { return cfg_; }

  /// Rotary tables for [txt; img] tokens with these position ids, on the model's device.
  FluxRope rope(const torch::Tensor& txt_ids, const torch::Tensor& img_ids) const;

  /// Analytic multiply-add FLOPs (x2) of one forward with `rows` batch rows.
  double flops(int64_t rows, int64_t img_tokens, int64_t txt_tokens) const;

 private:
  FluxTransformerConfig cfg_;
  Linear x_embedder{nullptr}, context_embedder{nullptr}, proj_out{nullptr};
  std::shared_ptr<TimeTextEmbedImpl> time_text_embed;
  torch::nn::ModuleList transformer_blocks, single_transformer_blocks;
  std::shared_ptr<AdaNormContinuousImpl> norm_out;
};
TORCH_MODULE(FluxTransformer);

}  // namespace onereward::models
