#include "server/stage_engine.h"

namespace onereward::server {
namespace {

struct RealHandle final : StageEngine::Handle {
  std::shared_ptr<Job> job;
};

Job& job_of(StageEngine::Handle& h) { return *static_cast<RealHandle&>(h).job; }
const Job& job_of(const StageEngine::Handle& h) { return *static_cast<const RealHandle&>(h).job; }

class RealStageEngine final : public StageEngine {
 public:
  explicit RealStageEngine(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}

  const EngineInfo& info() const override { return engine_->info(); }

  Result<std::unique_ptr<Handle>> prepare(const FillRequest& request) override {
    auto job = engine_->prepare(request);
    if (!job.ok()) return job.status();
    auto h = std::make_unique<RealHandle>();
    h->job = job.value();
    return std::unique_ptr<Handle>(std::move(h));
  }

  JobState state(const Handle& job) const override { return Engine::state(job_of(job)); }

  Status step(const std::vector<Handle*>& jobs) override {
    std::vector<Job*> js;
    js.reserve(jobs.size());
    for (Handle* h : jobs) js.push_back(&job_of(*h));
    return engine_->step(js);
  }

  Result<FillOutput> finish(Handle& job) override { return engine_->finish(job_of(job)); }
  Result<image::Image> preview(Handle& job) override { return engine_->preview(job_of(job), 0); }
  int64_t memory_in_use() const override {
    int64_t in_use = 0, reserved = 0;
    return engine_->device_memory(in_use, reserved) ? in_use : -1;
  }
  int64_t memory_reserved() const override {
    int64_t in_use = 0, reserved = 0;
    return engine_->device_memory(in_use, reserved) ? reserved : -1;
  }
  int64_t cache_hits() const override { return engine_->cache_hits(); }
  int64_t cache_misses() const override { return engine_->cache_misses(); }

 private:
  std::unique_ptr<Engine> engine_;
};

}  // namespace

std::unique_ptr<StageEngine> make_stage_engine(std::unique_ptr<Engine> engine) {
  return std::make_unique<RealStageEngine>(std::move(engine));
}

}  // namespace onereward::server
