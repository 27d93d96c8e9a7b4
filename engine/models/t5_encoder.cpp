#include "engine/models/t5_encoder.h"

#include <cmath>
#include <limits>

#include "engine/models/attention.h"
#include "engine/models/layers.h"
#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace onereward::models {

namespace F = torch::nn::functional;

namespace {

T5Activation parse_activation(const JsonConfig& j, const std::string& key, const std::string& name) {
  if (name == "relu") return T5Activation::kRelu;
  if (name == "gelu_new") return T5Activation::kGeluNew;
  if (name == "gelu_pytorch_tanh" || name == "gelu_fast") return T5Activation::kGeluTanh;
  if (name == "gelu") return T5Activation::kGelu;
  if (name == "silu" || name == "swish") return T5Activation::kSilu;
  j.fail(key, "has unsupported activation '" + name + "' (relu, gelu_new, gelu_pytorch_tanh, gelu, silu)");
}

// math.sqrt(2.0 / math.pi) (M_PI is not standard C++).
constexpr double kSqrt2OverPi = 0.7978845608028654;

torch::Tensor activate(T5Activation act, const torch::Tensor& x) {
  switch (act) {
    case T5Activation::kRelu:
      return torch::relu(x);
    case T5Activation::kGeluNew:  // transformers NewGELUActivation, written out
      return 0.5 * x * (1.0 + torch::tanh(kSqrt2OverPi * (x + 0.044715 * torch::pow(x, 3.0))));
    case T5Activation::kGeluTanh:
      return torch::gelu(x, "tanh");
    case T5Activation::kGelu:
      return torch::gelu(x);
    case T5Activation::kSilu:
      return torch::silu(x);
  }
  throw_error(StatusCode::kInternal, "unknown T5 activation");
}

/// T5Block clamps the residual stream when it is float16 so that an overflow to inf does
/// not poison the rest of the network: ±(max - 1000) if any value is inf, else ±max.
torch::Tensor clamp_fp16(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kHalf) return x;
  const double max = 65504.0;  // torch.finfo(torch.float16).max
  torch::Tensor any_inf = torch::isinf(x).any();
  torch::Tensor bound =
      torch::where(any_inf, torch::full({}, max - 1000.0, x.options()), torch::full({}, max, x.options()));
  return torch::clamp(x, -bound, bound);  // tensor bounds: no host sync
}

}  // namespace

T5EncoderConfig T5EncoderConfig::from_json_file(const std::string& path) {
  JsonConfig j = JsonConfig::load(path);
  T5EncoderConfig c;
  c.vocab_size = j.get_int("vocab_size", c.vocab_size);
  c.d_model = j.get_int("d_model", c.d_model);
  c.d_kv = j.get_int("d_kv", c.d_kv);
  c.d_ff = j.get_int("d_ff", c.d_ff);
  c.num_layers = j.get_int("num_layers", c.num_layers);
  c.num_heads = j.get_int("num_heads", c.num_heads);
  c.relative_attention_num_buckets = j.get_int("relative_attention_num_buckets", c.relative_attention_num_buckets);
  c.relative_attention_max_distance = j.get_int("relative_attention_max_distance", c.relative_attention_max_distance);
  c.layer_norm_epsilon = j.get_double("layer_norm_epsilon", c.layer_norm_epsilon);

  // T5Config.__init__: parse feed_forward_proj, then PretrainedConfig applies the explicit
  // fields of config.json on top (so dense_act_fn / is_gated_act, when present, win).
  c.feed_forward_proj = j.get_string("feed_forward_proj", c.feed_forward_proj);
  {
    const std::string& ffp = c.feed_forward_proj;
    const auto dash = ffp.find('-');
    const bool gated = dash != std::string::npos && ffp.compare(0, dash, "gated") == 0;
    if ((dash != std::string::npos && !gated) ||
        (dash != std::string::npos && ffp.find('-', dash + 1) != std::string::npos)) {
      j.fail("feed_forward_proj", "must be 'ACT' or 'gated-ACT' (got '" + ffp + "')");
    }
    c.is_gated_act = gated;
    c.dense_act_fn = gated ? ffp.substr(dash + 1) : ffp;
    if (ffp == "gated-gelu") c.dense_act_fn = "gelu_new";  // T5Config's backwards-compatibility rule
  }
  c.dense_act_fn = j.get_string("dense_act_fn", c.dense_act_fn);
  c.is_gated_act = j.get_bool("is_gated_act", c.is_gated_act);
  c.act = parse_activation(j, j.has("dense_act_fn") ? "dense_act_fn" : "feed_forward_proj", c.dense_act_fn);

  if (c.vocab_size <= 0 || c.d_model <= 0 || c.d_kv <= 0 || c.d_ff <= 0 || c.num_heads <= 0 || c.num_layers < 0) {
    j.fail("d_model", "and the other sizes must be positive");
  }
  if (c.relative_attention_num_buckets < 4 ||
      c.relative_attention_max_distance <= c.relative_attention_num_buckets / 4) {
    j.fail("relative_attention_num_buckets", "must be >= 4 with relative_attention_max_distance > num_buckets / 4");
  }
  if (!(c.layer_norm_epsilon > 0)) j.fail("layer_norm_epsilon", "must be positive");
  return c;
}

