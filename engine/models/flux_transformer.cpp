#include "engine/models/flux_transformer.h"

#include "engine/models/attention.h"
#include "engine/util/json_config.h"

namespace onereward::models {

namespace F = torch::nn::functional;

FluxTransformerConfig FluxTransformerConfig::from_json_file(const std::string& path) {
  JsonConfig j = JsonConfig::load(path);
  FluxTransformerConfig c;
  c.in_channels = j.get_int("in_channels", c.in_channels);
  c.out_channels = j.has("out_channels") ? j.get_int("out_channels") : c.in_channels;
  c.num_layers = j.get_int("num_layers", c.num_layers);
  c.num_single_layers = j.get_int("num_single_layers", c.num_single_layers);
  c.attention_head_dim = j.get_int("attention_head_dim", c.attention_head_dim);
  c.num_attention_heads = j.get_int("num_attention_heads", c.num_attention_heads);
  c.joint_attention_dim = j.get_int("joint_attention_dim", c.joint_attention_dim);
  c.pooled_projection_dim = j.get_int("pooled_projection_dim", c.pooled_projection_dim);
  c.guidance_embeds = j.get_bool("guidance_embeds", c.guidance_embeds);
  if (j.has("axes_dims_rope")) c.axes_dims_rope = j.get_int_list("axes_dims_rope");
  c.patch_size = j.get_int("patch_size", 1);
  if (c.patch_size != 1) j.fail("patch_size", "must be 1 (FLUX packs 2x2 patches before the transformer)");
  int64_t rope_sum = 0;
  for (auto d : c.axes_dims_rope) {
    if (d <= 0 || d % 2 != 0) j.fail("axes_dims_rope", "entries must be positive and even");
    rope_sum += d;
  }
  if (rope_sum != c.attention_head_dim) j.fail("axes_dims_rope", "must sum to attention_head_dim");
  if (c.in_channels <= 0 || c.out_channels <= 0 || c.num_attention_heads <= 0 || c.attention_head_dim <= 0 ||
      c.num_layers < 0 || c.num_single_layers < 0 || c.joint_attention_dim <= 0 || c.pooled_projection_dim <= 0) {
    j.fail("num_attention_heads", "and the other sizes must be positive");
  }
  return c;
}

nlohmann::json FluxTransformerConfig::to_json() const {
  return {{"_class_name", "FluxTransformer2DModel"},
          {"attention_head_dim", attention_head_dim},
          {"axes_dims_rope", axes_dims_rope},
          {"guidance_embeds", guidance_embeds},
          {"in_channels", in_channels},
          {"joint_attention_dim", joint_attention_dim},
          {"num_attention_heads", num_attention_heads},
          {"num_layers", num_layers},
          {"num_single_layers", num_single_layers},
          {"out_channels", out_channels},
          {"patch_size", patch_size},
          {"pooled_projection_dim", pooled_projection_dim}};
}

FluxTransformerConfig FluxTransformerConfig::flux_fill_dev() {
  FluxTransformerConfig c;
  c.in_channels = 384;
  c.out_channels = 64;
  return c;
}

// ---------------------------------------------------------------------------------------
// Embeddings

/// diffusers TimestepEmbedding: linear_1 -> SiLU -> linear_2.
class MlpEmbedderImpl : public torch::nn::Module {
 public:
  MlpEmbedderImpl(int64_t in, int64_t dim) {
    linear_1 = register_module("linear_1", Linear(in, dim));
    linear_2 = register_module("linear_2", Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return linear_2(F::silu(linear_1(x))); }
  Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(MlpEmbedder);

/// CombinedTimestep(Guidance)TextProjEmbeddings: temb = emb(t) [+ emb(g)] + text(pooled).
class TimeTextEmbedImpl : public torch::nn::Module {
 public:
  TimeTextEmbedImpl(int64_t dim, int64_t pooled_dim, bool guidance) {
    timestep_embedder = register_module("timestep_embedder", MlpEmbedder(256, dim));
    if (guidance) guidance_embedder = register_module("guidance_embedder", MlpEmbedder(256, dim));
    text_embedder = register_module("text_embedder", MlpEmbedder(pooled_dim, dim));
  }
  // timestep, guidance: [B] (already x1000); pooled: [B, pooled_dim] -> [B, dim]
  torch::Tensor forward(const torch::Tensor& timestep, const torch::Tensor& guidance, const torch::Tensor& pooled) {
    const auto dt = pooled.scalar_type();
    torch::Tensor temb = timestep_embedder(timestep_embedding(timestep, 256).to(dt));
    if (guidance_embedder) temb = temb + guidance_embedder(timestep_embedding(guidance, 256).to(dt));
    return temb + text_embedder(pooled);
  }
  MlpEmbedder timestep_embedder{nullptr}, guidance_embedder{nullptr}, text_embedder{nullptr};
};

// ---------------------------------------------------------------------------------------
// Modulation

/// AdaLayerNormZero / AdaLayerNormZeroSingle: `linear(silu(temb))` split into n chunks.
class AdaModulationImpl : public torch::nn::Module {
 public:
  AdaModulationImpl(int64_t dim, int64_t chunks) : chunks_(chunks) {
    linear = register_module("linear", Linear(dim, chunks * dim));
  }
  // temb: [B, dim] -> chunks x [B, 1, dim]
  std::vector<torch::Tensor> forward(const torch::Tensor& temb) {
    torch::Tensor emb = linear(F::silu(temb)).unsqueeze(1);
    return emb.chunk(chunks_, -1);
  }
  Linear linear{nullptr};

 private:
  int64_t chunks_;
};
TORCH_MODULE(AdaModulation);

/// LayerNorm without affine (eps 1e-6), then x * (1 + scale) + shift.
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  torch::Tensor n = torch::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6);
  return torch::addcmul(shift, n, scale + 1.0);
}

/// AdaLayerNormContinuous (norm_out): emb = linear(silu(temb)); scale, shift = chunk(2).
class AdaNormContinuousImpl : public torch::nn::Module {
 public:
  explicit AdaNormContinuousImpl(int64_t dim) { linear = register_module("linear", Linear(dim, 2 * dim)); }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb) {
    auto parts = linear(F::silu(temb).to(x.scalar_type())).unsqueeze(1).chunk(2, -1);
    return modulate(x, parts[1], parts[0]);
  }
  Linear linear{nullptr};
};

