// What the scheduler needs from an engine: the pipeline's stages on opaque job handles.
// RealStageEngine adapts onereward::Engine; tests substitute engines that control timing
// or fail on purpose. The scheduler knows jobs and steps, never tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/pipeline/engine.h"

namespace onereward::server {

class StageEngine {
 public:
  /// A prepared job (owned by the scheduler; opaque to it).
  struct Handle {
    virtual ~Handle() = default;
  };

  virtual ~StageEngine() = default;
  virtual const EngineInfo& info() const = 0;
  virtual Result<std::unique_ptr<Handle>> prepare(const FillRequest& request) = 0;
  virtual JobState state(const Handle& job) const = 0;
  /// One denoising step for jobs sharing a group key. On failure no job has advanced.
  virtual Status step(const std::vector<Handle*>& jobs) = 0;
  virtual Result<FillOutput> finish(Handle& job) = 0;
  virtual Result<image::Image> preview(Handle& job) = 0;
  virtual int64_t cache_hits() const { return 0; }
  virtual int64_t cache_misses() const { return 0; }
  /// Device memory (bytes) in use / reserved; -1 when not applicable (CPU).
  virtual int64_t memory_in_use() const { return -1; }
  virtual int64_t memory_reserved() const { return -1; }
};

/// The real engine behind the StageEngine interface.
std::unique_ptr<StageEngine> make_stage_engine(std::unique_ptr<Engine> engine);

}  // namespace onereward::server
