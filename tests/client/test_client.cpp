// onereward-client, run as a subprocess against a fake ImageFill service in this process:
// fill/extend/remove send exactly the flags given (optional fields absent otherwise), write
// results and previews, print errors as "error: CODE: message"; Ctrl-C cancels; cancel,
// info and health; bench in closed and open loop stops by itself and reports counts,
// errors by code and percentiles as JSON.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/image/codec.h"
#include "tests/client/fake_service.h"

extern char** environ;

namespace fs = std::filesystem;
using onereward::testing::FakeImageFill;
using onereward::testing::FakeServer;
namespace v1 = onereward::v1;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

struct ToolRun {
  int code = -1;  // exit status, or 1000 + signal when killed by one
  std::string out;
  std::string err;
};

// The client as a child process with stdout/stderr captured in files (not a terminal, so
// progress comes as plain lines).
class Child {
 public:
  /// stderr_fd >= 0: the child's stderr is that descriptor (e.g. a terminal) instead of a file.
  Child(const std::vector<std::string>& args, const fs::path& dir, int stderr_fd = -1) : dir_(dir) {
    std::vector<std::string> all{ONEREWARD_CLIENT_TOOL};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string out = (dir_ / "stdout.txt").string(), err = (dir_ / "stderr.txt").string();
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (stderr_fd >= 0)
      posix_spawn_file_actions_adddup2(&fa, stderr_fd, 2);
    else
      posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) pid_ = -1;
  }

  void signal(int sig) { kill(pid_, sig); }

  // Waits up to `timeout_s`; kills the child after that (the test then fails on `code`).
  ToolRun wait(double timeout_s = 30) {
    ToolRun r;
    if (pid_ <= 0) return r;
    int status = 0;
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        r.err = "[killed after timeout]\n";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
    r.out = read_file(dir_ / "stdout.txt");
    if (fs::exists(dir_ / "stderr.txt")) r.err += read_file(dir_ / "stderr.txt");
    return r;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("onereward_client_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::remove(dir_ / "stderr.txt");
    write_file(dir_ / "image.png", "fake-image-bytes");
    write_file(dir_ / "mask.png", "fake-mask-bytes");
  }
  void TearDown() override { fs::remove_all(dir_); }

  ToolRun run(std::vector<std::string> args, double timeout_s = 30) {
    return Child(args, dir_).wait(timeout_s);
  }
  // args with --target pointing at the fake.
  std::vector<std::string> with_target(const std::string& cmd, std::vector<std::string> args) {
    args.insert(args.begin(), {cmd, "--target", server_.target()});
    return args;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  FakeServer server_;
  FakeImageFill& fake_ = server_.service();
  fs::path dir_;
};

// ---- fill / extend / remove ---------------------------------------------------------------

TEST_F(ClientTest, FillSendsEveryFlagAndWritesTheResult) {
  const ToolRun r = run(with_target("fill", {"--image",
                                             path("image.png"),
                                             "--mask",
                                             path("mask.png"),
                                             "--prompt",
                                             "a red boat",
                                             "--negative-prompt",
                                             "blurry",
                                             "--steps",
                                             "4",
                                             "--true-cfg",
                                             "3.5",
                                             "--guidance",
                                             "2.5",
                                             "--seed",
                                             "18446744073709551615",
                                             "--strength",
                                             "0.75",
                                             "--width",
                                             "128",
                                             "--height",
                                             "96",
                                             "--variant",
                                             "onereward",
                                             "--adapter",
                                             "removal:0.5",
                                             "--adapter",
                                             "style",
                                             "--format",
                                             "webp",
                                             "--priority",
                                             "-3",
                                             "--request-id",
                                             "job-7",
                                             "--out",
                                             path("out.webp")}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_file(dir_ / "out.webp"), FakeImageFill::image_bytes(0));

  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const v1::FillRequest& q = reqs[0];
  EXPECT_EQ(q.request_id(), "job-7");
  EXPECT_EQ(q.task(), v1::TASK_FILL);
  EXPECT_EQ(q.image(), "fake-image-bytes");
  EXPECT_EQ(q.mask(), "fake-mask-bytes");
  EXPECT_FALSE(q.has_extend());
  EXPECT_EQ(q.prompt(), "a red boat");
  ASSERT_TRUE(q.has_negative_prompt());
  EXPECT_EQ(q.negative_prompt(), "blurry");
  EXPECT_EQ(q.steps(), 4u);
  ASSERT_TRUE(q.has_true_cfg());
  EXPECT_FLOAT_EQ(q.true_cfg(), 3.5f);
  ASSERT_TRUE(q.has_guidance_scale());
  EXPECT_FLOAT_EQ(q.guidance_scale(), 2.5f);
  ASSERT_TRUE(q.has_seed());
  EXPECT_EQ(q.seed(), 18446744073709551615ull);
  ASSERT_TRUE(q.has_strength());
  EXPECT_FLOAT_EQ(q.strength(), 0.75f);
  EXPECT_EQ(q.width(), 128u);
  EXPECT_EQ(q.height(), 96u);
  EXPECT_EQ(q.num_images(), 0u);
  EXPECT_EQ(q.variant(), "onereward");
  ASSERT_EQ(q.adapters_size(), 2);
  EXPECT_EQ(q.adapters(0).name(), "removal");
  EXPECT_FLOAT_EQ(q.adapters(0).weight(), 0.5f);
  EXPECT_EQ(q.adapters(1).name(), "style");
  EXPECT_FLOAT_EQ(q.adapters(1).weight(), 1.0f);
  EXPECT_EQ(q.output_format(), v1::OUTPUT_FORMAT_WEBP);
  EXPECT_EQ(q.preview_every(), 0u);
  EXPECT_EQ(q.priority(), -3);

  // The summary: seed, size, timings, files.
  EXPECT_NE(r.out.find("seed: 18446744073709551615"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("size: 128x96"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("denoise=4.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote: " + path("out.webp")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("request_id: job-7"), std::string::npos) << r.out;
}

TEST_F(ClientTest, UnsetOptionalFlagsStayAbsent) {
  const ToolRun r = run(with_target("remove", {"--image", path("image.png"), "--mask",
                                               path("mask.png"), "--out", path("out.png")}));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const v1::FillRequest& q = reqs[0];
  EXPECT_EQ(q.task(), v1::TASK_REMOVE);
  EXPECT_TRUE(q.request_id().empty());
  EXPECT_TRUE(q.prompt().empty());
  EXPECT_FALSE(q.has_negative_prompt());
  EXPECT_FALSE(q.has_true_cfg());
  EXPECT_FALSE(q.has_guidance_scale());
  EXPECT_FALSE(q.has_seed());
  EXPECT_FALSE(q.has_strength());
  EXPECT_FALSE(q.has_extend());
  EXPECT_EQ(q.steps(), 0u);
  EXPECT_EQ(q.width(), 0u);
  EXPECT_EQ(q.height(), 0u);
  EXPECT_EQ(q.num_images(), 0u);
  EXPECT_TRUE(q.variant().empty());
  EXPECT_EQ(q.adapters_size(), 0);
  EXPECT_EQ(q.output_format(), v1::OUTPUT_FORMAT_PNG);
  EXPECT_EQ(q.preview_every(), 0u);
  EXPECT_EQ(q.priority(), 0);
  // The server-assigned id and the server's random seed are reported.
  EXPECT_NE(r.out.find("request_id: fake-0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seed: 987654321"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(dir_ / "out.png"), FakeImageFill::image_bytes(0));
}

TEST_F(ClientTest, ExtendSendsMarginsAndNumbersSeveralImages) {
  const ToolRun r =
      run(with_target("extend", {"--image", path("image.png"), "--extend", "16,0,32,8",
                                 "--num-images", "3", "--out", path("wide.jpg")}));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const v1::FillRequest& q = reqs[0];
  EXPECT_EQ(q.task(), v1::TASK_EXTEND);
  ASSERT_TRUE(q.has_extend());
  EXPECT_EQ(q.extend().left(), 16u);
  EXPECT_EQ(q.extend().top(), 0u);
  EXPECT_EQ(q.extend().right(), 32u);
  EXPECT_EQ(q.extend().bottom(), 8u);
  EXPECT_TRUE(q.mask().empty());
  EXPECT_EQ(q.num_images(), 3u);
  EXPECT_EQ(q.output_format(), v1::OUTPUT_FORMAT_JPEG);  // from --out's extension
  for (int i = 0; i < 3; ++i) {
    const std::string f = i == 0 ? "wide.jpg" : "wide_" + std::to_string(i) + ".jpg";
    EXPECT_EQ(read_file(dir_ / f), FakeImageFill::image_bytes(i)) << f;
  }
  EXPECT_FALSE(fs::exists(dir_ / "wide_0.jpg"));
}

TEST_F(ClientTest, ProgressLinesAndPreviews) {
  fake_.queued_events = 2;
  const ToolRun r =
      run(with_target("fill", {"--image", path("image.png"), "--mask", path("mask.png"), "--prompt",
                               "x", "--steps", "4", "--preview-every", "2", "--previews-dir",
                               path("previews"), "--out", path("out.png")}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("queued position=1 expected_wait_ms=200"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("queued position=0 expected_wait_ms=100"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 1/4 elapsed_ms="), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 4/4 elapsed_ms="), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("eta_ms="), std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir_ / "previews" / "step_002.png"), FakeImageFill::preview_bytes(2));
  EXPECT_EQ(read_file(dir_ / "previews" / "step_004.png"), FakeImageFill::preview_bytes(4));
  EXPECT_FALSE(fs::exists(dir_ / "previews" / "step_001.png"));
  EXPECT_FALSE(fs::exists(dir_ / "previews" / "step_003.png"));
  EXPECT_EQ(fake_.requests().at(0).preview_every(), 2u);
}

TEST_F(ClientTest, TerminalShowsABarRedrawnInPlace) {
  fake_.queued_events = 1;
  fake_.step_delay_ms = 5;
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(slave, 0);
  ToolRun r = Child(with_target("fill", {"--image", path("image.png"), "--steps", "3", "--out",
                                         path("out.png")}),
                    dir_, slave)
                  .wait();
  fcntl(master, F_SETFL, O_NONBLOCK);
  std::string tty;
  char buf[4096];
  for (ssize_t n; (n = read(master, buf, sizeof buf)) > 0;) tty.append(buf, static_cast<size_t>(n));
  close(slave);
  close(master);
  ASSERT_EQ(r.code, 0) << tty;
  EXPECT_NE(tty.find("\rqueued: position 0"), std::string::npos) << tty;
  EXPECT_NE(tty.find("\r[##########...................."), std::string::npos) << tty;
  EXPECT_NE(tty.find("] step 3/3  elapsed "), std::string::npos) << tty;
  EXPECT_NE(tty.find("eta 0.0s"), std::string::npos) << tty;
  EXPECT_EQ(tty.find("step 1/3 elapsed_ms="), std::string::npos) << "plain lines on a terminal";
}

TEST_F(ClientTest, RpcErrorPrintsCodeAndMessage) {
  fake_.fail = [](const v1::FillRequest&, int) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "steps must be in [1, 100], got 500");
  };
  const ToolRun r =
      run(with_target("fill", {"--image", path("image.png"), "--mask", path("mask.png"), "--steps",
                               "500", "--out", path("out.png")}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: INVALID_ARGUMENT: steps must be in [1, 100], got 500"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.png"));
}

TEST_F(ClientTest, DeadlineExceeded) {
  fake_.block = [](const v1::FillRequest&, int) { return true; };
  const ToolRun r = run(with_target(
      "fill", {"--image", path("image.png"), "--timeout", "0.3", "--out", path("out.png")}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: DEADLINE_EXCEEDED: "), std::string::npos) << r.err;
}

TEST_F(ClientTest, UnreachableServerIsUnavailable) {
  const ToolRun r = run({"info", "--target", "127.0.0.1:1", "--timeout", "2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: UNAVAILABLE: "), std::string::npos) << r.err;
}

TEST_F(ClientTest, BadUsageExitsWithTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"fill", "--image", path("image.png"), "--extend", "1,2,3", "--out", path("o.png")},
      {"fill", "--image", path("image.png"), "--adapter", "lora:heavy", "--out", path("o.png")},
      {"fill", "--image", path("image.png"), "--format", "gif", "--out", path("o.png")},
      {"fill", "--image", path("image.png"), "--steps", "-1", "--out", path("o.png")},
      {"fill", "--image", path("missing.png"), "--out", path("o.png")},
      {"fill", "--image", path("image.png")},  // no --out
      {"fill", "--image", path("image.png"), "--out", path("o.png"), "--no-such-flag"},
      {"nonsense"},
      {},
      {"cancel"},  // no --request-id
      {"bench", "--tasks", "fill,paint"},
      {"bench", "--sizes", "64by64"},
      {"bench", "--rate", "5", "--concurrency", "2"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = c;
    if (!args.empty() && args[0] != "nonsense")
      args.insert(args.begin() + 1, {"--target", server_.target()});
    const ToolRun r = run(args);
    std::string joined;
    for (const auto& a : c) joined += a + " ";
    EXPECT_EQ(r.code, 2) << joined << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << joined << "\n" << r.err;
  }
  EXPECT_EQ(fake_.fill_calls(), 0);
}

TEST_F(ClientTest, SigintCancelsTheCall) {
  fake_.block = [](const v1::FillRequest&, int) { return true; };
  Child child(with_target("fill", {"--image", path("image.png"), "--out", path("out.png")}), dir_);
  ASSERT_TRUE(fake_.wait_blocked(1, 10000));
  child.signal(SIGINT);
  const ToolRun r = child.wait(10);
  EXPECT_EQ(r.code, 130) << "killed by the signal instead of cancelling? " << r.err;
  EXPECT_NE(r.err.find("error: CANCELLED"), std::string::npos) << r.err;
  // The server sees the cancellation.
  for (int i = 0; i < 200 && fake_.client_cancels() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(fake_.client_cancels(), 1);
  EXPECT_FALSE(fs::exists(dir_ / "out.png"));
}

// ---- cancel / info / health ---------------------------------------------------------------

TEST_F(ClientTest, CancelByRequestId) {
  fake_.block = [](const v1::FillRequest&, int) { return true; };
  fs::create_directories(dir_ / "fill");  // its stdout/stderr apart from the cancel's
  Child fill(with_target("fill", {"--image", path("image.png"), "--request-id", "job-42", "--out",
                                  path("out.png")}),
             dir_ / "fill");
  ASSERT_TRUE(fake_.wait_blocked(1, 10000));

  const ToolRun c = run(with_target("cancel", {"--request-id", "job-42"}));
  EXPECT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("cancelled job-42 (was running)"), std::string::npos) << c.out;

  const ToolRun f = fill.wait(10);
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.err.find("error: CANCELLED: cancelled by Cancel"), std::string::npos) << f.err;

  const ToolRun missing = run(with_target("cancel", {"--request-id", "nope"}));
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("error: NOT_FOUND: no job with request_id 'nope'"), std::string::npos)
      << missing.err;
}

TEST_F(ClientTest, InfoReadableAndJson) {
  const ToolRun r = run(with_target("info", {}));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* want : {"/models/fake-fill", "base, onereward", "removal", "9.8.7",
                           "fill, extend, remove", "nsfw", "max_pixels:       1048576"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;

  const ToolRun j = run(with_target("info", {"--json"}));
  ASSERT_EQ(j.code, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc.at("model"), "/models/fake-fill");
  EXPECT_EQ(doc.at("version"), "9.8.7");
  EXPECT_EQ(doc.at("variants").size(), 2u);
  EXPECT_EQ(doc.at("defaults").at("steps"), 50);
  EXPECT_EQ(doc.at("limits").at("max_steps"), 100);
  EXPECT_EQ(doc.at("tasks").at(0), "TASK_FILL");
  // Zero-valued fields are printed too.
  EXPECT_TRUE(doc.at("limits").contains("max_batch_rows"));
}

TEST_F(ClientTest, HealthCheck) {
  const ToolRun ok = run(with_target("health", {}));
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "SERVING\n");

  server_.server().GetHealthCheckService()->SetServingStatus("onereward.v1.ImageFill", false);
  const ToolRun down = run(with_target("health", {"--service", "onereward.v1.ImageFill"}));
  EXPECT_EQ(down.code, 1);
  EXPECT_EQ(down.out, "NOT_SERVING\n");

  server_.server().GetHealthCheckService()->SetServingStatus("onereward.v1.ImageFill", true);
  const ToolRun up = run(with_target("health", {"--service", "onereward.v1.ImageFill"}));
  EXPECT_EQ(up.code, 0) << up.err;
  EXPECT_EQ(up.out, "SERVING\n");

  const ToolRun unknown = run(with_target("health", {"--service", "no.such.Service"}));
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("error: NOT_FOUND"), std::string::npos) << unknown.err;
}

// ---- bench ----------------------------------------------------------------------------------

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p)); }