nlohmann::json T5EncoderConfig::to_json() const {
  return {{"architectures", {"T5EncoderModel"}},
          {"model_type", "t5"},
          {"vocab_size", vocab_size},
          {"d_model", d_model},
          {"d_kv", d_kv},
          {"d_ff", d_ff},
          {"num_layers", num_layers},
          {"num_decoder_layers", num_layers},
          {"num_heads", num_heads},
          {"relative_attention_num_buckets", relative_attention_num_buckets},
          {"relative_attention_max_distance", relative_attention_max_distance},
          {"layer_norm_epsilon", layer_norm_epsilon},
          {"feed_forward_proj", feed_forward_proj},
          {"dense_act_fn", dense_act_fn},
          {"is_gated_act", is_gated_act},
          {"dropout_rate", 0.1},
          {"is_encoder_decoder", true},
          {"tie_word_embeddings", false},
          {"pad_token_id", 0},
          {"eos_token_id", 1},
          {"decoder_start_token_id", 0},
          {"torch_dtype", "float32"}};
}

torch::Tensor t5_relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                          int64_t num_buckets, int64_t max_distance) {
  torch::Tensor rel = relative_position;
  torch::Tensor buckets = torch::zeros_like(rel);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + rel.gt(0).to(torch::kLong) * num_buckets;
    rel = rel.abs();
  } else {
    rel = -torch::min(rel, torch::zeros_like(rel));
  }
  // rel is now in [0, inf): half the buckets are exact offsets, the other half grow
  // logarithmically up to max_distance.
  const int64_t max_exact = num_buckets / 2;
  torch::Tensor is_small = rel.lt(max_exact);
  // Same ops and scalar types as the reference: float32 tensor / int, log, / python float
  // (double), * int, then a truncating cast. rel = 0 gives -inf here, masked by is_small.
  torch::Tensor if_large = torch::log(rel.to(torch::kFloat) / max_exact) /
                           std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                           (num_buckets - max_exact);
  if_large = if_large.to(torch::kLong) + max_exact;
  if_large = torch::min(if_large, torch::full_like(if_large, num_buckets - 1));
  return buckets + torch::where(is_small, rel, if_large);
}

// ---------------------------------------------------------------------------------------

/// T5Attention (encoder self-attention): no biases, no 1/sqrt(d) scaling (folded into the
/// weights at training time), additive relative position bias.
class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5EncoderConfig& c, bool has_relative_attention_bias) : heads_(c.num_heads), d_kv_(c.d_kv) {
    q = register_module("q", Linear(c.d_model, c.inner_dim(), false));
    k = register_module("k", Linear(c.d_model, c.inner_dim(), false));
    v = register_module("v", Linear(c.d_model, c.inner_dim(), false));
    o = register_module("o", Linear(c.inner_dim(), c.d_model, false));
    if (has_relative_attention_bias) {
      relative_attention_bias =
          register_embedding(*this, "relative_attention_bias", c.relative_attention_num_buckets, c.num_heads);
    }
  }
  // x: [B, S, d_model], bias: [1, H, S, S] -> [B, S, d_model]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias) {
    const int64_t B = x.size(0), S = x.size(1);
    torch::Tensor qs = q(x).view({B, S, heads_, d_kv_});
    torch::Tensor ks = k(x).view({B, S, heads_, d_kv_});
    torch::Tensor vs = v(x).view({B, S, heads_, d_kv_});
    // softmax((q·kᵀ + bias).float()) · v; attention() adds the bias to the fp32 scores for
    // bf16/fp16 (the reference adds it in the activation dtype, then softmaxes in fp32).
    return o(attention(qs, ks, vs, /*scale=*/1.0, bias));  // [B, S, H*d_kv] -> [B, S, d_model]
  }
  Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::Tensor relative_attention_bias;  ///< [num_buckets, H], block 0 only

 private:
  int64_t heads_, d_kv_;
};
TORCH_MODULE(T5Attention);

