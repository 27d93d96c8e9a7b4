// The service on the real engine and the tiny reference pipeline (tests/data/golden):
// every task end to end equals `onereward-engine generate`, and batching never changes a
// job's result.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <future>

#include "server/metrics.h"
#include "server/scheduler.h"
#include "tests/server/fake_engine.h"
#include "tests/server/server_harness.h"

using namespace onereward;
using namespace onereward::server;
using namespace onereward::server::testing;
namespace fs = std::filesystem;

namespace {

std::string golden(const std::string& rel) { return std::string(ONEREWARD_TEST_DATA) + "/golden/" + rel; }

EngineOptions tiny_engine_options() {
  EngineOptions o;
  o.model_dir = golden("pipeline");
  o.variants["onereward"] = golden("variants/flux.1-fill-dev-OneReward-transformer");
  o.loras.push_back({"object-removal", golden("variants/flux.1-fill-dev-object-removal-lora")});
  o.threads = 1;
  return o;
}

struct TempDir {
  TempDir() {
    path = fs::temp_directory_path() / ("onereward-svc-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  fs::path path;
  static inline int counter = 0;
};

int run(const std::string& cmd) {
  int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class TinyService : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions opt;
    opt.listen = "127.0.0.1:0";
    opt.metrics_listen = "";
    opt.engine = tiny_engine_options();
    auto s = Service::start(opt, Service::engine_loader(opt.engine), nullptr);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    service_ = s.value().release();
    ASSERT_TRUE(service_->wait_until_serving(120)) << service_->load_status().to_string();
  }
  static void TearDownTestSuite() {
    delete service_;
    service_ = nullptr;
  }
  static Service* service_;
};
Service* TinyService::service_ = nullptr;

struct TaskCase {
  std::string name;
  v1::Task task;
  std::vector<std::string> cli;  // the same request for onereward-engine generate
  std::function<void(v1::FillRequest&)> edit;
};

}  // namespace

TEST_F(TinyService, EveryTaskEqualsTheOfflineTool) {
  TempDir dir;
  const int W = 64, H = 48;
  image::write_file(gradient(W, H), dir.file("image.png"));
  image::write_file(center_mask(W, H), dir.file("mask.png"));
  const std::string image_bytes = png_bytes(gradient(W, H)), mask_bytes = png_bytes(center_mask(W, H));
  const std::vector<TaskCase> cases = {
      {"fill", v1::TASK_FILL, {"--task fill", "--prompt 'a red boat'", "--mask " + dir.file("mask.png")},
       [&](auto& r) { r.set_prompt("a red boat"); r.set_mask(mask_bytes); }},
      {"extend with prompt", v1::TASK_EXTEND, {"--task extend", "--prompt 'a beach'", "--extend 16,0,16,8"},
       [&](auto& r) {
         r.set_prompt("a beach");
         r.mutable_extend()->set_left(16);
         r.mutable_extend()->set_right(16);
         r.mutable_extend()->set_bottom(8);
       }},
      {"extend without prompt", v1::TASK_EXTEND, {"--task extend", "--extend 0,16,0,16", "--true-cfg 1"},
       [&](auto& r) {
         r.mutable_extend()->set_top(16);
         r.mutable_extend()->set_bottom(16);
         r.set_true_cfg(1.0f);
       }},
      {"remove with LoRA on onereward", v1::TASK_REMOVE,
       {"--task remove", "--mask " + dir.file("mask.png"), "--transformer " + golden("variants/flux.1-fill-dev-OneReward-transformer"),
        "--lora " + golden("variants/flux.1-fill-dev-object-removal-lora") + ":0.8", "--num-images 2"},
       [&](auto& r) {
         r.set_mask(mask_bytes);
         r.set_variant("onereward");
         auto* a = r.add_adapters();
         a->set_name("object-removal");
         a->set_weight(0.8f);
         r.set_num_images(2);
       }},
  };
  Client c(service_->port());
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    v1::FillRequest req;
    req.set_task(tc.task);
    req.set_image(image_bytes);
    req.set_steps(4);
    req.set_seed(1234);
    tc.edit(req);
    auto call = c.fill(req, 120);
    ASSERT_TRUE(call.status.ok()) << call.status.error_message();
    EXPECT_EQ(call.progress_steps(), (std::vector<int>{1, 2, 3, 4}));
    ASSERT_NE(call.result(), nullptr);
    const v1::Result& res = *call.result();
    EXPECT_EQ(res.seed(), 1234u);

    std::string cmd = std::string(ONEREWARD_ENGINE_TOOL) + " generate --model " + golden("pipeline") +
                      " --image " + dir.file("image.png") + " --steps 4 --seed 1234 --out " + dir.file("cli.png");
    for (const auto& a : tc.cli) cmd += " " + a;
    ASSERT_EQ(run(cmd), 0) << cmd;
    const int n = std::max(1, static_cast<int>(req.num_images()));
    ASSERT_EQ(res.images_size(), n);
    for (int i = 0; i < n; ++i) {
      const std::string cli_file = i == 0 ? dir.file("cli.png") : dir.file("cli_" + std::to_string(i) + ".png");
      ASSERT_TRUE(fs::exists(cli_file)) << cli_file;
      image::Image expected = image::read_file(cli_file);
      image::Image got = image::decode(reinterpret_cast<const uint8_t*>(res.images(i).data()), res.images(i).size());
      ASSERT_EQ(got.width, expected.width);
      ASSERT_EQ(got.height, expected.height);
      EXPECT_EQ(static_cast<int>(res.width()), expected.width);
      EXPECT_TRUE(got.rgb == expected.rgb) << "image " << i << " differs from onereward-engine generate";
    }
  }
}

