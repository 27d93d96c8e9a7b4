#include "engine/sched/flow_match.h"

#include <cmath>

#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace onereward::sched {

namespace {

// The reference rounds after every operation (numpy / Python never fuse a multiply-add).
// Writing each product through a volatile keeps the compiler from contracting a*b + c into
// an FMA on targets that have one, so results stay bit-identical to the reference.
inline double mul_d(double a, double b) {
  volatile double r = a * b;
  return r;
}
inline float mul_f(float a, float b) {
  volatile float r = a * b;
  return r;
}

// numpy.linspace(start, stop, num) (endpoint=True) in float64, as numpy 1.24 computes it:
// y = arange(num) * step + start with step = (stop - start) / (num - 1), last entry = stop.
std::vector<double> np_linspace(double start, double stop, int64_t num) {
  std::vector<double> y(static_cast<size_t>(num));
  const int64_t div = num - 1;
  const double delta = stop - start;
  if (div > 0) {
    const double step = delta / static_cast<double>(div);
    for (int64_t i = 0; i < num; ++i) {
      // numpy's denormal-step branch divides first; never hit for our inputs, kept for fidelity.
      const double v = step == 0 ? mul_d(static_cast<double>(i) / static_cast<double>(div), delta)
                                 : mul_d(static_cast<double>(i), step);
      y[static_cast<size_t>(i)] = v + start;
    }
    y[static_cast<size_t>(num - 1)] = stop;
  } else if (num == 1) {
    y[0] = mul_d(0.0, delta) + start;
  }
  return y;
}

void require_off(const JsonConfig& j, const std::string& key) {
  if (j.has(key) && !j.json().at(key).is_null() && j.get_bool(key)) j.fail(key, "is not supported (must be false)");
}

torch::Tensor row_view(const torch::Tensor& per_row, const torch::Tensor& like, const char* what) {
  // [B] (or one value) -> [B, 1, ..., 1] broadcastable against `like` [B, ...].
  if (per_row.numel() == 1) return per_row.reshape({});
  check_arg(per_row.dim() == 1 && per_row.size(0) == like.size(0),
            std::string(what) + " must have one value per batch row (" + std::to_string(like.size(0)) + "), got " +
                c10::str(per_row.sizes()));
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = like.size(0);
  return per_row.view(shape);
}

}  // namespace

FlowMatchConfig FlowMatchConfig::from_json_file(const std::string& path) {
  JsonConfig j = JsonConfig::load(path);
  FlowMatchConfig c;
  c.num_train_timesteps = j.get_int("num_train_timesteps", c.num_train_timesteps);
  c.shift = j.get_double("shift", c.shift);
  c.use_dynamic_shifting = j.get_bool("use_dynamic_shifting", c.use_dynamic_shifting);
  c.base_shift = j.get_double("base_shift", c.base_shift);
  c.max_shift = j.get_double("max_shift", c.max_shift);
  c.base_image_seq_len = j.get_int("base_image_seq_len", c.base_image_seq_len);
  c.max_image_seq_len = j.get_int("max_image_seq_len", c.max_image_seq_len);

  for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas",
                          "stochastic_sampling"}) {
    require_off(j, key);
  }
  // diffusers tests `if self.config.shift_terminal:`, so null and 0 both mean "off".
  if (auto t = j.get_optional_double("shift_terminal"); t.has_value() && *t != 0.0) {
    j.fail("shift_terminal", "is not supported (must be null)");
  }
  if (j.has("time_shift_type") && !j.json().at("time_shift_type").is_null()) {
    const std::string t = j.get_string("time_shift_type");
    if (t != "exponential") j.fail("time_shift_type", "is '" + t + "'; only 'exponential' is supported");
  }
  if (c.num_train_timesteps <= 0) j.fail("num_train_timesteps", "must be positive");
  if (!std::isfinite(c.shift) || c.shift <= 0.0) j.fail("shift", "must be positive");
  if (c.use_dynamic_shifting && c.max_image_seq_len == c.base_image_seq_len) {
    j.fail("max_image_seq_len", "must differ from base_image_seq_len");
  }
  return c;
}

FlowMatchConfig FlowMatchConfig::flux() {
  FlowMatchConfig c;
  c.shift = 3.0;
  c.use_dynamic_shifting = true;
  return c;
}

double calculate_shift(const FlowMatchConfig& cfg, int64_t image_seq_len) {
  // max_seq_len - base_seq_len is an int subtraction in Python; the rest is float64.
  const double m = (cfg.max_shift - cfg.base_shift) / static_cast<double>(cfg.max_image_seq_len - cfg.base_image_seq_len);
  const double b = cfg.base_shift - mul_d(m, static_cast<double>(cfg.base_image_seq_len));
  return mul_d(static_cast<double>(image_seq_len), m) + b;
}

int64_t image_seq_len(int64_t height, int64_t width, int64_t vae_scale_factor) {
  check_arg(height > 0 && width > 0 && vae_scale_factor > 0, "image_seq_len: sizes must be positive");
  return (height / vae_scale_factor / 2) * (width / vae_scale_factor / 2);
}

