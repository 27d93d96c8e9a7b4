#include "engine/models/layers.h"

#include <cmath>

namespace onereward::models {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias)
    : in_(in_features), out_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}), /*requires_grad=*/false);
  if (with_bias) bias = register_parameter("bias", torch::empty({out_features}), false);
}

void LinearImpl::set_adapter(size_t slot, torch::Tensor down, torch::Tensor up, double scale) {
  if (adapters_.size() <= slot) adapters_.resize(slot + 1);
  adapters_[slot] = Lora{down.to(weight.options()), up.to(weight.options()), scale};
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x, const ForwardContext* ctx) {
  torch::Tensor y = torch::nn::functional::linear(x, weight, bias);
  if (ctx == nullptr || adapters_.empty()) return y;
  for (size_t slot = 0; slot < adapters_.size() && slot < ctx->adapter_rows.size(); ++slot) {
    const Lora& a = adapters_[slot];
    const torch::Tensor& rows = ctx->adapter_rows[slot];
    if (!a.down.defined() || !rows.defined()) continue;
    // rows: [B] weight per batch row; broadcast over all but the batch dim.
    std::vector<int64_t> shape(x.dim(), 1);
    shape[0] = x.size(0);
    torch::Tensor w = (rows.to(y.dtype()) * a.scale).view(shape);
    torch::Tensor low = torch::nn::functional::linear(x, a.down);   // [B, ..., r]
    y.add_(torch::nn::functional::linear(low, a.up) * w);             // [B, ..., out]
  }
  return y;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}), false);
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Reference: x * rsqrt(mean(x^2) + eps) in float32, then * weight, back to the input dtype.
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  torch::Tensor y = xf * torch::rsqrt(var + eps_);
  if (weight.scalar_type() == torch::kFloat32) return (y * weight).to(x.scalar_type());
  return y.to(weight.scalar_type()) * weight;
}

LayerNormImpl::LayerNormImpl(int64_t dim, double eps, bool affine) : dim_(dim), eps_(eps) {
  if (affine) {
    weight = register_parameter("weight", torch::ones({dim}), false);
    bias = register_parameter("bias", torch::zeros({dim}), false);
  }
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {dim_}, weight, bias, eps_);
}

torch::Tensor register_embedding(torch::nn::Module& parent, const std::string& name, int64_t rows, int64_t dim) {
  auto holder = parent.register_module(name, std::make_shared<torch::nn::Module>("Embedding"));
  return holder->register_parameter("weight", torch::empty({rows, dim}), /*requires_grad=*/false);
}

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  torch::Tensor exponent = torch::arange(0, half, opts) * (-std::log(10000.0)) / static_cast<double>(half);
  torch::Tensor freqs = torch::exp(exponent);
  torch::Tensor args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // [B, half]
  // flip_sin_to_cos: cos first.
  torch::Tensor emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2 == 1) emb = torch::nn::functional::pad(emb, torch::nn::functional::PadFuncOptions({0, 1}));
  return emb;
}

namespace {
void visit_linears(torch::nn::Module& m, const std::string& prefix,
                   const std::function<void(const std::string&, LinearImpl&)>& fn) {
  for (auto& child : m.named_children()) {
    const std::string path = prefix.empty() ? child.key() : prefix + "." + child.key();
    if (auto* lin = child.value()->as<LinearImpl>()) fn(path, *lin);
    visit_linears(*child.value(), path, fn);
  }
}
}  // namespace

void for_each_linear(torch::nn::Module& root, const std::function<void(const std::string&, LinearImpl&)>& fn) {
  visit_linears(root, "", fn);
}

void randomize_parameters(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto params = module.named_parameters(true);
  std::map<std::string, int64_t> fan_in;  // module prefix -> fan_in of its weight
  for (auto& p : params) {
    const std::string& name = p.key();
    if (p.value().dim() >= 2 && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0) {
      fan_in[name.substr(0, name.size() - 7)] = p.value().numel() / p.value().size(0);
    }
  }
  for (auto& p : params) {
    torch::Tensor t = p.value();
    const std::string& name = p.key();
    auto cpu = torch::empty(t.sizes(), torch::kFloat32);
    const auto dot = name.rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    if (t.dim() >= 2) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(t.numel() / t.size(0)));
      cpu.uniform_(-bound, bound, gen);
      if (name.find("embed") != std::string::npos && t.dim() == 2 && name.find("embedder") == std::string::npos &&
          name.find("embedding") != std::string::npos) {
        cpu.normal_(0.0, 0.02, gen);  // token / position embeddings
      }
    } else if (leaf == "bias" && fan_in.count(prefix)) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in[prefix]));
      cpu.uniform_(-bound, bound, gen);
    } else if (leaf == "bias") {
      cpu.zero_();
    } else {
      cpu.fill_(1.0);
    }
    t.set_data(cpu.to(t.options()));
  }
}

int64_t count_parameters(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters(true)) n += p.numel();
  return n;
}

}  // namespace onereward::models
