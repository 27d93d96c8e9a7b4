// A job's state between stages (internal to the engine; the server sees it opaquely).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/models/flux_transformer.h"
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
  /// Text conditioning of the job's transformer rows, fixed for the whole job:
  /// [negative; positive] with true CFG, else the positive rows. [rows, S_txt, D], [rows, D].
  torch::Tensor text_embeds, text_pooled;
  torch::Tensor img_ids, txt_ids;
  models::FluxRope rope;  ///< rotary tables for (txt_ids, img_ids), computed once
  sched::Schedule schedule;
  int step = 0;  ///< steps done

  StageTimings timings;
  std::string group_key;

  int rows() const { return static_cast<int>(cfg ? 2 * batch : batch); }
  int steps_total() const { return static_cast<int>(schedule.num_steps()); }
  bool done() const { return step >= steps_total(); }
};

}  // namespace onereward
