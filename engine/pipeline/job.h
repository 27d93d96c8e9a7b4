// A job's state between stages (internal to the engine; the server sees it opaquely).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/pipeline/engine.h"
#include "engine/sched/flow_match.h"

namespace onereward {

class Job {
 public:
  // What the job computes.
  Task task = Task::kFill;
  std::string variant;
  std::vector<float> adapter_weights;  ///< per engine adapter slot (0 = off)
  int width = 0, height = 0;           ///< output pixels
  int64_t latent_h = 0, latent_w = 0;  ///< unpacked latent size
  int64_t batch = 1;                   ///< B = prompts x num_images
  bool cfg = false;                    ///< true CFG (two rows per image)
  float true_cfg = 1.0f, guidance = 1.0f;
  uint64_t seed = 0;
  bool keep_tensors = false;

  // Tensors (on the engine's device).
  torch::Tensor latents;    ///< [B, S, C_packed], the denoising state
  torch::Tensor condition;  ///< [B, S, C_cond] masked-image latents + packed mask
  torch::Tensor pos_embeds, pos_pooled, neg_embeds, neg_pooled;
  torch::Tensor img_ids, txt_ids;
  sched::Schedule schedule;
  int step = 0;  ///< steps done

  StageTimings timings;
  std::string group_key;

  int rows() const { return static_cast<int>(cfg ? 2 * batch : batch); }
  int steps_total() const { return static_cast<int>(schedule.num_steps()); }
  bool done() const { return step >= steps_total(); }
};

}  // namespace onereward
