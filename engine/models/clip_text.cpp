#include "engine/models/clip_text.h"

#include <cmath>

#include "engine/models/attention.h"
#include "engine/models/layers.h"
#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace onereward::models {

namespace F = torch::nn::functional;

namespace {

ClipActivation parse_activation(const JsonConfig& j, const std::string& key, const std::string& name) {
  if (name == "quick_gelu") return ClipActivation::kQuickGelu;
  if (name == "gelu") return ClipActivation::kGelu;
  if (name == "gelu_new") return ClipActivation::kGeluNew;
  if (name == "gelu_pytorch_tanh" || name == "gelu_fast") return ClipActivation::kGeluTanh;
  if (name == "relu") return ClipActivation::kRelu;
  j.fail(key, "has unsupported activation '" + name + "' (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, relu)");
}

torch::Tensor activate(ClipActivation act, const torch::Tensor& x) {
  switch (act) {
    case ClipActivation::kQuickGelu:
      return x * torch::sigmoid(1.702 * x);
    case ClipActivation::kGelu:
      return torch::gelu(x);
    case ClipActivation::kGeluNew:  // transformers NewGELUActivation, written out
      return 0.5 * x * (1.0 + torch::tanh(0.7978845608028654 * (x + 0.044715 * torch::pow(x, 3.0))));
    case ClipActivation::kGeluTanh:
      return torch::gelu(x, "tanh");
    case ClipActivation::kRelu:
      return torch::relu(x);
  }
  throw_error(StatusCode::kInternal, "unknown CLIP activation");
}

}  // namespace

ClipTextConfig ClipTextConfig::from_json_file(const std::string& path) {
  JsonConfig j = JsonConfig::load(path);
  ClipTextConfig c;
  c.vocab_size = j.get_int("vocab_size", c.vocab_size);
  c.hidden_size = j.get_int("hidden_size", c.hidden_size);
  c.intermediate_size = j.get_int("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = j.get_int("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = j.get_int("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = j.get_int("max_position_embeddings", c.max_position_embeddings);
  c.layer_norm_eps = j.get_double("layer_norm_eps", c.layer_norm_eps);
  c.hidden_act_name = j.get_string("hidden_act", c.hidden_act_name);
  c.hidden_act = parse_activation(j, "hidden_act", c.hidden_act_name);
  c.eos_token_id = j.get_int("eos_token_id", c.eos_token_id);
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_hidden_layers < 0 ||
      c.max_position_embeddings <= 0) {
    j.fail("hidden_size", "and the other sizes must be positive");
  }
  if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0) {
    j.fail("num_attention_heads", "must be positive and divide hidden_size");
  }
  if (!(c.layer_norm_eps > 0)) j.fail("layer_norm_eps", "must be positive");
  return c;
}

nlohmann::json ClipTextConfig::to_json() const {
  return {{"architectures", {"CLIPTextModel"}},
          {"model_type", "clip_text_model"},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"max_position_embeddings", max_position_embeddings},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act_name},
          {"attention_dropout", 0.0},
          {"dropout", 0.0},
          {"bos_token_id", 0},
          {"eos_token_id", eos_token_id},
          {"pad_token_id", 1},
          {"projection_dim", hidden_size},
          {"torch_dtype", "float32"}};
}

// ---------------------------------------------------------------------------------------

/// CLIPAttention: q/k/v/out projections (with biases), causal softmax(q·kᵀ / sqrt(d)) · v.
class ClipAttentionImpl : public torch::nn::Module {
 public:
  ClipAttentionImpl(int64_t dim, int64_t heads) : heads_(heads), head_dim_(dim / heads) {
    k_proj = register_module("k_proj", Linear(dim, dim));
    v_proj = register_module("v_proj", Linear(dim, dim));
    q_proj = register_module("q_proj", Linear(dim, dim));
    out_proj = register_module("out_proj", Linear(dim, dim));
  }
  // x: [B, S, dim] -> [B, S, dim]
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), S = x.size(1);
    torch::Tensor q = q_proj(x).view({B, S, heads_, head_dim_});
    torch::Tensor k = k_proj(x).view({B, S, heads_, head_dim_});
    torch::Tensor v = v_proj(x).view({B, S, heads_, head_dim_});
    // The reference adds a finfo.min causal mask; -inf gives the same probabilities since
    // the diagonal is never masked. Softmax runs in fp32 for bf16/fp16 (the reference's
    // eager path runs it in the activation dtype: ours is the more precise of the two).
    torch::Tensor o = attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(head_dim_)), {}, /*causal=*/true);
    return out_proj(o);  // o: [B, S, H*D]
  }
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_, head_dim_;
};
TORCH_MODULE(ClipAttention);

/// CLIPMLP: fc1 -> activation -> fc2.
class ClipMlpImpl : public torch::nn::Module {
 public:
  ClipMlpImpl(int64_t dim, int64_t hidden, ClipActivation act) : act_(act) {
    fc1 = register_module("fc1", Linear(dim, hidden));
    fc2 = register_module("fc2", Linear(hidden, dim));
  }
  // x: [B, S, dim] -> [B, S, dim]
  torch::Tensor forward(const torch::Tensor& x) { return fc2(activate(act_, fc1(x))); }
  Linear fc1{nullptr}, fc2{nullptr};