TEST_F(TinyService, InfoDescribesTheLoadedModel) {
  Client c(service_->port());
  v1::GetInfoResponse info;
  ASSERT_TRUE(c.info(&info).ok());
  EXPECT_EQ(info.model(), golden("pipeline"));
  EXPECT_EQ(info.variants_size(), 2);
  EXPECT_EQ(info.defaults().variant(), "base");
  ASSERT_EQ(info.adapters_size(), 1);
  EXPECT_EQ(info.adapters(0), "object-removal");
  EXPECT_EQ(info.device(), "cpu");
  EXPECT_EQ(info.limits().multiple(), 16u);
}

// The same request alone and batched with others (different prompts, steps, true_cfg,
// seeds, tasks, adapters) gives the same image within float tolerance.
TEST(TinyBatching, ResultDoesNotDependOnBatchMates) {
  auto loaded = Engine::load(tiny_engine_options());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  auto engine = make_stage_engine(std::move(loaded.value()));

  auto request = [](const std::string& prompt, Task task, int steps, float cfg, uint64_t seed, bool lora) {
    FillRequest r;
    r.task = task;
    r.image = gradient(64, 64);
    r.mask = center_mask(64, 64);
    if (!prompt.empty()) r.prompts = {prompt};
    r.steps = steps;
    r.true_cfg = cfg;
    r.seed = seed;
    r.keep_tensors = true;
    if (lora) r.adapters.push_back({"object-removal", 1.0f});
    return r;
  };
  const FillRequest target = request("a red boat", Task::kFill, 5, 4.0f, 42, false);
  auto submit = [&](Scheduler& s, const std::string& id, const FillRequest& r) {
    auto j = std::make_shared<SchedJob>();
    j->id = id;
    j->request = r;
    j->sink = std::make_shared<RecordingSink>();
    EXPECT_EQ(s.submit(j), Scheduler::Admit::kOk);
    return j;
  };
  auto sink_of = [](const std::shared_ptr<SchedJob>& j) -> RecordingSink& { return static_cast<RecordingSink&>(*j->sink); };

  std::vector<float> alone;
  {
    Scheduler s(*engine, {64, 16, 16});
    auto j = submit(s, "alone", target);
    ASSERT_TRUE(sink_of(j).wait(120));
    ASSERT_EQ(sink_of(j).code, StatusCode::kOk) << sink_of(j).message;
    alone = sink_of(j).output->image_f32;
  }
  std::vector<float> batched;
  {
    Scheduler s(*engine, {64, 16, 16});
    // Batch mates first, so the target joins a running batch mid-way.
    std::vector<std::shared_ptr<SchedJob>> mates = {
        submit(s, "m1", request("a green field", Task::kFill, 7, 3.0f, 7, false)),
        submit(s, "m2", request("", Task::kRemove, 3, 4.0f, 9, true)),
        submit(s, "m3", request("mountains", Task::kFill, 6, 1.0f, 11, false)),
    };
    auto j = submit(s, "target", target);
    for (auto& m : mates) ASSERT_TRUE(sink_of(m).wait(120));
    ASSERT_TRUE(sink_of(j).wait(120));
    ASSERT_EQ(sink_of(j).code, StatusCode::kOk) << sink_of(j).message;
    for (auto& m : mates) EXPECT_EQ(sink_of(m).code, StatusCode::kOk) << sink_of(m).message;
    batched = sink_of(j).output->image_f32;
    EXPECT_GE(s.stats().max_rows_seen, 4);  // it really shared steps
  }
  // A batch mate cancelled mid-way leaves the target's result unchanged too.
  std::vector<float> with_cancel;
  {
    Scheduler s(*engine, {64, 16, 16});
    auto mate = submit(s, "leaver", request("a storm", Task::kFill, 40, 4.0f, 5, false));
    auto j = submit(s, "target", target);
    while (sink_of(mate).steps_seen().size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(s.cancel("leaver").has_value());
    ASSERT_TRUE(sink_of(j).wait(120));
    ASSERT_TRUE(sink_of(mate).wait(120));
    EXPECT_EQ(sink_of(mate).code, StatusCode::kCancelled);
    ASSERT_EQ(sink_of(j).code, StatusCode::kOk) << sink_of(j).message;
    with_cancel = sink_of(j).output->image_f32;
  }
  auto max_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    float d = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
  };
  EXPECT_LT(max_diff(alone, batched), 1e-4f);
  EXPECT_LT(max_diff(alone, with_cancel), 1e-4f);
}