// ---------------------------------------------------------------------------------------
// Attention

/// FluxAttention: q/k/v projections with RMS QK-norm; with `added_kv` also the text stream's
/// add_{q,k,v}_proj / norm_added_{q,k} / to_add_out (double-stream); `pre_only` has no output
/// projection (single-stream).
class FluxAttentionImpl : public torch::nn::Module {
 public:
  FluxAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim, bool added_kv, bool pre_only)
      : heads_(heads), head_dim_(head_dim) {
    const int64_t inner = heads * head_dim;
    to_q = register_module("to_q", Linear(dim, inner));
    to_k = register_module("to_k", Linear(dim, inner));
    to_v = register_module("to_v", Linear(dim, inner));
    norm_q = register_module("norm_q", RMSNorm(head_dim, 1e-6));
    norm_k = register_module("norm_k", RMSNorm(head_dim, 1e-6));
    if (!pre_only) {
      to_out = register_module("to_out", torch::nn::ModuleList());
      to_out->push_back(Linear(inner, dim));
    }
    if (added_kv) {
      add_q_proj = register_module("add_q_proj", Linear(dim, inner));
      add_k_proj = register_module("add_k_proj", Linear(dim, inner));
      add_v_proj = register_module("add_v_proj", Linear(dim, inner));
      norm_added_q = register_module("norm_added_q", RMSNorm(head_dim, 1e-6));
      norm_added_k = register_module("norm_added_k", RMSNorm(head_dim, 1e-6));
      to_add_out = register_module("to_add_out", Linear(inner, dim));
    }
  }

  // Projects x: [B, S, dim] into normed q, k and v: [B, S, H, D].
  void project(const torch::Tensor& x, Linear& pq, Linear& pk, Linear& pv, RMSNorm& nq, RMSNorm& nk,
               const ForwardContext* ctx, torch::Tensor* q, torch::Tensor* k, torch::Tensor* v) {
    const int64_t B = x.size(0), S = x.size(1);
    *q = nq(pq(x, ctx).view({B, S, heads_, head_dim_}));
    *k = nk(pk(x, ctx).view({B, S, heads_, head_dim_}));
    *v = pv(x, ctx).view({B, S, heads_, head_dim_});
  }

  // Single-stream: x [B, S, dim] -> [B, S, H*D] (no output projection).
  torch::Tensor forward_single(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                               const ForwardContext* ctx) {
    torch::Tensor q, k, v;
    project(x, to_q, to_k, to_v, norm_q, norm_k, ctx, &q, &k, &v);
    q = apply_rope(q, cos, sin);
    k = apply_rope(k, cos, sin);
    return attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(head_dim_)));
  }

  // Double-stream: img [B, Si, dim], txt [B, St, dim] -> (img_out, txt_out), joint attention
  // over [txt; img] tokens.
  std::pair<torch::Tensor, torch::Tensor> forward_joint(const torch::Tensor& img, const torch::Tensor& txt,
                                                        const torch::Tensor& cos, const torch::Tensor& sin,
                                                        const ForwardContext* ctx) {
    torch::Tensor q, k, v, tq, tk, tv;
    project(img, to_q, to_k, to_v, norm_q, norm_k, ctx, &q, &k, &v);
    project(txt, add_q_proj, add_k_proj, add_v_proj, norm_added_q, norm_added_k, ctx, &tq, &tk, &tv);
    q = apply_rope(torch::cat({tq, q}, 1), cos, sin);
    k = apply_rope(torch::cat({tk, k}, 1), cos, sin);
    v = torch::cat({tv, v}, 1);
    torch::Tensor o = attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(head_dim_)));
    const int64_t St = txt.size(1);
    torch::Tensor txt_o = o.narrow(1, 0, St);
    torch::Tensor img_o = o.narrow(1, St, o.size(1) - St);
    auto& out0 = *to_out[0]->as<LinearImpl>();
    return {out0.forward(img_o, ctx), to_add_out(txt_o, ctx)};
  }

  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  Linear add_q_proj{nullptr}, add_k_proj{nullptr}, add_v_proj{nullptr}, to_add_out{nullptr};
  RMSNorm norm_q{nullptr}, norm_k{nullptr}, norm_added_q{nullptr}, norm_added_k{nullptr};
  torch::nn::ModuleList to_out{nullptr};

 private:
  int64_t heads_, head_dim_;
};
TORCH_MODULE(FluxAttention);

