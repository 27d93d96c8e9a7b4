// The gRPC service with an engine the test controls: API behaviour, codes, cancellation,
// deadlines, the queue, health and draining.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "server/logging.h"
#include "server/metrics.h"
#include "server/scheduler.h"
#include "tests/observability/obs_test_util.h"
#include "tests/server/fake_engine.h"
#include "tests/server/server_harness.h"

using namespace onereward;
using namespace onereward::server;
using namespace onereward::server::testing;

namespace {

/// A server whose engine is a FakeEngine the test keeps a pointer to.
struct FakeServer {
  explicit FakeServer(ServerOptions opt = {}, std::shared_ptr<std::promise<void>> hold = nullptr) {
    opt.listen = "127.0.0.1:0";
    opt.metrics_listen = "";
    opt.warmup = false;
    metrics = std::make_unique<Metrics>("");
    auto loader = [this, hold]() -> Result<std::unique_ptr<StageEngine>> {
      if (hold) hold->get_future().wait();
      auto e = std::make_unique<FakeEngine>();
      engine = e.get();
      if (configure) configure(*e);
      return std::unique_ptr<StageEngine>(std::move(e));
    };
    auto s = Service::start(opt, loader, metrics.get());
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    service = std::move(s.value());
  }
  bool ready() { return service->wait_until_serving(20); }

  std::function<void(FakeEngine&)> configure;
  std::unique_ptr<Metrics> metrics;
  FakeEngine* engine = nullptr;
  std::unique_ptr<Service> service;
};

v1::FillRequest fill_request(const std::string& prompt = "a boat", int steps = 3, int size = 64) {
  v1::FillRequest r;
  r.set_task(v1::TASK_FILL);
  r.set_image(png_bytes(gradient(size, size)));
  r.set_mask(png_bytes(center_mask(size, size)));
  r.set_prompt(prompt);
  r.set_steps(steps);
  r.set_seed(7);
  return r;
}

bool wait_for(const std::function<bool()>& cond, double timeout_s = 10) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace

TEST(Service, FillStreamsQueuedProgressAndResult) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  Client c(srv.service->port());
  auto req = fill_request("a boat", 5);
  req.set_request_id("job-1");
  auto call = c.fill(req);
  ASSERT_TRUE(call.status.ok()) << call.status.error_message();
  ASSERT_FALSE(call.events.empty());
  EXPECT_TRUE(call.events.front().has_queued());
  EXPECT_EQ(call.events.front().queued().position(), 0u);
  EXPECT_EQ(call.progress_steps(), (std::vector<int>{1, 2, 3, 4, 5}));
  for (const auto& e : call.events) EXPECT_EQ(e.request_id(), "job-1");
  const v1::Result* r = call.result();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(call.events.back().has_result());
  ASSERT_EQ(r->images_size(), 1);
  auto im = image::decode(reinterpret_cast<const uint8_t*>(r->images(0).data()), r->images(0).size());
  EXPECT_EQ(im.width, 64);
  EXPECT_EQ(r->seed(), 7u);
  EXPECT_EQ(r->width(), 64u);
  EXPECT_GE(r->timings().queue_ms(), 0.0);
  EXPECT_NE(srv.metrics->scrape().find("onereward_requests_total{code=\"OK\",task=\"fill\"} 1"), std::string::npos)
      << srv.metrics->scrape();
}

TEST(Service, DeviceMemoryIsReportedWhenTheEngineHasIt) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  srv.engine->mem_in_use = 123456;
  srv.engine->mem_reserved = 654321;
  Client c(srv.service->port());
  ASSERT_TRUE(c.fill(fill_request("a boat", 2)).status.ok());
  const std::string text = srv.metrics->scrape();
  EXPECT_NE(text.find("onereward_device_memory_bytes{kind=\"in_use\"} 123456"), std::string::npos) << text;
  EXPECT_NE(text.find("onereward_device_memory_bytes{kind=\"reserved\"} 654321"), std::string::npos) << text;
}

TEST(Service, AssignsRequestIdAndRandomSeed) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  Client c(srv.service->port());
  auto req = fill_request();
  req.clear_seed();
  req.set_num_images(2);
  req.set_output_format(v1::OUTPUT_FORMAT_JPEG);
  auto a = c.fill(req), b = c.fill(req);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_FALSE(a.events.front().request_id().empty());
  EXPECT_NE(a.events.front().request_id(), b.events.front().request_id());
  EXPECT_NE(a.result()->seed(), b.result()->seed());
  ASSERT_EQ(a.result()->images_size(), 2);
  auto h = image::probe(reinterpret_cast<const uint8_t*>(a.result()->images(0).data()), a.result()->images(0).size());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->format, image::Format::kJpeg);
}