/// T5LayerSelfAttention: x + SelfAttention(layer_norm(x)).
class T5LayerSelfAttentionImpl : public torch::nn::Module {
 public:
  T5LayerSelfAttentionImpl(const T5EncoderConfig& c, bool has_bias) {
    SelfAttention = register_module("SelfAttention", T5Attention(c, has_bias));
    layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
  }
  // x: [B, S, d_model] -> [B, S, d_model]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias) {
    // RMSNorm = T5LayerNorm: variance in fp32, no mean subtraction, cast to the weight dtype
    // before the scale for half/bf16 weights.
    return x + SelfAttention(layer_norm(x), bias);
  }
  T5Attention SelfAttention{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerSelfAttention);

/// T5DenseGatedActDense (wo(act(wi_0 x) * wi_1 x)) or T5DenseActDense (wo(act(wi x))).
class T5DenseImpl : public torch::nn::Module {
 public:
  explicit T5DenseImpl(const T5EncoderConfig& c) : act_(c.act), gated_(c.is_gated_act) {
    if (gated_) {
      wi_0 = register_module("wi_0", Linear(c.d_model, c.d_ff, false));
      wi_1 = register_module("wi_1", Linear(c.d_model, c.d_ff, false));
    } else {
      wi = register_module("wi", Linear(c.d_model, c.d_ff, false));
    }
    wo = register_module("wo", Linear(c.d_ff, c.d_model, false));
  }
  // x: [B, S, d_model] -> [B, S, d_model] (float32 when wo is kept in float32)
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = gated_ ? activate(act_, wi_0(x)) * wi_1(x) : activate(act_, wi(x));
    // As the reference: the input follows wo's dtype (fp32 wo under fp16 weights).
    if (h.scalar_type() != wo->weight.scalar_type()) h = h.to(wo->weight.scalar_type());
    return wo(h);
  }
  Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};

 private:
  T5Activation act_;
  bool gated_;
};
TORCH_MODULE(T5Dense);

/// T5LayerFF: x + DenseReluDense(layer_norm(x)).
class T5LayerFFImpl : public torch::nn::Module {
 public:
  explicit T5LayerFFImpl(const T5EncoderConfig& c) {
    DenseReluDense = register_module("DenseReluDense", T5Dense(c));
    layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
  }
  // x: [B, S, d_model] -> [B, S, d_model]
  torch::Tensor forward(const torch::Tensor& x) { return x + DenseReluDense(layer_norm(x)); }
  T5Dense DenseReluDense{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerFF);

/// T5Block (encoder): layer.0 = self-attention, layer.1 = feed-forward; fp16 clamps after each.
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5EncoderConfig& c, bool has_bias) {
    layer = register_module("layer", torch::nn::ModuleList());
    attn_ = std::make_shared<T5LayerSelfAttentionImpl>(c, has_bias);
    ff_ = std::make_shared<T5LayerFFImpl>(c);
    layer->push_back(attn_);
    layer->push_back(ff_);
  }
  // x: [B, S, d_model], bias: [1, H, S, S] -> [B, S, d_model]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias) {
    torch::Tensor h = clamp_fp16(attn_->forward(x, bias));
    return clamp_fp16(ff_->forward(h));
  }
  torch::nn::ModuleList layer{nullptr};
  std::shared_ptr<T5LayerSelfAttentionImpl> attn_;
  std::shared_ptr<T5LayerFFImpl> ff_;
};
TORCH_MODULE(T5Block);

/// T5Stack (encoder): block.N, final_layer_norm. The token embedding is the parent's
/// `shared` (tied), so the stack registers none.
class T5StackImpl : public torch::nn::Module {
 public:
  explicit T5StackImpl(const T5EncoderConfig& c) {
    block = register_module("block", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) {
      auto b = T5Block(c, /*has_bias=*/i == 0);
      blocks_.push_back(b.ptr());
      block->push_back(b);
    }
    final_layer_norm = register_module("final_layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
  }
  // x: [B, S, d_model] embeddings, bias: [1, H, S, S] -> [B, S, d_model]
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& bias) {
    for (auto& b : blocks_) x = b->forward(x, bias);
    return final_layer_norm(x);
  }
  torch::nn::ModuleList block{nullptr};
  RMSNorm final_layer_norm{nullptr};
  std::vector<std::shared_ptr<T5BlockImpl>> blocks_;
};

T5EncoderModelImpl::T5EncoderModelImpl(const T5EncoderConfig& cfg) : cfg_(cfg) {
  shared = register_embedding(*this, "shared", cfg.vocab_size, cfg.d_model);
  encoder = register_module("encoder", std::make_shared<T5StackImpl>(cfg));
}