/// diffusers FeedForward(dim, activation "gelu-tanh"): net.0.proj -> GELU(tanh) -> net.2.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden) {
    net = register_module("net", torch::nn::ModuleList());
    auto gelu = std::make_shared<torch::nn::Module>("GELU");
    proj = gelu->register_module("proj", Linear(dim, hidden));
    net->push_back(gelu);
    net->push_back(torch::nn::Identity());  // dropout in the reference (no weights)
    out = Linear(hidden, dim);
    net->push_back(out);
  }
  // x: [B, S, dim] -> [B, S, dim]
  torch::Tensor forward(const torch::Tensor& x, const ForwardContext* ctx) {
    return out(torch::gelu(proj(x, ctx), "tanh"), ctx);
  }
  torch::nn::ModuleList net{nullptr};
  Linear proj{nullptr}, out{nullptr};
};
TORCH_MODULE(FeedForward);

// ---------------------------------------------------------------------------------------
// Blocks

/// FluxTransformerBlock: image and text streams with their own modulation and MLPs,
/// one joint attention.
class FluxDoubleBlockImpl : public torch::nn::Module {
 public:
  FluxDoubleBlockImpl(int64_t dim, int64_t heads, int64_t head_dim) {
    norm1 = register_module("norm1", AdaModulation(dim, 6));
    norm1_context = register_module("norm1_context", AdaModulation(dim, 6));
    attn = register_module("attn", FluxAttention(dim, heads, head_dim, /*added_kv=*/true, /*pre_only=*/false));
    ff = register_module("ff", FeedForward(dim, 4 * dim));
    ff_context = register_module("ff_context", FeedForward(dim, 4 * dim));
  }
  // img: [B, Si, dim], txt: [B, St, dim], temb: [B, dim]
  void forward(torch::Tensor& img, torch::Tensor& txt, const torch::Tensor& temb, const torch::Tensor& cos,
               const torch::Tensor& sin, const ForwardContext* ctx) {
    // chunks: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
    auto m = norm1(temb);
    auto c = norm1_context(temb);
    auto [img_attn, txt_attn] = attn->forward_joint(modulate(img, m[0], m[1]), modulate(txt, c[0], c[1]), cos, sin, ctx);
    img = torch::addcmul(img, m[2], img_attn);
    img = torch::addcmul(img, m[5], ff(modulate(img, m[3], m[4]), ctx));
    txt = torch::addcmul(txt, c[2], txt_attn);
    txt = torch::addcmul(txt, c[5], ff_context(modulate(txt, c[3], c[4]), ctx));
    if (txt.scalar_type() == torch::kFloat16) txt = txt.clamp(-65504, 65504);
  }
  AdaModulation norm1{nullptr}, norm1_context{nullptr};
  FluxAttention attn{nullptr};
  FeedForward ff{nullptr}, ff_context{nullptr};
};
TORCH_MODULE(FluxDoubleBlock);