TEST(Service, PreviewsAreImagesInTheRequestedFormat) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  Client c(srv.service->port());
  auto req = fill_request("a boat", 4);
  req.set_preview_every(2);
  req.set_output_format(v1::OUTPUT_FORMAT_WEBP);
  auto call = c.fill(req);
  ASSERT_TRUE(call.status.ok());
  int previews = 0;
  for (const auto& e : call.events) {
    if (!e.has_progress() || !e.progress().has_preview()) continue;
    ++previews;
    auto h = image::probe(reinterpret_cast<const uint8_t*>(e.progress().preview().data()), e.progress().preview().size());
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->format, image::Format::kWebp);
  }
  EXPECT_EQ(previews, 1);  // step 2 (step 4 is the last: the result follows)
}

struct BadCase {
  std::string name;
  std::function<void(v1::FillRequest&)> edit;
  grpc::StatusCode code;
  std::string must_contain;
};

TEST(Service, BadInputGetsItsCodeAndNamesTheField) {
  ServerOptions opt;
  opt.limits.max_pixels = 256 * 256;
  FakeServer srv(opt);
  ASSERT_TRUE(srv.ready());
  Client c(srv.service->port());
  const std::string big = png_bytes(image::Image(300, 300, 1));
  const std::vector<BadCase> cases = {
      {"task", [](auto& r) { r.set_task(v1::TASK_UNSPECIFIED); }, grpc::StatusCode::INVALID_ARGUMENT, "task"},
      {"empty image", [](auto& r) { r.clear_image(); }, grpc::StatusCode::INVALID_ARGUMENT, "image: empty"},
      {"garbage image", [](auto& r) { r.set_image("not an image at all"); }, grpc::StatusCode::INVALID_ARGUMENT, "image: not a PNG"},
      {"truncated image", [](auto& r) { r.set_image(r.image().substr(0, 60)); }, grpc::StatusCode::INVALID_ARGUMENT, "image"},
      {"undecodable mask", [](auto& r) { r.set_mask("xx"); }, grpc::StatusCode::INVALID_ARGUMENT, "mask"},
      {"mask size", [](auto& r) { r.set_mask(png_bytes(image::Image(32, 64, 255))); }, grpc::StatusCode::INVALID_ARGUMENT, "mask: 32x64 differs"},
      {"fill without mask", [](auto& r) { r.clear_mask(); }, grpc::StatusCode::INVALID_ARGUMENT, "mask: required for TASK_FILL"},
      {"remove without mask", [](auto& r) { r.set_task(v1::TASK_REMOVE); r.clear_mask(); }, grpc::StatusCode::INVALID_ARGUMENT, "mask: required for TASK_REMOVE"},
      {"extend without margins", [](auto& r) { r.set_task(v1::TASK_EXTEND); r.clear_mask(); }, grpc::StatusCode::INVALID_ARGUMENT, "extend"},
      {"extend too large", [](auto& r) { r.set_task(v1::TASK_EXTEND); r.clear_mask(); r.mutable_extend()->set_right(2000); }, grpc::StatusCode::INVALID_ARGUMENT, "extend: the extended canvas"},
      {"fill without prompt", [](auto& r) { r.clear_prompt(); }, grpc::StatusCode::INVALID_ARGUMENT, "prompt: required"},
      {"image too small", [](auto& r) { r.set_image(png_bytes(image::Image(12, 40, 1))); r.set_mask(png_bytes(image::Image(12, 40, 255))); }, grpc::StatusCode::INVALID_ARGUMENT, "at least 16"},
      {"header over the pixel limit", [&](auto& r) { r.set_image(big); }, grpc::StatusCode::INVALID_ARGUMENT, "image: 300x300 = 90000 pixels exceeds the limit of 65536"},
      {"width", [](auto& r) { r.set_width(8); }, grpc::StatusCode::INVALID_ARGUMENT, "width: 8"},
      {"output size", [](auto& r) { r.set_width(1024); r.set_height(1024); }, grpc::StatusCode::INVALID_ARGUMENT, "width x height"},
      {"steps", [](auto& r) { r.set_steps(101); }, grpc::StatusCode::INVALID_ARGUMENT, "steps: 101 exceeds the limit of 100"},
      {"true_cfg", [](auto& r) { r.set_true_cfg(-1); }, grpc::StatusCode::INVALID_ARGUMENT, "true_cfg: -1 is outside [0, 20]"},
      {"true_cfg nan", [](auto& r) { r.set_true_cfg(std::nanf("")); }, grpc::StatusCode::INVALID_ARGUMENT, "true_cfg"},
      {"guidance", [](auto& r) { r.set_guidance_scale(1000); }, grpc::StatusCode::INVALID_ARGUMENT, "guidance_scale: 1000 is outside [0, 100]"},
      {"strength", [](auto& r) { r.set_strength(0); }, grpc::StatusCode::INVALID_ARGUMENT, "strength: 0 is outside (0, 1]"},
      {"num_images", [](auto& r) { r.set_num_images(5); }, grpc::StatusCode::INVALID_ARGUMENT, "num_images: 5 exceeds the limit of 4"},
      {"variant", [](auto& r) { r.set_variant("nope"); }, grpc::StatusCode::INVALID_ARGUMENT, "variant: 'nope' is not loaded (available: base, onereward)"},
      {"adapter", [](auto& r) { auto* a = r.add_adapters(); a->set_name("x"); a->set_weight(1); }, grpc::StatusCode::INVALID_ARGUMENT, "adapters[0].name: 'x' is not loaded"},
      {"adapter weight", [](auto& r) { auto* a = r.add_adapters(); a->set_name("object-removal"); a->set_weight(9); }, grpc::StatusCode::INVALID_ARGUMENT, "adapters[0].weight: 9 is outside [-4, 4]"},
      {"prompt bytes", [](auto& r) { r.set_prompt(std::string(5000, 'a')); }, grpc::StatusCode::INVALID_ARGUMENT, "prompt: 5000 bytes exceeds the limit of 4096"},
      {"negative prompt bytes", [](auto& r) { r.set_negative_prompt(std::string(4097, 'a')); }, grpc::StatusCode::INVALID_ARGUMENT, "negative_prompt: 4097 bytes"},
      {"request_id", [](auto& r) { r.set_request_id("has space"); }, grpc::StatusCode::INVALID_ARGUMENT, "request_id"},
      {"output_format", [](auto& r) { r.set_output_format(static_cast<v1::OutputFormat>(9)); }, grpc::StatusCode::INVALID_ARGUMENT, "output_format"},
  };
  for (const auto& bc : cases) {
    auto req = fill_request();
    bc.edit(req);
    auto call = c.fill(req);
    EXPECT_EQ(call.status.error_code(), bc.code) << bc.name << ": " << call.status.error_message();
    EXPECT_NE(call.status.error_message().find(bc.must_contain), std::string::npos)
        << bc.name << ": '" << call.status.error_message() << "' lacks '" << bc.must_contain << "'";
    EXPECT_TRUE(call.events.empty()) << bc.name;
  }
  EXPECT_TRUE(srv.engine->prepared().empty());  // none of them reached the engine
  EXPECT_NE(srv.metrics->scrape().find("onereward_failures_total{reason=\"invalid\"} " + std::to_string(cases.size())),
            std::string::npos);
}

