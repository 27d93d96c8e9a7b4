// Flow-matching Euler schedule of the FLUX pipelines (diffusers FlowMatchEulerDiscreteScheduler
// as FluxFillPipeline drives it): sigmas, timesteps, strength slicing, the forward noising
// (scale_noise) and the Euler step.
//
// The scheduler object in diffusers is stateful (step index); here a job's schedule is a plain
// value (`Schedule`) that the job owns, and the math functions take per-row sigmas, so one
// batched call can advance jobs that sit at different steps of different schedules.
//
// Numerics follow the reference bit for bit where it is specified: float64 Python math for
// mu, np.linspace in float64 cast to float32, the shift formula in float32, timesteps =
// sigmas * num_train_timesteps in float32, the Euler update in float32.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

namespace onereward::sched {

/// Typed view of scheduler_config.json (the options FLUX uses; others are rejected at load).
struct FlowMatchConfig {
  int64_t num_train_timesteps = 1000;
  double shift = 1.0;               ///< static shift (used when use_dynamic_shifting is false)
  bool use_dynamic_shifting = false;
  double base_shift = 0.5;          ///< mu at base_image_seq_len
  double max_shift = 1.15;          ///< mu at max_image_seq_len
  int64_t base_image_seq_len = 256;
  int64_t max_image_seq_len = 4096;

  /// Parses scheduler_config.json. Fails (JsonConfig error naming file and field) on options
  /// we do not implement: karras / exponential / beta sigmas, invert_sigmas, shift_terminal,
  /// stochastic_sampling, time_shift_type other than "exponential".
  static FlowMatchConfig from_json_file(const std::string& path);
  /// FLUX.1-dev / FLUX.1-Fill-dev's scheduler_config.json.
  static FlowMatchConfig flux();
};

/// Resolution-dependent shift (diffusers calculate_shift, Python float64):
/// m = (max_shift - base_shift) / (max_len - base_len); mu = len * m + (base_shift - m * base_len).
double calculate_shift(const FlowMatchConfig& cfg, int64_t image_seq_len);

/// Number of packed latent tokens of an image (the pipeline's image_seq_len):
/// (height // vae_scale_factor // 2) * (width // vae_scale_factor // 2).
int64_t image_seq_len(int64_t height, int64_t width, int64_t vae_scale_factor);

/// One job's noise schedule. Run step i (0-based) goes from sigma(i) to sigma_next(i) and
/// shows the transformer timestep(i) / 1000.
struct Schedule {
  std::vector<float> sigmas;     ///< full schedule, N + 1 values (trailing 0)
  std::vector<float> timesteps;  ///< full schedule, N values (sigma * num_train_timesteps)
  int64_t begin_index = 0;       ///< t_start: first schedule index actually run (strength < 1)
  double mu = 0.0;               ///< shift used (dynamic shifting), 0 for a static shift

  /// Steps actually run: N - begin_index (>= 1 for a schedule from make_schedule).
  int64_t num_steps() const { return static_cast<int64_t>(timesteps.size()) - begin_index; }
  float sigma(int64_t step) const;
  float sigma_next(int64_t step) const;
  /// The schedule's t at run step `step`. The pipeline hands the transformer
  /// (t cast to the latents' dtype) / 1000, a division in that dtype.
  float timestep(int64_t step) const;
  /// sigma of the starting latents (scale_noise): sigmas[begin_index].
  float initial_sigma() const { return sigmas.at(static_cast<size_t>(begin_index)); }
  /// timesteps[begin_index:], the values the denoising loop iterates over.
  std::vector<float> run_timesteps() const;
};

/// The schedule the fill pipeline builds: sigmas_in = linspace(1, 1/N, N), shifted (dynamic:
/// exp(mu) / (exp(mu) + (1/s - 1)), mu = calculate_shift(image_seq_len); static:
/// shift*s / (1 + (shift-1)*s)), then strength slicing: init = min(N*strength, N),
/// t_start = int(max(N - init, 0)). Errors (kInvalidArgument) for N < 1, strength outside
/// [0, 1], or a strength that leaves no step to run.
Schedule make_schedule(const FlowMatchConfig& cfg, int64_t num_inference_steps, int64_t image_seq_len,
                       double strength = 1.0);

/// Forward flow-matching noising: sigma * noise + (1 - sigma) * x0, in x0's dtype (the reference
/// casts sigma to the sample's dtype first).
/// x0, noise: [B, ...]; sigma: float32 [B] (one per row) or a 0-dim / 1-element tensor.
torch::Tensor scale_noise(const torch::Tensor& x0, const torch::Tensor& noise, const torch::Tensor& sigma);
torch::Tensor scale_noise(const torch::Tensor& x0, const torch::Tensor& noise, float sigma);

/// Euler step: sample + (sigma_next - sigma) * model_output, with the sample upcast to float32
/// and the result cast to model_output's dtype, as FlowMatchEulerDiscreteScheduler.step.
/// sample, model_output: [B, ...]; sigma, sigma_next: float32 [B] (per row) or 0-dim.
/// For a reduced-precision model_output the product dt * model_output is rounded to that
/// dtype before the float32 add (the reference's product tensor has the model's dtype).
torch::Tensor euler_step(const torch::Tensor& sample, const torch::Tensor& model_output, const torch::Tensor& sigma,
                         const torch::Tensor& sigma_next);
torch::Tensor euler_step(const torch::Tensor& sample, const torch::Tensor& model_output, float sigma,
                         float sigma_next);

}  // namespace onereward::sched