/// FluxSingleTransformerBlock: one stream over [txt; img], attention and MLP in parallel.
class FluxSingleBlockImpl : public torch::nn::Module {
 public:
  FluxSingleBlockImpl(int64_t dim, int64_t heads, int64_t head_dim) {
    const int64_t mlp = 4 * dim;
    norm = register_module("norm", AdaModulation(dim, 3));
    proj_mlp = register_module("proj_mlp", Linear(dim, mlp));
    proj_out = register_module("proj_out", Linear(dim + mlp, dim));
    attn = register_module("attn", FluxAttention(dim, heads, head_dim, /*added_kv=*/false, /*pre_only=*/true));
  }
  // x: [B, St + Si, dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& cos,
                        const torch::Tensor& sin, const ForwardContext* ctx) {
    auto m = norm(temb);  // shift, scale, gate
    torch::Tensor h = modulate(x, m[0], m[1]);
    torch::Tensor mlp = torch::gelu(proj_mlp(h, ctx), "tanh");
    torch::Tensor a = attn->forward_single(h, cos, sin, ctx);
    torch::Tensor y = torch::addcmul(x, m[2], proj_out(torch::cat({a, mlp}, 2), ctx));
    if (y.scalar_type() == torch::kFloat16) y = y.clamp(-65504, 65504);
    return y;
  }
  AdaModulation norm{nullptr};
  Linear proj_mlp{nullptr}, proj_out{nullptr};
  FluxAttention attn{nullptr};
};
TORCH_MODULE(FluxSingleBlock);

// ---------------------------------------------------------------------------------------

FluxTransformerImpl::FluxTransformerImpl(const FluxTransformerConfig& cfg) : cfg_(cfg) {
  const int64_t dim = cfg.inner_dim();
  x_embedder = register_module("x_embedder", Linear(cfg.in_channels, dim));
  context_embedder = register_module("context_embedder", Linear(cfg.joint_attention_dim, dim));
  time_text_embed = register_module(
      "time_text_embed", std::make_shared<TimeTextEmbedImpl>(dim, cfg.pooled_projection_dim, cfg.guidance_embeds));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_layers; ++i)
    transformer_blocks->push_back(FluxDoubleBlock(dim, cfg.num_attention_heads, cfg.attention_head_dim));
  single_transformer_blocks = register_module("single_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_single_layers; ++i)
    single_transformer_blocks->push_back(FluxSingleBlock(dim, cfg.num_attention_heads, cfg.attention_head_dim));
  norm_out = register_module("norm_out", std::make_shared<AdaNormContinuousImpl>(dim));
  proj_out = register_module("proj_out", Linear(dim, cfg.out_channels));
}

