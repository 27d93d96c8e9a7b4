#include "engine/tools/presets.h"

#include "engine/util/status.h"

namespace onereward::tools {
namespace {

// FLUX.1's VAE (real) or the golden reference's 4-level 16..64 VAE.
models::VaeConfig vae_preset(bool real) {
  models::VaeConfig c;
  c.block_out_channels = real ? std::vector<int64_t>{128, 256, 512, 512} : std::vector<int64_t>{16, 32, 32, 64};
  c.down_block_types.assign(4, "DownEncoderBlock2D");
  c.up_block_types.assign(4, "UpDecoderBlock2D");
  c.latent_channels = 16;
  c.layers_per_block = real ? 2 : 1;
  c.norm_num_groups = real ? 32 : 8;
  c.sample_size = 1024;
  c.scaling_factor = 0.3611;
  c.shift_factor = 0.1159;
  c.use_quant_conv = false;
  c.use_post_quant_conv = false;
  return c;
}

// CLIP text model of the transformer's pooled width: CLIP-L for full, else 2 heads and
// 2 layers (one when wide).
models::ClipTextConfig clip_preset(int64_t hidden, bool full) {
  models::ClipTextConfig c;
  c.eos_token_id = 2;  // FLUX's legacy value: pooled at argmax(input_ids)
  c.hidden_size = hidden;
  if (full) return c;  // CLIP ViT-L/14 text model defaults (768, 12 layers, 12 heads, 3072)
  c.intermediate_size = 2 * hidden;
  c.num_attention_heads = 2;
  c.num_hidden_layers = hidden > 64 ? 1 : 2;
  return c;
}

// T5 encoder of the transformer's text width: T5-v1.1-XXL for full, else small.
models::T5EncoderConfig t5_preset(int64_t d_model, bool full) {
  models::T5EncoderConfig c;
  c.d_model = d_model;
  c.feed_forward_proj = "gated-gelu";
  c.dense_act_fn = "gelu_pytorch_tanh";
  c.act = models::T5Activation::kGeluTanh;
  c.is_gated_act = true;
  if (full) {
    c.d_kv = 64;
    c.num_heads = 64;
    c.d_ff = 10240;
    c.num_layers = 24;
    return c;
  }
  const bool big = d_model > 64;
  c.d_kv = 8;
  c.num_heads = 4;
  c.d_ff = big ? 256 : 64;
  c.num_layers = big ? 1 : 2;
  return c;
}

}  // namespace

models::FluxTransformerConfig transformer_preset(const std::string& name) {
  models::FluxTransformerConfig c = models::FluxTransformerConfig::flux_fill_dev();
  if (name == "full") return c;
  if (name == "bench") {
    c.num_layers = 2;
    c.num_single_layers = 4;
    c.num_attention_heads = 8;
    c.attention_head_dim = 128;
    return c;
  }
  if (name == "tiny") {
    c.num_layers = 2;
    c.num_single_layers = 2;
    c.num_attention_heads = 2;
    c.attention_head_dim = 16;
    c.axes_dims_rope = {4, 6, 6};
    c.joint_attention_dim = 32;
    c.pooled_projection_dim = 32;
    return c;
  }
  throw_error(StatusCode::kInvalidArgument, "unknown preset '" + name + "' (tiny, bench or full)");
}

PipelinePreset pipeline_preset(const std::string& name) {
  PipelinePreset p;
  p.transformer = transformer_preset(name);
  const bool full = name == "full";
  p.vae = vae_preset(name != "tiny");
  p.clip = clip_preset(p.transformer.pooled_projection_dim, full);
  p.t5 = t5_preset(p.transformer.joint_attention_dim, full);
  return p;
}

}  // namespace onereward::tools