 private:
  ClipActivation act_;
};
TORCH_MODULE(ClipMlp);

/// CLIPEncoderLayer (pre-LN): x += attn(ln1(x)); x += mlp(ln2(x)).
class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderLayerImpl(const ClipTextConfig& c) {
    self_attn = register_module("self_attn", ClipAttention(c.hidden_size, c.num_attention_heads));
    layer_norm1 = register_module("layer_norm1", LayerNorm(c.hidden_size, c.layer_norm_eps, true));
    mlp = register_module("mlp", ClipMlp(c.hidden_size, c.intermediate_size, c.hidden_act));
    layer_norm2 = register_module("layer_norm2", LayerNorm(c.hidden_size, c.layer_norm_eps, true));
  }
  // x: [B, S, dim] -> [B, S, dim]
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = x + self_attn(layer_norm1(x));
    return h + mlp(layer_norm2(h));
  }
  ClipAttention self_attn{nullptr};
  LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

/// CLIPTextTransformer: embeddings, encoder.layers.N, final_layer_norm.
class ClipTextTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipTextTransformerImpl(const ClipTextConfig& c) : cfg_(c) {
    auto embeddings = register_module("embeddings", std::make_shared<torch::nn::Module>("CLIPTextEmbeddings"));
    token_embedding = register_embedding(*embeddings, "token_embedding", c.vocab_size, c.hidden_size);
    position_embedding =
        register_embedding(*embeddings, "position_embedding", c.max_position_embeddings, c.hidden_size);
    auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>("CLIPEncoder"));
    layers = encoder->register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(ClipEncoderLayer(c));
    final_layer_norm = register_module("final_layer_norm", LayerNorm(c.hidden_size, c.layer_norm_eps, true));
  }

  // ids: [B, S] int64 on the weights' device, validated by the caller -> {[B, S, dim], [B, dim]}
  ClipTextOutput forward(const torch::Tensor& ids) {
    const int64_t S = ids.size(1);
    torch::Tensor x = F::embedding(ids, token_embedding) + position_embedding.narrow(0, 0, S).unsqueeze(0);
    for (const auto& layer : *layers) x = layer->as<ClipEncoderLayerImpl>()->forward(x);
    x = final_layer_norm(x);

    // Pooled token, as transformers (2024-08) picks it: configs with the legacy eos_token_id
    // 2 (FLUX's) take the position of the largest id, i.e. the first <|endoftext|> (49407,
    // the highest id; argmax returns the first maximum); other configs take the first
    // position equal to eos_token_id (position 0 when there is none, like the reference).
    torch::Tensor pos = cfg_.eos_token_id == 2 ? ids.argmax(-1) : ids.eq(cfg_.eos_token_id).to(torch::kInt).argmax(-1);
    torch::Tensor rows = torch::arange(ids.size(0), ids.options());
    torch::Tensor pooled = x.index({rows, pos});
    return {x, pooled};
  }

  torch::Tensor token_embedding, position_embedding;
  torch::nn::ModuleList layers{nullptr};
  LayerNorm final_layer_norm{nullptr};

 private:
  ClipTextConfig cfg_;
};

ClipTextModelImpl::ClipTextModelImpl(const ClipTextConfig& cfg) : cfg_(cfg) {
  text_model = register_module("text_model", std::make_shared<ClipTextTransformerImpl>(cfg));
}

ClipTextOutput ClipTextModelImpl::forward(const torch::Tensor& input_ids) {
  check_arg(input_ids.dim() == 2 && input_ids.size(0) > 0 && input_ids.size(1) > 0,
            "CLIP input_ids must be a non-empty [B, S] tensor");
  check_arg(input_ids.scalar_type() == torch::kLong, "CLIP input_ids must be int64");
  const int64_t S = input_ids.size(1);
  check_arg(S <= cfg_.max_position_embeddings, "CLIP input has " + std::to_string(S) +
                                                   " tokens, more than max_position_embeddings " +
                                                   std::to_string(cfg_.max_position_embeddings));
  // An out-of-range id would be undefined behaviour in the gather (a device assert on CUDA).
  // Checked where the ids are (CPU from the tokenizer: no device sync).
  const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
  check_arg(lo >= 0 && hi < cfg_.vocab_size, "CLIP input_ids must lie in [0, " + std::to_string(cfg_.vocab_size) + ")");
  return text_model->forward(input_ids.to(text_model->token_embedding.device()));
}

ClipTextModel load_clip_text_model(const std::string& dir, const TensorPlacement& placement) {
  ClipTextModel model(ClipTextConfig::from_json_file(dir + "/config.json"));
  WeightStore weights = WeightStore::open_dir(dir, "model.safetensors");
  LoadOptions opts;
  opts.placement = placement;
  // A non-persistent buffer (arange) in today's transformers; older files saved it.
  opts.ignore_unexpected = {"text_model.embeddings.position_ids"};
  load_module_strict(*model, weights, opts);
  model->eval();
  return model;
}

}  // namespace onereward::models