float Schedule::sigma(int64_t step) const { return sigmas.at(static_cast<size_t>(begin_index + step)); }
float Schedule::sigma_next(int64_t step) const { return sigmas.at(static_cast<size_t>(begin_index + step + 1)); }
float Schedule::timestep(int64_t step) const { return timesteps.at(static_cast<size_t>(begin_index + step)); }

std::vector<float> Schedule::run_timesteps() const {
  return std::vector<float>(timesteps.begin() + begin_index, timesteps.end());
}

Schedule make_schedule(const FlowMatchConfig& cfg, int64_t num_inference_steps, int64_t image_seq_len,
                       double strength) {
  const int64_t n = num_inference_steps;
  check_arg(n >= 1, "num_inference_steps must be at least 1, got " + std::to_string(n));
  check_arg(n <= 100000, "num_inference_steps is too large: " + std::to_string(n));
  check_arg(strength >= 0.0 && strength <= 1.0, "strength must be in [0, 1], got " + std::to_string(strength));
  check_arg(image_seq_len > 0, "image_seq_len must be positive");

  Schedule s;
  // 1. The pipeline's sigmas: np.linspace(1.0, 1 / N, N) in float64; set_timesteps casts to float32.
  const std::vector<double> lin = np_linspace(1.0, 1.0 / static_cast<double>(n), n);
  s.sigmas.reserve(static_cast<size_t>(n + 1));
  s.timesteps.reserve(static_cast<size_t>(n));

  // 2. Shift, in numpy float32 (Python float scalars are rounded to float32 when combined
  //    with a float32 array).
  if (cfg.use_dynamic_shifting) {
    s.mu = calculate_shift(cfg, image_seq_len);
    const float e = static_cast<float>(std::exp(s.mu));
    for (double v : lin) {
      const float t = static_cast<float>(v);
      const float r = 1.0f / t - 1.0f;  // (1/t - 1) ** 1.0 == the same float32 value
      s.sigmas.push_back(e / (e + r));
    }
  } else {
    const float sh = static_cast<float>(cfg.shift);
    const float sh1 = static_cast<float>(cfg.shift - 1.0);  // Python computes shift - 1 in float64
    for (double v : lin) {
      const float t = static_cast<float>(v);
      s.sigmas.push_back(mul_f(sh, t) / (1.0f + mul_f(sh1, t)));
    }
  }
  // 3. timesteps = sigmas * num_train_timesteps (float32 tensor times a Python int), then the
  //    terminal sigma 0.
  const float ntt = static_cast<float>(cfg.num_train_timesteps);
  for (float sg : s.sigmas) s.timesteps.push_back(mul_f(sg, ntt));
  s.sigmas.push_back(0.0f);

  // 4. Strength (get_timesteps): Python float math, int() truncates toward zero.
  const double nd = static_cast<double>(n);
  const double init_timestep = std::min(mul_d(nd, strength), nd);
  const double remaining = std::max(nd - init_timestep, 0.0);
  s.begin_index = static_cast<int64_t>(remaining);
  if (s.num_steps() < 1) {
    throw_error(StatusCode::kInvalidArgument, "strength " + std::to_string(strength) + " with " + std::to_string(n) +
                                                  " steps leaves no denoising step to run");
  }
  return s;
}

torch::Tensor scale_noise(const torch::Tensor& x0, const torch::Tensor& noise, const torch::Tensor& sigma) {
  check_arg(x0.sizes() == noise.sizes(),
            "scale_noise: x0 " + c10::str(x0.sizes()) + " and noise " + c10::str(noise.sizes()) + " differ");
  // sigmas.to(sample.dtype) first, then sigma * noise + (1.0 - sigma) * sample in that dtype.
  torch::Tensor s = row_view(sigma.to(x0.device(), x0.scalar_type()), x0, "scale_noise: sigma");
  return s * noise.to(x0.scalar_type()) + (1.0 - s) * x0;
}

torch::Tensor scale_noise(const torch::Tensor& x0, const torch::Tensor& noise, float sigma) {
  return scale_noise(x0, noise, torch::full({}, sigma, torch::kFloat32));
}

torch::Tensor euler_step(const torch::Tensor& sample, const torch::Tensor& model_output, const torch::Tensor& sigma,
                         const torch::Tensor& sigma_next) {
  check_arg(sample.sizes() == model_output.sizes(), "euler_step: sample " + c10::str(sample.sizes()) +
                                                        " and model_output " + c10::str(model_output.sizes()) +
                                                        " differ");
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(sample.device());
  // dt = sigma_next - sigma: float32 scalars in the reference, one per row here.
  torch::Tensor dt = row_view(sigma_next.to(f32) - sigma.to(f32), sample, "euler_step: sigma");
  const auto out_dtype = model_output.scalar_type();
  torch::Tensor prod = model_output.to(torch::kFloat32) * dt;
  if (out_dtype != torch::kFloat32) prod = prod.to(out_dtype).to(torch::kFloat32);
  torch::Tensor prev = sample.to(torch::kFloat32) + prod;
  return prev.to(out_dtype);
}

torch::Tensor euler_step(const torch::Tensor& sample, const torch::Tensor& model_output, float sigma,
                         float sigma_next) {
  return euler_step(sample, model_output, torch::full({}, sigma, torch::kFloat32),
                    torch::full({}, sigma_next, torch::kFloat32));
}

}  // namespace onereward::sched