void expect_ordered(const nlohmann::json& p) {
  EXPECT_LE(p.at("min").get<double>(), p.at("p50").get<double>());
  EXPECT_LE(p.at("p50").get<double>(), p.at("p90").get<double>());
  EXPECT_LE(p.at("p90").get<double>(), p.at("p99").get<double>());
  EXPECT_LE(p.at("p99").get<double>(), p.at("max").get<double>());
  EXPECT_GT(p.at("p50").get<double>(), 0.0);
}

TEST_F(ClientTest, BenchClosedLoopCountsErrorsByCode) {
  fake_.step_delay_ms = 5;
  fake_.fail = [](const v1::FillRequest&, int index) {
    if (index % 5 == 4) return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
    if (index == 7) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "draining");
    return grpc::Status::OK;
  };
  const auto t0 = std::chrono::steady_clock::now();
  const ToolRun r =
      run(with_target("bench", {"--concurrency", "4", "--requests", "20", "--steps", "3", "--tasks",
                                "fill:2,extend,remove", "--sizes", "32x32,48x64", "--seed", "100",
                                "--json", path("report.json")}));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(secs, 15.0);

  const auto j = read_json(dir_ / "report.json");
  EXPECT_EQ(j.at("mode"), "closed");
  EXPECT_EQ(j.at("concurrency"), 4);
  EXPECT_EQ(j.at("requests").at("issued"), 20);
  EXPECT_EQ(j.at("requests").at("ok"), 15);
  EXPECT_EQ(j.at("requests").at("errors"), 5);
  EXPECT_EQ(j.at("requests").at("cancelled_at_end"), 0);
  EXPECT_EQ(j.at("errors_by_code").at("RESOURCE_EXHAUSTED"), 4);
  EXPECT_EQ(j.at("errors_by_code").at("UNAVAILABLE"), 1);
  EXPECT_EQ(j.at("images"), 15);
  EXPECT_GT(j.at("throughput").at("requests_per_s").get<double>(), 0.0);
  EXPECT_EQ(j.at("latency_ms").at("count"), 15);
  expect_ordered(j.at("latency_ms"));
  EXPECT_EQ(j.at("queue_wait_ms").at("count"), 15);
  expect_ordered(j.at("queue_wait_ms"));
  // 3 steps of >= 5 ms each.
  EXPECT_GE(j.at("latency_ms").at("min").get<double>(), 15.0);
  EXPECT_EQ(j.at("by_task").size(), 6u);

  EXPECT_EQ(fake_.fill_calls(), 20);
  EXPECT_LE(fake_.max_concurrent(), 4);
  EXPECT_GE(fake_.max_concurrent(), 2);

  // The mix: every task and size arrives, inputs are decodable PNGs of the given size,
  // seeds are seed+i, and only fill gets the default prompt.
  std::set<std::pair<int, std::pair<int, int>>> seen;
  std::set<uint64_t> seeds;
  for (const auto& q : fake_.requests()) {
    const auto img = onereward::image::decode(reinterpret_cast<const uint8_t*>(q.image().data()),
                                              q.image().size());
    seen.insert({q.task(), {img.width, img.height}});
    ASSERT_TRUE(q.has_seed());
    seeds.insert(q.seed());
    EXPECT_EQ(q.steps(), 3u);
    EXPECT_FALSE(q.has_true_cfg());
    if (q.task() == v1::TASK_EXTEND) {
      EXPECT_TRUE(q.mask().empty());
      EXPECT_GT(q.extend().left(), 0u);
    } else {
      const auto mask = onereward::image::decode(reinterpret_cast<const uint8_t*>(q.mask().data()),
                                                 q.mask().size());
      EXPECT_EQ(mask.width, img.width);
      EXPECT_EQ(mask.height, img.height);
    }
    EXPECT_EQ(q.prompt().empty(), q.task() != v1::TASK_FILL);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(seeds.size(), 20u);
  EXPECT_EQ(*seeds.begin(), 100u);
  EXPECT_EQ(*seeds.rbegin(), 119u);

  // The table.
  EXPECT_NE(r.out.find("issued=20 ok=15 errors=5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("RESOURCE_EXHAUSTED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("latency"), std::string::npos) << r.out;
}

TEST_F(ClientTest, BenchOpenLoopRunsForTheDuration) {
  fake_.step_delay_ms = 2;
  fake_.fail = [](const v1::FillRequest&, int index) {
    return index % 4 == 0 ? grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full")
                          : grpc::Status::OK;
  };
  const auto t0 = std::chrono::steady_clock::now();
  const ToolRun r = run(with_target("bench", {"--rate", "40", "--duration", "1.5", "--steps", "2",
                                              "--seed", "7", "--json", path("open.json")}));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(secs, 10.0);
  EXPECT_GE(secs, 1.4);

  const auto j = read_json(dir_ / "open.json");
  EXPECT_EQ(j.at("mode"), "open");
  EXPECT_EQ(j.at("rate"), 40.0);
  const int issued = j.at("requests").at("issued");
  // Poisson with mean 60 arrivals.
  EXPECT_GT(issued, 25);
  EXPECT_LT(issued, 100);
  EXPECT_EQ(issued, fake_.fill_calls());
  const int ok = j.at("requests").at("ok"), errors = j.at("requests").at("errors");
  EXPECT_EQ(ok + errors, issued);
  EXPECT_EQ(errors, (issued + 3) / 4);
  EXPECT_EQ(j.at("errors_by_code").at("RESOURCE_EXHAUSTED"), errors);
  EXPECT_EQ(j.at("latency_ms").at("count"), ok);
  expect_ordered(j.at("latency_ms"));
  expect_ordered(j.at("queue_wait_ms"));
  // Progress lines while it runs.
  EXPECT_NE(r.err.find("bench 1s issued="), std::string::npos) << r.err;

  // Same seed, same arrivals.
  FakeServer again;
  const ToolRun r2 = run({"bench", "--target", again.target(), "--rate", "40", "--duration", "1.5",
                          "--steps", "2", "--seed", "7", "--json", path("open2.json")});
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(read_json(dir_ / "open2.json").at("requests").at("issued"), issued);
}

TEST_F(ClientTest, BenchCancelsCallsStillInFlightAfterTheGrace) {
  // Every third call never finishes by itself.
  fake_.block = [](const v1::FillRequest&, int index) { return index % 3 == 2; };
  const auto t0 = std::chrono::steady_clock::now();
  const ToolRun r =
      run(with_target("bench", {"--concurrency", "3", "--duration", "1", "--grace", "0.5",
                                "--steps", "1", "--json", path("grace.json")}));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(secs, 6.0);

  const auto j = read_json(dir_ / "grace.json");
  const int issued = j.at("requests").at("issued");
  const int ok = j.at("requests").at("ok");
  const int cancelled = j.at("requests").at("cancelled_at_end");
  EXPECT_EQ(issued, fake_.fill_calls());
  // Each caller ends up stuck on a blocked call; all three are cancelled at the end.
  EXPECT_EQ(cancelled, 3);
  EXPECT_EQ(j.at("requests").at("errors"), 0);
  EXPECT_EQ(ok + cancelled, issued);
  EXPECT_TRUE(j.at("errors_by_code").empty());
  for (int i = 0; i < 200 && fake_.client_cancels() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(fake_.client_cancels(), 3);
}

TEST_F(ClientTest, BenchSigintCancelsAndStillReports) {
  fake_.block = [](const v1::FillRequest&, int) { return true; };
  Child child(
      with_target("bench", {"--concurrency", "2", "--duration", "60", "--json", path("int.json")}),
      dir_);
  ASSERT_TRUE(fake_.wait_blocked(2, 10000));
  child.signal(SIGINT);
  const ToolRun r = child.wait(10);
  EXPECT_EQ(r.code, 130) << r.err;
  const auto j = read_json(dir_ / "int.json");
  EXPECT_TRUE(j.at("interrupted").get<bool>());
  EXPECT_EQ(j.at("requests").at("issued"), 2);
  EXPECT_EQ(j.at("requests").at("cancelled_at_end"), 2);
  EXPECT_NE(r.out.find("(interrupted)"), std::string::npos) << r.out;
}

TEST_F(ClientTest, BenchAgainstNoServerFails) {
  const ToolRun r = run({"bench", "--target", "127.0.0.1:1", "--requests", "3", "--timeout", "2",
                         "--json", path("down.json")});
  EXPECT_EQ(r.code, 1) << r.err;
  const auto j = read_json(dir_ / "down.json");
  EXPECT_EQ(j.at("requests").at("errors"), 3);
  EXPECT_EQ(j.at("errors_by_code").at("UNAVAILABLE"), 3);
}

}  // namespace
