// The engine's public API: load a pipeline once, then drive jobs through stages.
//
//   prepare(request) -> Job     prompts (through the cache), VAE encodes, noise, schedule
//   step(jobs)                  one denoising step for a batch of compatible jobs
//   finish(job) -> images       VAE decode and post-processing
//   run(request)                the three chained (offline tool)
//
// This header is free of libtorch, gRPC and OpenCV so the server can include it cheaply.
// No exception crosses it: every call returns a Status or Result.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/image/types.h"
#include "engine/util/status.h"

namespace onereward {

enum class Task { kFill, kExtend, kRemove };
const char* task_name(Task t);

/// Fixed prompts of the tasks (OneReward's model card).
inline constexpr const char* kRemovePrompt = "remove";
inline constexpr const char* kExtendPrompt = "high-definition, perfect composition";
inline constexpr const char* kDefaultNegativePrompt = "nsfw";

struct Margins {
  int left = 0, top = 0, right = 0, bottom = 0;
  bool empty() const { return left == 0 && top == 0 && right == 0 && bottom == 0; }
};

struct AdapterWeight {
  std::string name;
  float weight = 1.0f;
};

/// One request. Defaults are the model card's.
struct FillRequest {
  Task task = Task::kFill;
  image::Image image;                ///< RGB; for extend without a mask: the original image
  std::optional<image::Image> mask;  ///< white = regenerate; required for fill/remove
  Margins extend;                    ///< extend: grow the canvas by these margins (if no mask)
  /// Prompts (one per image set; the engine API accepts several, the server sends one).
  /// Empty: the task's fixed prompt for remove and extend; fill needs one.
  std::vector<std::string> prompts;
  std::vector<std::string> prompts_2;  ///< T5 prompts (default: prompts)
  std::vector<std::string> negative_prompts = {kDefaultNegativePrompt};  ///< one, or one per prompt
  int steps = 50;
  float true_cfg = 4.0f;
  float guidance_scale = 1.0f;
  float strength = 1.0f;
  uint64_t seed = 0;
  int width = 0, height = 0;  ///< 0 = from the image (floored to a multiple of 16)
  int num_images = 1;         ///< per prompt
  std::string variant;        ///< "" = the engine's default
  std::vector<AdapterWeight> adapters;
  bool keep_tensors = false;  ///< also return float images and final latents (tools, tests)
};

struct StageTimings {
  double text_ms = 0, vae_encode_ms = 0, denoise_ms = 0, vae_decode_ms = 0;
};

struct FillOutput {
  std::vector<image::Image> images;  ///< 8-bit RGB, prompt-major (p0 i0, p0 i1, p1 i0 ...)
  int width = 0, height = 0;
  uint64_t seed = 0;
  StageTimings timings;
  // With keep_tensors: float32 image [N,3,H,W] in [0,1] and packed final latents [N,S,C].
  std::vector<float> image_f32;
  std::vector<int64_t> image_shape;
  std::vector<float> latents;
  std::vector<int64_t> latents_shape;
};

/// Adapter (LoRA) file to load at start-up.
struct LoraSpec {
  std::string name;  ///< how requests name it
  std::string path;  ///< pytorch_lora_weights.safetensors (or a directory holding it)
};

struct EngineOptions {
  std::string model_dir;  ///< diffusers FluxFillPipeline directory
  /// Transformer variants: name -> directory. "base" defaults to model_dir/transformer.
  std::map<std::string, std::string> variants;
  bool load_base = true;         ///< load model_dir/transformer as "base" (unless overridden)
  std::string default_variant;   ///< "" = "base" if loaded, else the first variant
  std::vector<LoraSpec> loras;
  std::string device = "cpu";    ///< cpu, cuda, cuda:N
  std::string dtype = "fp32";    ///< fp32, bf16, fp16
  int64_t prompt_cache_bytes = 256ll << 20;
  int threads = 0;               ///< intra-op threads (0 = libtorch default)
  /// On CPU: freed tensor buffers are kept for reuse while live + kept stay within this many
  /// bytes (models/cpu_buffer_cache.h; process-wide). Negative: half of the memory left once the
  /// weights are loaded (RAM or the cgroup limit, whichever is smaller); 0: libtorch's allocator.
  int64_t cpu_buffer_cache_bytes = -1;
};

/// What a loaded engine serves (for GetInfo and logs).
struct EngineInfo {
  std::string model_dir;
  std::vector<std::string> variants;
  std::string default_variant;
  std::vector<std::string> adapters;
  std::string device, dtype, torch_version;
  int64_t vae_scale_factor = 8;
  int64_t multiple = 16;  ///< image sides are floored to a multiple of this
  double load_seconds = 0;
  std::vector<std::string> load_log;  ///< what was loaded from where
};

class Job;
class EngineImpl;

/// The job's view for schedulers: shape/variant key, rows, progress.
struct JobState {
  std::string group_key;   ///< jobs with equal keys can share one step()
  int rows = 1;            ///< transformer rows per step (2 x images with true CFG)
  int steps_done = 0;
  int steps_total = 0;
  bool done() const { return steps_done >= steps_total; }
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> load(const EngineOptions& options);
  ~Engine();

  const EngineInfo& info() const;

  /// Validates and prepares a job (prompt encoding, VAE encode, noise, schedule).
  Result<std::shared_ptr<Job>> prepare(const FillRequest& request);
  /// One denoising step for each job; all must share a group_key. Advances each job.
  Status step(const std::vector<Job*>& jobs);
  /// Decodes a finished job's latents into images.
  Result<FillOutput> finish(Job& job);
  /// A low-cost preview of a job's current state (decoded current latents).
  Result<image::Image> preview(Job& job, int index = 0);
  /// prepare + every step + finish. `on_step(done, total)` after each step.
  Result<FillOutput> run(const FillRequest& request, const std::function<void(int, int)>& on_step = {});

  static JobState state(const Job& job);

  /// Memory held for tensors: on CUDA the caching allocator's allocated and reserved bytes; on
  /// CPU the buffer cache's large buffers in use and in use + kept. False when neither
  /// applies (CPU without the buffer cache, or a CUDA device with a libtorch built without CUDA).
  bool device_memory(int64_t& in_use, int64_t& reserved) const;

  /// Prompt-embedding cache counters.
  int64_t cache_hits() const;
  int64_t cache_misses() const;

 private:
  explicit Engine(std::unique_ptr<EngineImpl> impl);
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace onereward