TEST(Service, MessagesOverTheLimitAreRefusedByGrpc) {
  ServerOptions opt;
  opt.limits.max_message_bytes = 4 << 20;
  FakeServer srv(opt);
  ASSERT_TRUE(srv.ready());
  Client c(srv.service->port());
  auto req = fill_request();
  req.set_negative_prompt(std::string(5 << 20, 'a'));
  auto call = c.fill(req);
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << call.status.error_message();
}

TEST(Service, CancelByIdFromAnotherConnection) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  srv.engine->close_gate();
  Client a(srv.service->port()), b(srv.service->port());
  auto req = fill_request("a boat", 50);
  req.set_request_id("to-cancel");
  auto f = std::async(std::launch::async, [&] { return a.fill(req); });
  ASSERT_TRUE(srv.engine->wait_entered(1));
  // The same id while it runs.
  auto dup = b.fill(req);
  EXPECT_EQ(dup.status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << dup.status.error_message();
  std::string state;
  auto s = b.cancel("to-cancel", &state);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(state, "running");
  srv.engine->open_gate();
  auto call = f.get();
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(b.cancel("to-cancel").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(b.cancel("never-seen").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(b.cancel("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(srv.engine->finished().empty());
}

TEST(Service, DisconnectFreesThePlaceAndSkipsTheDecode) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  srv.engine->step_delay_ms = 20;
  Client c(srv.service->port());
  grpc::ClientContext ctx;
  auto req = fill_request("leaver", 100);
  auto f = std::async(std::launch::async, [&] { return c.fill(req, 60, &ctx); });
  ASSERT_TRUE(srv.engine->wait_entered(3));
  ctx.TryCancel();
  auto call = f.get();
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(wait_for([&] { return srv.service->scheduler()->running() == 0; }));
  EXPECT_LT(srv.engine->calls().size(), 100u);
  EXPECT_TRUE(srv.engine->finished().empty());
  // The next job runs.
  auto next = c.fill(fill_request("next", 2));
  EXPECT_TRUE(next.status.ok());
}

TEST(Service, DeadlineExceeded) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  srv.engine->step_delay_ms = 20;
  Client c(srv.service->port());
  auto call = c.fill(fill_request("slow", 100), 0.3);
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(wait_for([&] { return srv.service->scheduler()->running() == 0; }));
  EXPECT_LT(srv.engine->calls().size(), 100u);
  EXPECT_TRUE(wait_for([&] {
    return srv.metrics->scrape().find("onereward_failures_total{reason=\"deadline\"} 1") != std::string::npos;
  }));
}

TEST(Service, QueuePositionsAndAFullQueue) {
  ServerOptions opt;
  opt.scheduler.queue_capacity = 2;
  opt.scheduler.max_batch_rows = 2;  // one true-CFG job at a time
  FakeServer srv(opt);
  ASSERT_TRUE(srv.ready());
  srv.engine->close_gate();
  Client c(srv.service->port());
  auto f0 = std::async(std::launch::async, [&] { return c.fill(fill_request("first", 2)); });
  ASSERT_TRUE(srv.engine->wait_entered(1));
  auto f1 = std::async(std::launch::async, [&] { return c.fill(fill_request("second", 2)); });
  ASSERT_TRUE(wait_for([&] { return srv.service->scheduler()->queued() == 1; }));
  auto f2 = std::async(std::launch::async, [&] { return c.fill(fill_request("third", 2)); });
  ASSERT_TRUE(wait_for([&] { return srv.service->scheduler()->queued() == 2; }));
  auto full = c.fill(fill_request("fourth", 2));
  EXPECT_EQ(full.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(full.status.error_message().find("queue is full"), std::string::npos);
  srv.engine->open_gate();
  auto r0 = f0.get(), r1 = f1.get(), r2 = f2.get();
  ASSERT_TRUE(r0.status.ok() && r1.status.ok() && r2.status.ok());
  EXPECT_EQ(r0.queue_positions(), std::vector<int>{0});
  EXPECT_EQ(r1.queue_positions(), std::vector<int>{0});
  EXPECT_EQ(r2.queue_positions(), (std::vector<int>{1, 0}));
  EXPECT_NE(srv.metrics->scrape().find("onereward_failures_total{reason=\"rejected\"} 1"), std::string::npos);
}

TEST(Service, HealthGoesLoadingServingDraining) {
  auto hold = std::make_shared<std::promise<void>>();
  FakeServer srv(ServerOptions{}, hold);
  Client c(srv.service->port());
  EXPECT_EQ(c.health(""), "NOT_SERVING");
  EXPECT_EQ(c.health("onereward.v1.ImageFill"), "NOT_SERVING");
  auto call = c.fill(fill_request());
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(call.status.error_message().find("loading"), std::string::npos);
  v1::GetInfoResponse info;
  EXPECT_EQ(c.info(&info).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(srv.service->state(), Service::State::kLoading);

  hold->set_value();
  ASSERT_TRUE(srv.ready());
  EXPECT_EQ(c.health(""), "SERVING");
  EXPECT_EQ(c.health("onereward.v1.ImageFill"), "SERVING");
  ASSERT_TRUE(c.info(&info).ok());
  EXPECT_EQ(info.variants_size(), 2);
  EXPECT_EQ(info.defaults().steps(), 50u);
  EXPECT_EQ(info.limits().max_steps(), 100u);
  EXPECT_EQ(info.limits().max_pixels(), 2048u * 2048u);
  EXPECT_GE(info.limits().max_batch_rows(), 16u);

  // Drain with a job in flight: NOT_SERVING and UNAVAILABLE for new calls while it finishes.
  srv.engine->close_gate();
  auto inflight = std::async(std::launch::async, [&] { return c.fill(fill_request("in flight", 3)); });
  ASSERT_TRUE(srv.engine->wait_entered(1));
  auto drain = std::async(std::launch::async, [&] { return srv.service->drain(30); });
  ASSERT_TRUE(wait_for([&] { return srv.service->state() == Service::State::kDraining; }));
  EXPECT_EQ(c.health(""), "NOT_SERVING");
  EXPECT_EQ(c.health("onereward.v1.ImageFill"), "NOT_SERVING");
  auto refused = c.fill(fill_request());
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  srv.engine->open_gate();
  auto done = inflight.get();
  EXPECT_TRUE(done.status.ok()) << done.status.error_message();
  EXPECT_EQ(done.progress_steps().size(), 3u);
  EXPECT_EQ(drain.get(), 0);
  EXPECT_EQ(srv.service->state(), Service::State::kStopped);
}

TEST(Service, DrainLosesNoAcceptedJob) {
  ServerOptions opt;
  opt.scheduler.max_batch_rows = 4;  // some run, some wait in the queue
  FakeServer srv(opt);
  ASSERT_TRUE(srv.ready());
  srv.engine->step_delay_ms = 3;
  Client c(srv.service->port());
  std::vector<std::future<FillCall>> calls;
  for (int i = 0; i < 6; ++i)
    calls.push_back(std::async(std::launch::async, [&, i] { return c.fill(fill_request("job" + std::to_string(i), 10)); }));
  ASSERT_TRUE(wait_for([&] { return srv.service->scheduler()->queued() + srv.service->scheduler()->running() == 6; }));
  EXPECT_EQ(srv.service->drain(60), 0);
  for (auto& f : calls) {
    auto r = f.get();
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.progress_steps().size(), 10u);
    ASSERT_NE(r.result(), nullptr);
  }
}

TEST(Service, DrainGraceRunsOutAndTheRestEndUnavailable) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  srv.engine->close_gate();
  Client c(srv.service->port());
  auto f = std::async(std::launch::async, [&] { return c.fill(fill_request("stuck", 5)); });
  ASSERT_TRUE(srv.engine->wait_entered(1));
  auto drain = std::async(std::launch::async, [&] { return srv.service->drain(0.3); });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  srv.engine->open_gate();
  EXPECT_EQ(drain.get(), 1);
  auto r = f.get();
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(r.status.error_message().find("shutting down"), std::string::npos);
}

TEST(Service, SlowReaderGetsCoalescedProgressAndTheResult) {
  FakeServer srv;
  ASSERT_TRUE(srv.ready());
  Client c(srv.service->port(), /*small_windows=*/true);
  // Large, incompressible previews fill the transport's windows quickly.
  auto req = fill_request("slow reader", 30, 1024);
  req.set_preview_every(1);
  req.set_output_format(v1::OUTPUT_FORMAT_JPEG);  // fast to encode: the reader is the slow side
  srv.engine->step_delay_ms = 1;
  auto call = c.fill(req, 120, nullptr, 100);
  ASSERT_TRUE(call.status.ok()) << call.status.error_message();
  ASSERT_NE(call.result(), nullptr);
  auto steps = call.progress_steps();
  ASSERT_FALSE(steps.empty());
  EXPECT_TRUE(std::is_sorted(steps.begin(), steps.end()));
  EXPECT_EQ(steps.back(), 30);
  EXPECT_LT(steps.size(), 30u);  // some were coalesced
}

TEST(Service, LoadFailureIsReported) {
  ServerOptions opt;
  opt.listen = "127.0.0.1:0";
  opt.metrics_listen = "";
  auto s = Service::start(opt, [] { return Result<std::unique_ptr<StageEngine>>(Status(StatusCode::kNotFound, "no model here")); },
                          nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s.value()->wait_until_serving(10));
  EXPECT_EQ(s.value()->state(), Service::State::kFailed);
  EXPECT_NE(s.value()->load_status().message().find("no model here"), std::string::npos);
  Client c(s.value()->port());
  EXPECT_EQ(c.health(""), "NOT_SERVING");
}

TEST(Service, ListenFailureIsAnError) {
  ServerOptions opt;
  opt.listen = "256.0.0.1:1";
  auto s = Service::start(opt, [] { return Result<std::unique_ptr<StageEngine>>(Status(StatusCode::kNotFound, "x")); },
                          nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
}

// One JSON request line per finished call, for every outcome, with the call's facts.
TEST(ServiceLogs, EveryOutcomeLogsOneRequestLine) {
  setup_logging("info", "json");
  obs_test::StderrCapture capture;
  {
    ServerOptions opt;
    opt.scheduler.queue_capacity = 1;
    opt.scheduler.max_batch_rows = 2;
    FakeServer srv(opt);
    ASSERT_TRUE(srv.ready());
    Client c(srv.service->port());
    auto named = [](const std::string& id, const std::string& prompt, int steps) {
      auto r = fill_request(prompt, steps);
      r.set_request_id(id);
      return r;
    };
    EXPECT_TRUE(c.fill(named("r-ok", "fine", 2)).status.ok());
    auto bad = named("r-invalid", "fine", 101);
    EXPECT_EQ(c.fill(bad).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(c.fill(named("r-internal", "poison", 2)).status.error_code(), grpc::StatusCode::INTERNAL);
    srv.engine->step_delay_ms = 20;
    EXPECT_EQ(c.fill(named("r-deadline", "slow", 100), 0.3).status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    srv.engine->step_delay_ms = 0;
    ASSERT_TRUE(wait_for([&] { return srv.service->scheduler()->running() == 0; }));

    srv.engine->close_gate();
    const int entered = static_cast<int>(srv.engine->calls().size());
    auto cancelled = std::async(std::launch::async, [&] { return c.fill(named("r-cancel", "x", 5)); });
    ASSERT_TRUE(srv.engine->wait_entered(entered + 1));
    EXPECT_TRUE(c.cancel("r-cancel").ok());
    srv.engine->release(1);
    EXPECT_EQ(cancelled.get().status.error_code(), grpc::StatusCode::CANCELLED);

    auto running = std::async(std::launch::async, [&] { return c.fill(named("r-run", "x", 5)); });
    ASSERT_TRUE(srv.engine->wait_entered(entered + 2));
    auto queued = std::async(std::launch::async, [&] { return c.fill(named("r-queued", "x", 5)); });
    ASSERT_TRUE(wait_for([&] { return srv.service->scheduler()->queued() == 1; }));
    EXPECT_EQ(c.fill(named("r-full", "x", 5)).status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(c.fill(named("r-run", "x", 5)).status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    auto drain = std::async(std::launch::async, [&] { return srv.service->drain(0.2); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    srv.engine->open_gate();
    EXPECT_EQ(drain.get(), 2);
    EXPECT_EQ(running.get().status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(queued.get().status.error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  const std::string out = capture.stop();
  setup_logging("info", "text");
  std::map<std::string, std::vector<nlohmann::json>> by_id;
  for (const auto& line : obs_test::lines_of(out)) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    if (j.value("msg", "") == "request") by_id[j.value("request_id", "")].push_back(j);
  }
  const std::map<std::string, std::string> expected = {
      {"r-ok", "OK"},           {"r-invalid", "INVALID_ARGUMENT"}, {"r-internal", "INTERNAL"},
      {"r-deadline", "DEADLINE_EXCEEDED"}, {"r-cancel", "CANCELLED"},  {"r-full", "RESOURCE_EXHAUSTED"},
      {"r-queued", "UNAVAILABLE"}};
  for (const auto& [id, outcome] : expected) {
    ASSERT_EQ(by_id[id].size(), 1u) << id << "\n" << out;
    const auto& j = by_id[id][0];
    EXPECT_EQ(j.value("outcome", ""), outcome) << id;
    EXPECT_EQ(j.value("task", ""), "fill") << id;
    EXPECT_TRUE(j.contains("queue_ms") && j.contains("total_ms") && j.contains("steps") && j.contains("size")) << j.dump();
    EXPECT_FALSE(j.contains("prompt")) << "prompts are logged only at debug level";
    if (outcome != "OK") EXPECT_FALSE(j.value("message", "").empty()) << id;
  }
  // r-run: one UNAVAILABLE line for the job and one ALREADY_EXISTS line for the duplicate.
  ASSERT_EQ(by_id["r-run"].size(), 2u);
  std::set<std::string> outcomes;
  for (const auto& j : by_id["r-run"]) outcomes.insert(j.value("outcome", ""));
  EXPECT_EQ(outcomes, (std::set<std::string>{"UNAVAILABLE", "ALREADY_EXISTS"}));
  EXPECT_EQ(by_id["r-ok"][0].value("rows", 0), 2);
  EXPECT_EQ(by_id["r-ok"][0].value("size", ""), "64x64");
}