torch::Tensor T5EncoderModelImpl::position_bias(int64_t seq_len) {
  constexpr size_t kMaxCachedLengths = 4;
  const torch::Tensor& table = encoder->blocks_.at(0)->attn_->SelfAttention->relative_attention_bias;
  std::lock_guard<std::mutex> lock(bias_mu_);
  for (const auto& e : bias_cache_) {
    // `table` holds the old storage alive, so equal data pointers mean the same weights
    // (loading replaces the parameter's storage, not the parameter).
    if (e.seq_len == seq_len && e.table.data_ptr() == table.data_ptr() && e.bias.scalar_type() == table.scalar_type() &&
        e.bias.device() == table.device()) {
      return e.bias;
    }
  }
  torch::Tensor bias = compute_position_bias(seq_len);
  if (bias_cache_.size() >= kMaxCachedLengths) bias_cache_.erase(bias_cache_.begin());
  bias_cache_.push_back({seq_len, table.detach(), bias});  // detach: an alias of today's storage
  return bias;
}

torch::Tensor T5EncoderModelImpl::compute_position_bias(int64_t seq_len) {
  // T5Attention.compute_bias: bucket(memory - context) -> embedding -> [1, H, Sq, Sk].
  auto& table = encoder->blocks_.at(0)->attn_->SelfAttention->relative_attention_bias;
  auto lopts = torch::TensorOptions().dtype(torch::kLong).device(table.device());
  torch::Tensor context = torch::arange(seq_len, lopts).unsqueeze(1);
  torch::Tensor memory = torch::arange(seq_len, lopts).unsqueeze(0);
  torch::Tensor buckets =
      t5_relative_position_bucket(memory - context, /*bidirectional=*/true, cfg_.relative_attention_num_buckets,
                                  cfg_.relative_attention_max_distance);
  return F::embedding(buckets, table).permute({2, 0, 1}).unsqueeze(0).contiguous();
}

torch::Tensor T5EncoderModelImpl::forward(const torch::Tensor& input_ids) {
  check_arg(input_ids.dim() == 2 && input_ids.size(0) > 0 && input_ids.size(1) > 0,
            "T5 input_ids must be a non-empty [B, S] tensor");
  check_arg(input_ids.scalar_type() == torch::kLong, "T5 input_ids must be int64");
  check_arg(cfg_.num_layers > 0, "T5 encoder has no layers");
  const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
  check_arg(lo >= 0 && hi < cfg_.vocab_size, "T5 input_ids must lie in [0, " + std::to_string(cfg_.vocab_size) + ")");
  torch::Tensor ids = input_ids.to(shared.device());
  // Padding is attended (no mask), so the extended attention mask of the reference is all
  // zeros and the bias is the position bias alone.
  torch::Tensor bias = position_bias(ids.size(1));
  return encoder->forward(F::embedding(ids, shared), bias);
}

void T5EncoderModelImpl::keep_wo_in_fp32() {
  torch::NoGradGuard no_grad;
  for (auto& b : encoder->blocks_) {
    auto& w = b->ff_->DenseReluDense->wo->weight;
    w.set_data(w.to(torch::kFloat32));
  }
}

T5EncoderModel load_t5_encoder(const std::string& dir, const TensorPlacement& placement) {
  T5EncoderModel model(T5EncoderConfig::from_json_file(dir + "/config.json"));
  WeightStore weights = WeightStore::open_dir(dir, "model.safetensors");
  LoadOptions opts;
  opts.placement = placement;
  const bool has_shared = weights.contains("shared.weight");
  if (!has_shared && weights.contains("encoder.embed_tokens.weight")) {
    opts.module_to_checkpoint = [](const std::string& name) {
      return name == "shared.weight" ? std::string("encoder.embed_tokens.weight") : name;
    };
  } else {
    opts.ignore_unexpected.insert("encoder.embed_tokens.weight");  // tied copy, when stored
  }
  // T5EncoderModel._keys_to_ignore_on_load_unexpected = [r"decoder"]; a full T5 checkpoint
  // also carries lm_head.
  for (const auto& key : weights.keys()) {
    if (key.rfind("decoder.", 0) == 0 || key.rfind("lm_head.", 0) == 0) opts.ignore_unexpected.insert(key);
  }
  load_module_strict(*model, weights, opts);
  if (placement.dtype == torch::kHalf) model->keep_wo_in_fp32();
  model->eval();
  return model;
}

}  // namespace onereward::models