torch::Tensor FluxTransformerImpl::forward(const FluxInputs& in) {
  const auto dt = x_embedder->weight.scalar_type();
  const auto dev = x_embedder->weight.device();
  TORCH_CHECK(in.hidden_states.dim() == 3 && in.hidden_states.size(2) == cfg_.in_channels,
              "hidden_states must be [B, S, ", cfg_.in_channels, "]");
  TORCH_CHECK(in.encoder_hidden_states.dim() == 3 && in.encoder_hidden_states.size(2) == cfg_.joint_attention_dim,
              "encoder_hidden_states must be [B, S, ", cfg_.joint_attention_dim, "]");
  const int64_t B = in.hidden_states.size(0);
  torch::Tensor img = x_embedder(in.hidden_states.to(dev, dt), in.ctx);
  torch::Tensor timestep = in.timestep.to(dev).to(dt).reshape({-1}).expand({B}) * 1000.0;
  torch::Tensor guidance;
  if (cfg_.guidance_embeds) {
    TORCH_CHECK(in.guidance.defined(), "this transformer needs a guidance value");
    guidance = in.guidance.to(dev).to(dt).reshape({-1}).expand({B}) * 1000.0;
  }
  torch::Tensor temb = time_text_embed->forward(timestep, guidance, in.pooled_projections.to(dev, dt));
  torch::Tensor txt = context_embedder(in.encoder_hidden_states.to(dev, dt), in.ctx);

  const FluxRope rp = in.rope.cos.defined() ? in.rope : rope(in.txt_ids, in.img_ids);
  const torch::Tensor& cos = rp.cos;
  const torch::Tensor& sin = rp.sin;

  for (auto& m : *transformer_blocks) m->as<FluxDoubleBlockImpl>()->forward(img, txt, temb, cos, sin, in.ctx);
  const int64_t St = txt.size(1);
  torch::Tensor x = torch::cat({txt, img}, 1);
  for (auto& m : *single_transformer_blocks) x = m->as<FluxSingleBlockImpl>()->forward(x, temb, cos, sin, in.ctx);
  img = x.narrow(1, St, x.size(1) - St);
  return proj_out(norm_out->forward(img, temb), in.ctx);
}

FluxRope FluxTransformerImpl::rope(const torch::Tensor& txt_ids, const torch::Tensor& img_ids) const {
  auto [cos, sin] = flux_rope(torch::cat({txt_ids, img_ids}, 0), cfg_.axes_dims_rope);
  const auto dev = x_embedder->weight.device();
  return {cos.to(dev), sin.to(dev)};
}

double FluxTransformerImpl::flops(int64_t rows, int64_t img_tokens, int64_t txt_tokens) const {
  const double d = static_cast<double>(cfg_.inner_dim());
  const double S = static_cast<double>(img_tokens + txt_tokens);
  const double B = static_cast<double>(rows);
  // Per token and stream: qkv 3d², out d², mlp 8d² = 12 d² MACs (same for single blocks:
  // qkv 3d² + mlp 4d² + proj_out 5d²). Attention: 2·S²·d MACs (scores and values).
  const double per_block = 2.0 * B * (12.0 * d * d * S + 2.0 * S * S * d);
  double total = per_block * static_cast<double>(cfg_.num_layers + cfg_.num_single_layers);
  total += 2.0 * B * (img_tokens * (cfg_.in_channels * d + d * cfg_.out_channels) +
                      txt_tokens * cfg_.joint_attention_dim * d);
  // Modulation linears (per row, not per token).
  total += 2.0 * B * d * d * (12.0 * cfg_.num_layers + 3.0 * cfg_.num_single_layers + 2.0);
  return total;
}

}  // namespace onereward::models
