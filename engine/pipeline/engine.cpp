#include "engine/pipeline/engine.h"

#if defined(ONEREWARD_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <torch/torch.h>
#include <torch/version.h>

#include "engine/checkpoint/weights.h"
#include "engine/image/canvas.h"
#include "engine/image/preprocess.h"
#include "engine/models/cpu_buffer_cache.h"
#include "engine/models/flux_transformer.h"
#include "engine/models/lora.h"
#include "engine/models/vae.h"
#include "engine/pipeline/job.h"
#include "engine/pipeline/prompt_encoder.h"
#include "engine/sched/flow_match.h"
#include "engine/sched/latents.h"

namespace fs = std::filesystem;

namespace onereward {

const char* task_name(Task t) {
  switch (t) {
    case Task::kFill: return "fill";
    case Task::kExtend: return "extend";
    case Task::kRemove: return "remove";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

class EngineImpl {
 public:
  EngineOptions opts;
  EngineInfo info;
  TensorPlacement placement;
  std::map<std::string, models::FluxTransformer> variants;
  std::vector<std::string> adapter_names;  // slot -> name
  models::AutoencoderKL vae{nullptr};
  std::unique_ptr<pipeline::PromptEncoder> text;
  sched::FlowMatchConfig sched_cfg;

  void load();
  std::shared_ptr<Job> prepare(const FillRequest& r);
  void step(const std::vector<Job*>& jobs);
  FillOutput finish(Job& job);
  torch::Tensor decode(const Job& job, const torch::Tensor& packed);
  void sync() {
    if (placement.device.is_cuda()) torch::cuda::synchronize();
  }
};

void EngineImpl::load() {
  const auto t0 = Clock::now();
  if (opts.threads > 0) torch::set_num_threads(opts.threads);
  placement.device = torch::Device(opts.device);
  placement.dtype = parse_dtype_name(opts.dtype);
  if (placement.device.is_cuda() && !torch::cuda::is_available())
    throw_error(StatusCode::kInvalidArgument, "device '" + opts.device + "' requested but CUDA is not available");
  const fs::path root(opts.model_dir);
  if (!fs::is_directory(root)) throw_error(StatusCode::kNotFound, opts.model_dir + ": model directory not found");
  auto log = [&](const std::string& s) { info.load_log.push_back(s); };

  // Transformer variants: all resident, shared read-only.
  std::map<std::string, std::string> dirs = opts.variants;
  if (opts.load_base && !dirs.count("base")) dirs["base"] = (root / "transformer").string();
  if (dirs.empty()) throw_error(StatusCode::kInvalidArgument, "no transformer variant configured");
  for (const auto& [name, dir] : dirs) {
    const auto tv = Clock::now();
    auto cfg = models::FluxTransformerConfig::from_json_file((fs::path(dir) / "config.json").string());
    models::FluxTransformer model(cfg);
    LoadOptions lo;
    lo.placement = placement;
    load_module_strict(*model, WeightStore::open_dir(dir), lo);
    model->eval();
    variants.emplace(name, model);
    std::ostringstream os;
    os << "transformer variant '" << name << "' from " << dir << " (" << models::count_parameters(*model)
       << " parameters, " << cfg.num_layers << "+" << cfg.num_single_layers << " blocks) in " << ms_since(tv) << " ms";
    log(os.str());
  }
  info.default_variant = opts.default_variant.empty() ? (variants.count("base") ? "base" : variants.begin()->first)
                                                      : opts.default_variant;
  if (!variants.count(info.default_variant))
    throw_error(StatusCode::kInvalidArgument, "default variant '" + info.default_variant + "' is not loaded");

  // Adapters: attached to every variant (unmerged, per-row weights).
  for (const auto& spec : opts.loras) {
    models::LoraAdapter a = models::load_lora(spec.name, spec.path);
    const size_t slot = adapter_names.size();
    for (auto& [vn, v] : variants) models::attach_lora(*v, a, slot);
    adapter_names.push_back(spec.name);
    log("adapter '" + spec.name + "' from " + a.path + " (rank " + std::to_string(a.rank) + ", " +
        std::to_string(a.modules.size()) + " layers)");
  }

  {
    const auto tv = Clock::now();
    auto cfg = models::VaeConfig::from_json_file((root / "vae" / "config.json").string());
    vae = models::AutoencoderKL(cfg);
    LoadOptions lo;
    lo.placement = placement;
    load_module_strict(*vae, WeightStore::open_dir((root / "vae").string()), lo);
    vae->eval();
    log("vae from " + (root / "vae").string() + " in " + std::to_string(ms_since(tv)) + " ms");
  }
  {
    const auto tv = Clock::now();
    pipeline::PromptEncoderOptions po;
    po.placement = placement;
    po.output_dtype = placement.dtype;
    po.cache_budget_bytes = opts.prompt_cache_bytes;
    text = std::make_unique<pipeline::PromptEncoder>(pipeline::PromptEncoder::load(opts.model_dir, po));
    log("text encoders and tokenizers from " + opts.model_dir + " in " + std::to_string(ms_since(tv)) + " ms");
  }
  sched_cfg = sched::FlowMatchConfig::from_json_file((root / "scheduler" / "scheduler_config.json").string());
  if (placement.device.is_cpu()) {
    // After the weights, so that the automatic limit sees what they take.
    models::install_cpu_buffer_cache(opts.cpu_buffer_cache_bytes);
    const auto cache = models::cpu_buffer_cache_stats();
    log(cache.installed && cache.limit_bytes > 0
            ? "CPU buffer cache: keeps freed tensor buffers while live + kept <= " +
                  std::to_string(cache.limit_bytes >> 20) + " MiB" +
                  (opts.cpu_buffer_cache_bytes < 0 ? " (half of the memory left)" : "")
            : "CPU buffer cache: off");
  }

  info.model_dir = opts.model_dir;
  for (const auto& [n, v] : variants) info.variants.push_back(n);
  info.adapters = adapter_names;
  info.device = placement.device.str();
  info.dtype = dtype_name(placement.dtype);
  info.torch_version = TORCH_VERSION;
  info.vae_scale_factor = vae->vae_scale_factor();
  info.multiple = 2 * info.vae_scale_factor;
  info.load_seconds = ms_since(t0) / 1e3;
}

std::shared_ptr<Job> EngineImpl::prepare(const FillRequest& r) {
  c10::InferenceMode guard;
  auto job = std::make_shared<Job>();
  // --- validation (messages name the field and the limit) ---
  check_arg(!r.image.empty(), "image is empty");
  check_arg(r.steps >= 1, "steps must be >= 1 (got " + std::to_string(r.steps) + ")");
  check_arg(std::isfinite(r.true_cfg) && r.true_cfg >= 0, "true_cfg must be a finite number >= 0");
  check_arg(std::isfinite(r.guidance_scale) && r.guidance_scale >= 0, "guidance_scale must be a finite number >= 0");
  check_arg(std::isfinite(r.strength) && r.strength > 0 && r.strength <= 1, "strength must be in (0, 1]");
  check_arg(r.num_images >= 1, "num_images must be >= 1");
  check_arg(r.width >= 0 && r.height >= 0, "width and height must be >= 0");
  job->variant = r.variant.empty() ? info.default_variant : r.variant;
  if (!variants.count(job->variant)) {
    std::string known;
    for (const auto& [n, v] : variants) known += (known.empty() ? "" : ", ") + n;
    throw_error(StatusCode::kInvalidArgument, "variant '" + job->variant + "' is not loaded (available: " + known + ")");
  }
  job->adapter_weights.assign(adapter_names.size(), 0.0f);
  for (const auto& a : r.adapters) {
    auto it = std::find(adapter_names.begin(), adapter_names.end(), a.name);
    if (it == adapter_names.end()) throw_error(StatusCode::kInvalidArgument, "adapter '" + a.name + "' is not loaded");
    check_arg(std::isfinite(a.weight), "adapter weight for '" + a.name + "' must be finite");
    job->adapter_weights[static_cast<size_t>(it - adapter_names.begin())] = a.weight;
  }

  // --- inputs: canvas for extend, mask checks ---
  // The request's pixels are read in place; only extend-by-margins builds new images.
  image::Canvas canvas;
  const image::Image* img_p = &r.image;
  const image::Image* mask_p = nullptr;
  if (r.task == Task::kExtend && !r.mask) {
    check_arg(!r.extend.empty(), "extend needs margins or a mask");
    check_arg(r.extend.left >= 0 && r.extend.top >= 0 && r.extend.right >= 0 && r.extend.bottom >= 0,
              "extend margins must be >= 0");
    canvas = image::extend_canvas(r.image, r.extend.left, r.extend.top, r.extend.right, r.extend.bottom);
    img_p = &canvas.image;
    mask_p = &canvas.mask;
  } else {
    check_arg(r.mask.has_value(), std::string("mask is required for ") + task_name(r.task));
    mask_p = &*r.mask;
    check_arg(!mask_p->empty(), "mask is empty");
    check_arg(mask_p->width == r.image.width && mask_p->height == r.image.height,
              "mask size " + std::to_string(mask_p->width) + "x" + std::to_string(mask_p->height) +
                  " differs from image size " + std::to_string(r.image.width) + "x" + std::to_string(r.image.height));
  }
  const image::Image& img = *img_p;
  const image::Image& mask = *mask_p;
  const int multiple = static_cast<int>(info.multiple);
  auto [W, H] = image::target_size(img, r.width, r.height, multiple);
  check_arg(W >= multiple && H >= multiple, "image size after flooring to a multiple of " + std::to_string(multiple) +
                                                " must be at least " + std::to_string(multiple) + "x" +
                                                std::to_string(multiple));
  job->task = r.task;
  job->width = W;
  job->height = H;
  job->seed = r.seed;
  job->keep_tensors = r.keep_tensors;
  job->true_cfg = r.true_cfg;
  job->guidance = r.guidance_scale;

  // --- prompts ---
  std::vector<std::string> prompts = r.prompts;
  if (prompts.empty()) {
    prompts = {r.task == Task::kRemove ? kRemovePrompt : r.task == Task::kExtend ? kExtendPrompt : ""};
  }
  const int64_t P = static_cast<int64_t>(prompts.size());
  check_arg(r.prompts_2.empty() || static_cast<int64_t>(r.prompts_2.size()) == P,
            "prompt_2 must have one entry per prompt");
  job->batch = P * r.num_images;
  job->cfg = r.true_cfg > 1.0f;
  auto t_text = Clock::now();
  pipeline::PromptEmbeds pos = pipeline::repeat_each(text->encode_cached(prompts, r.prompts_2), r.num_images);
  job->txt_ids = pos.text_ids;
  job->text_embeds = pos.prompt_embeds;
  job->text_pooled = pos.pooled_prompt_embeds;
  if (job->cfg) {
    std::vector<std::string> negs = r.negative_prompts.empty() ? std::vector<std::string>{""} : r.negative_prompts;
    if (negs.size() == 1 && P > 1) negs.assign(static_cast<size_t>(P), negs[0]);
    check_arg(static_cast<int64_t>(negs.size()) == P, "negative_prompt must have one entry per prompt");
    pipeline::PromptEmbeds neg = pipeline::repeat_each(text->encode_cached(negs), r.num_images);
    // Row order of a true-CFG job: [negative x B; positive x B].
    job->text_embeds = torch::cat({neg.prompt_embeds, pos.prompt_embeds}, 0);
    job->text_pooled = torch::cat({neg.pooled_prompt_embeds, pos.pooled_prompt_embeds}, 0);
  }
  sync();
  job->timings.text_ms = ms_since(t_text);

  // --- schedule ---
  const int64_t vsf = vae->vae_scale_factor();
  const int64_t seq = sched::image_seq_len(H, W, vsf);
  job->schedule = sched::make_schedule(sched_cfg, r.steps, seq, r.strength);
  job->latent_h = sched::latent_side(H, vsf);
  job->latent_w = sched::latent_side(W, vsf);

  // --- VAE encodes and noise, drawing from the job's CPU generator in the reference order:
  // (1) posterior sample of the image, (2) initial noise, (3) posterior sample of the masked image.
  auto t_vae = Clock::now();
  std::vector<float> px = image::preprocess_image(img, W, H, multiple);
  std::vector<float> mk = image::preprocess_mask(mask, W, H, multiple);
  torch::Tensor init = torch::from_blob(px.data(), {1, 3, H, W}, torch::kFloat32).clone();
  torch::Tensor mask_t = torch::from_blob(mk.data(), {1, 1, H, W}, torch::kFloat32).clone();
  auto gen = at::detail::createCPUGenerator(r.seed);
  const int64_t C = vae->config().latent_channels;
  auto draw = [&](int64_t n) {
    return torch::randn({n, C, job->latent_h, job->latent_w}, gen, torch::kFloat32)
        .to(placement.device, placement.dtype);
  };
  const auto dev_opts = torch::TensorOptions().device(placement.device).dtype(placement.dtype);
  torch::Tensor init_d = init.to(dev_opts);
  models::DiagonalGaussian post = vae->encode(init_d);
  torch::Tensor image_sample = post.sample(draw(1));
  torch::Tensor noise = draw(job->batch);
  torch::Tensor sigma0 = torch::full({1}, job->schedule.initial_sigma(), torch::kFloat32).to(placement.device);
  job->latents = sched::initial_latents(image_sample, noise, sigma0, vae->config());
  torch::Tensor mask_d = mask_t.to(dev_opts);
  torch::Tensor masked = init_d * (1 - mask_d);
  models::DiagonalGaussian mpost = vae->encode(masked);
  torch::Tensor masked_sample = mpost.sample(draw(1));
  job->condition = sched::fill_condition(masked_sample, mask_d, job->batch, vae->config());
  job->img_ids = sched::latent_image_ids(job->latent_h / 2, job->latent_w / 2,
                                         torch::TensorOptions().dtype(torch::kFloat32).device(placement.device));
  job->rope = variants.at(job->variant)->rope(job->txt_ids, job->img_ids);
  sync();
  job->timings.vae_encode_ms = ms_since(t_vae);

  std::ostringstream key;
  key << job->variant << "/" << job->latent_h << "x" << job->latent_w << "/" << job->txt_ids.size(0);
  job->group_key = key.str();
  return job;
}

void EngineImpl::step(const std::vector<Job*>& jobs) {
  c10::InferenceMode guard;
  if (jobs.empty()) return;
  const auto t0 = Clock::now();
  for (Job* j : jobs) {
    check_arg(j != nullptr && !j->done(), "step() needs unfinished jobs");
    check_arg(j->group_key == jobs[0]->group_key, "step() jobs must share a group (variant, size)");
  }
  auto& model = variants.at(jobs[0]->variant);
  std::vector<torch::Tensor> hidden, enc, pooled, tsteps, guid;
  int64_t R = 0;
  for (Job* j : jobs) R += j->rows();
  std::vector<torch::Tensor> adapter_rows(adapter_names.size());
  int64_t row = 0;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  for (Job* j : jobs) {
    const int64_t rows = j->rows();
    torch::Tensor x = torch::cat({j->latents, j->condition}, 2);  // [B, S, C_packed + C_cond]
    hidden.push_back(j->cfg ? torch::cat({x, x}, 0) : x);
    enc.push_back(j->text_embeds);
    pooled.push_back(j->text_pooled);
    // The reference passes t / 1000 in the latents' dtype (float32 here), per row.
    tsteps.push_back(torch::full({rows}, j->schedule.timestep(j->step), f32) / 1000.0f);
    guid.push_back(torch::full({rows}, j->guidance, f32));
    for (size_t s = 0; s < adapter_names.size(); ++s) {
      if (j->adapter_weights[s] == 0.0f) continue;
      if (!adapter_rows[s].defined()) adapter_rows[s] = torch::zeros({R}, f32);
      adapter_rows[s].narrow(0, row, rows).fill_(j->adapter_weights[s]);
    }
    row += rows;
  }
  models::ForwardContext ctx;
  for (auto& t : adapter_rows) ctx.adapter_rows.push_back(t.defined() ? t.to(placement.device) : t);
  models::FluxInputs in;
  // A lone job's constant text rows are used as they are; a batch concatenates them.
  in.hidden_states = hidden.size() == 1 ? hidden[0] : torch::cat(hidden, 0);
  in.encoder_hidden_states = enc.size() == 1 ? enc[0] : torch::cat(enc, 0);
  in.pooled_projections = pooled.size() == 1 ? pooled[0] : torch::cat(pooled, 0);
  in.timestep = torch::cat(tsteps, 0).to(placement.device);
  in.guidance = torch::cat(guid, 0).to(placement.device);
  in.img_ids = jobs[0]->img_ids;
  in.txt_ids = jobs[0]->txt_ids;
  in.rope = jobs[0]->rope;  // same layout for the whole group (group_key)
  in.ctx = &ctx;
  torch::Tensor out = model->forward(in);  // [R, S, C_out]

  row = 0;
  for (Job* j : jobs) {
    const int64_t B = j->batch;
    torch::Tensor pred;
    if (j->cfg) {
      torch::Tensor neg = out.narrow(0, row, B), pos = out.narrow(0, row + B, B);
      pred = neg + j->true_cfg * (pos - neg);
    } else {
      pred = out.narrow(0, row, B);
    }
    row += j->rows();
    j->latents = sched::euler_step(j->latents, pred, j->schedule.sigma(j->step), j->schedule.sigma_next(j->step));
    j->step += 1;
  }
  sync();
  const double ms = ms_since(t0);
  for (Job* j : jobs) j->timings.denoise_ms += ms;
}

torch::Tensor EngineImpl::decode(const Job& job, const torch::Tensor& packed) {
  torch::Tensor z = sched::unpack_latents(packed, job.height, job.width, vae->vae_scale_factor());
  torch::Tensor x = vae->decode(sched::unscale_vae_latents(z, vae->config()));
  return (x / 2 + 0.5).clamp(0, 1).to(torch::kCPU).to(torch::kFloat32).contiguous();  // [N, 3, H, W]
}

FillOutput EngineImpl::finish(Job& job) {
  c10::InferenceMode guard;
  check_arg(job.done(), "finish() needs a job whose steps are all done");
  const auto t0 = Clock::now();
  torch::Tensor img = decode(job, job.latents);
  FillOutput out;
  out.width = job.width;
  out.height = job.height;
  out.seed = job.seed;
  const int64_t N = img.size(0);
  const int64_t plane = 3 * job.height * job.width;
  for (int64_t i = 0; i < N; ++i)
    out.images.push_back(image::to_image(img.data_ptr<float>() + i * plane, job.width, job.height));
  if (job.keep_tensors) {
    out.image_f32.assign(img.data_ptr<float>(), img.data_ptr<float>() + img.numel());
    out.image_shape = img.sizes().vec();
    torch::Tensor lat = job.latents.to(torch::kCPU).to(torch::kFloat32).contiguous();
    out.latents.assign(lat.data_ptr<float>(), lat.data_ptr<float>() + lat.numel());
    out.latents_shape = lat.sizes().vec();
  }
  job.timings.vae_decode_ms = ms_since(t0);
  out.timings = job.timings;
  return out;
}

// ---------------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::load(const EngineOptions& options) {
  auto impl = std::make_unique<EngineImpl>();
  impl->opts = options;
  Status s = capture_status([&] { impl->load(); });
  if (!s.ok()) return s;
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

const EngineInfo& Engine::info() const { return impl_->info; }

Result<std::shared_ptr<Job>> Engine::prepare(const FillRequest& request) {
  std::shared_ptr<Job> job;
  Status s = capture_status([&] { job = impl_->prepare(request); });
  if (!s.ok()) return s;
  return job;
}

Status Engine::step(const std::vector<Job*>& jobs) {
  return capture_status([&] { impl_->step(jobs); });
}

Result<FillOutput> Engine::finish(Job& job) {
  FillOutput out;
  Status s = capture_status([&] { out = impl_->finish(job); });
  if (!s.ok()) return s;
  return out;
}

Result<image::Image> Engine::preview(Job& job, int index) {
  image::Image im;
  Status s = capture_status([&] {
    c10::InferenceMode guard;
    check_arg(index >= 0 && index < job.batch, "preview index out of range");
    torch::Tensor x = impl_->decode(job, job.latents.narrow(0, index, 1));
    im = image::to_image(x.data_ptr<float>(), job.width, job.height);
  });
  if (!s.ok()) return s;
  return im;
}

Result<FillOutput> Engine::run(const FillRequest& request, const std::function<void(int, int)>& on_step) {
  auto job = prepare(request);
  if (!job.ok()) return job.status();
  Job& j = *job.value();
  while (!j.done()) {
    Status s = step({&j});
    if (!s.ok()) return s;
    if (on_step) on_step(j.step, j.steps_total());
  }
  return finish(j);
}

JobState Engine::state(const Job& job) {
  JobState s;
  s.group_key = job.group_key;
  s.rows = job.rows();
  s.steps_done = job.step;
  s.steps_total = job.steps_total();
  return s;
}

bool Engine::device_memory(int64_t& in_use, int64_t& reserved) const {
  if (impl_->placement.device.is_cpu()) {
    const auto cache = models::cpu_buffer_cache_stats();
    if (!cache.installed) return false;
    in_use = cache.in_use_bytes;
    reserved = cache.in_use_bytes + cache.cached_bytes;
    return true;
  }
#if defined(ONEREWARD_WITH_CUDA)
  if (!impl_->placement.device.is_cuda()) return false;
  const auto index = impl_->placement.device.has_index() ? impl_->placement.device.index() : 0;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
  in_use = stats.allocated_bytes[0].current;  // [0]: the aggregate over pool kinds
  reserved = stats.reserved_bytes[0].current;
  return true;
#else
  return false;
#endif
}

int64_t Engine::cache_hits() const { return impl_->text->cache().stats().hits; }
int64_t Engine::cache_misses() const { return impl_->text->cache().stats().misses; }

}  // namespace onereward
