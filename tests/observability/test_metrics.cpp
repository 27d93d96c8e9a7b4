// Metrics: contract names from start-up, movement of every metric, exposition over HTTP,
// bind errors, promtool lint.
#include <gtest/gtest.h>

#include <thread>

#include "engine/util/status.h"
#include "server/metrics.h"
#include "tests/observability/obs_test_util.h"

using onereward::server::Metrics;
using namespace obs_test;

namespace {

TEST(Metrics, EveryContractNameFromStartUp) {
  Metrics m("");
  EXPECT_EQ(m.port(), 0);
  const std::string text = m.scrape();
  const auto types = family_types(text);
  for (const auto& name : contract_names()) {
    ASSERT_TRUE(types.count(name)) << name << " not in scrape:\n" << text;
    const bool histogram = types.at(name) == "histogram";
    // Every family has at least one series (histograms: their _count) before any traffic.
    bool any = false;
    for (const auto& s : parse_samples(text)) {
      any |= s.name == (histogram ? name + "_count" : name);
    }
    EXPECT_TRUE(any) << name << " has no series at start-up";
  }
  EXPECT_EQ(types.at("onereward_requests_total"), "counter");
  EXPECT_EQ(types.at("onereward_request_duration_seconds"), "histogram");
  EXPECT_EQ(types.at("onereward_queue_wait_seconds"), "histogram");
  EXPECT_EQ(types.at("onereward_batch_rows"), "histogram");
  EXPECT_EQ(types.at("onereward_step_duration_seconds"), "histogram");
  EXPECT_EQ(types.at("onereward_stage_duration_seconds"), "histogram");
  EXPECT_EQ(types.at("onereward_queue_depth"), "gauge");
  EXPECT_EQ(types.at("onereward_running_jobs"), "gauge");
  EXPECT_EQ(types.at("onereward_model_ready"), "gauge");
  EXPECT_EQ(types.at("onereward_failures_total"), "counter");
  EXPECT_EQ(types.at("onereward_prompt_cache_hits_total"), "counter");

  // Alerted-on series exist at 0.
  for (const char* reason : {"invalid", "rejected", "cancelled", "deadline", "internal", "unavailable"}) {
    EXPECT_EQ(sample_value(text, "onereward_failures_total", {{"reason", reason}}), 0) << reason;
  }
  for (const char* stage : {"text", "vae_encode", "denoise", "vae_decode"}) {
    EXPECT_EQ(sample_value(text, "onereward_stage_duration_seconds_count", {{"stage", stage}}), 0) << stage;
  }
  for (const char* task : {"fill", "extend", "remove"}) {
    EXPECT_EQ(sample_value(text, "onereward_requests_total", {{"task", task}, {"code", "OK"}}), 0);
    EXPECT_EQ(sample_value(text, "onereward_request_duration_seconds_count", {{"task", task}}), 0);
  }
  EXPECT_EQ(sample_value(text, "onereward_model_ready"), 0);
  EXPECT_EQ(sample_value(text, "onereward_device_memory_bytes", {{"kind", "in_use"}}), 0);
  EXPECT_EQ(sample_value(text, "onereward_device_memory_bytes", {{"kind", "reserved"}}), 0);
  EXPECT_EQ(sample_value(text, "onereward_build_info"), 1);
}

TEST(Metrics, BucketsCoverRealRanges) {
  Metrics m("");
  const std::string text = m.scrape();
  auto le_set = [&](const std::string& name) {
    std::set<double> out;
    for (const auto& s : parse_samples(text)) {
      if (s.name == name + "_bucket" && s.labels.count("le") && s.labels.at("le") != "+Inf" &&
          (!s.labels.count("task") || s.labels.at("task") == "fill")) {
        out.insert(std::stod(s.labels.at("le")));
      }
    }
    return out;
  };
  const auto req = le_set("onereward_request_duration_seconds");
  ASSERT_FALSE(req.empty());
  EXPECT_LE(*req.begin(), 0.005);
  EXPECT_GE(*req.rbegin(), 1800);
  const auto step = le_set("onereward_step_duration_seconds");
  ASSERT_FALSE(step.empty());
  EXPECT_LE(*step.begin(), 0.001);
  EXPECT_GE(*step.rbegin(), 60);
  EXPECT_EQ(le_set("onereward_batch_rows"), (std::set<double>{1, 2, 4, 8, 16, 32, 64}));
  const auto wait = le_set("onereward_queue_wait_seconds");
  ASSERT_FALSE(wait.empty());
  EXPECT_LE(*wait.begin(), 0.001);
  EXPECT_GE(*wait.rbegin(), 1800);
}

TEST(Metrics, CountersAndHistogramsMove) {
  Metrics m("");
  m.request_finished("fill", "OK", 0.2);
  m.request_finished("fill", "OK", 3.0);
  m.request_finished("fill", "INVALID_ARGUMENT", 0.001);
  m.request_finished("remove", "RESOURCE_EXHAUSTED", 0.002);
  m.request_finished("bogus-task", "NOT_A_CODE", 0.5);  // bounded label values
  m.failure("invalid");
  m.failure("rejected");
  m.failure("rejected");
  m.failure("no-such-reason");
  m.queue_wait(0.05);
  m.set_queue_depth(7);
  m.set_running_jobs(3);
  m.batch_step(4, 0.02);
  m.batch_step(2, 0.01);
  m.stage("text", 0.01);
  m.stage("denoise", 2.0);
  m.stage("denoise", 4.0);
  m.set_model_ready(true);
  m.set_device_memory(1 << 20, 1 << 22);
  m.set_build_info("0.1.0", "2.1.0", "cuda:0", "bf16");
  const std::string t = m.scrape();

  EXPECT_EQ(sample_value(t, "onereward_requests_total", {{"task", "fill"}, {"code", "OK"}}), 2);
  EXPECT_EQ(sample_value(t, "onereward_requests_total", {{"task", "fill"}, {"code", "INVALID_ARGUMENT"}}), 1);
  EXPECT_EQ(sample_value(t, "onereward_requests_total", {{"task", "remove"}, {"code", "RESOURCE_EXHAUSTED"}}), 1);
  EXPECT_EQ(sample_value(t, "onereward_requests_total", {{"task", "unspecified"}, {"code", "UNKNOWN"}}), 1);
  EXPECT_EQ(sample_value(t, "onereward_request_duration_seconds_count", {{"task", "fill"}}), 3);
  EXPECT_NEAR(sample_value(t, "onereward_request_duration_seconds_sum", {{"task", "fill"}}), 3.201, 1e-9);
  EXPECT_EQ(sample_value(t, "onereward_request_duration_seconds_bucket", {{"task", "fill"}, {"le", "0.25"}}), 2);
  EXPECT_EQ(sample_value(t, "onereward_request_duration_seconds_bucket", {{"task", "fill"}, {"le", "+Inf"}}), 3);
  EXPECT_EQ(sample_value(t, "onereward_failures_total", {{"reason", "invalid"}}), 1);
  EXPECT_EQ(sample_value(t, "onereward_failures_total", {{"reason", "rejected"}}), 2);
  EXPECT_EQ(sample_value(t, "onereward_failures_total", {{"reason", "internal"}}), 1);
  EXPECT_EQ(sample_value(t, "onereward_failures_total", {{"reason", "cancelled"}}), 0);
  EXPECT_EQ(sample_value(t, "onereward_queue_wait_seconds_count"), 1);
  EXPECT_EQ(sample_value(t, "onereward_queue_depth"), 7);
  EXPECT_EQ(sample_value(t, "onereward_running_jobs"), 3);
  EXPECT_EQ(sample_value(t, "onereward_batch_rows_count"), 2);
  EXPECT_EQ(sample_value(t, "onereward_batch_rows_sum"), 6);
  EXPECT_EQ(sample_value(t, "onereward_batch_rows_bucket", {{"le", "2"}}), 1);
  EXPECT_EQ(sample_value(t, "onereward_step_duration_seconds_count"), 2);
  EXPECT_NEAR(sample_value(t, "onereward_step_duration_seconds_sum"), 0.03, 1e-12);
  EXPECT_EQ(sample_value(t, "onereward_stage_duration_seconds_count", {{"stage", "denoise"}}), 2);
  EXPECT_EQ(sample_value(t, "onereward_stage_duration_seconds_sum", {{"stage", "denoise"}}), 6);
  EXPECT_EQ(sample_value(t, "onereward_stage_duration_seconds_count", {{"stage", "text"}}), 1);
  EXPECT_EQ(sample_value(t, "onereward_model_ready"), 1);
  EXPECT_EQ(sample_value(t, "onereward_device_memory_bytes", {{"kind", "in_use"}}), 1 << 20);
  EXPECT_EQ(sample_value(t, "onereward_device_memory_bytes", {{"kind", "reserved"}}), 1 << 22);
  // One build_info series, the latest.
  EXPECT_EQ(sample_value(t, "onereward_build_info"), 1);
  EXPECT_EQ(sample_value(t, "onereward_build_info",
                         {{"version", "0.1.0"}, {"torch", "2.1.0"}, {"device", "cuda:0"}, {"dtype", "bf16"}}),
            1);

  m.set_model_ready(false);
  m.set_queue_depth(0);
  const std::string t2 = m.scrape();
  EXPECT_EQ(sample_value(t2, "onereward_model_ready"), 0);
  EXPECT_EQ(sample_value(t2, "onereward_queue_depth"), 0);
}

TEST(Metrics, PromptCacheTotalsAdvanceByDeltas) {
  Metrics m("");
  m.set_prompt_cache_totals(3, 5);
  m.set_prompt_cache_totals(3, 5);  // no change
  m.set_prompt_cache_totals(10, 6);
  std::string t = m.scrape();
  EXPECT_EQ(sample_value(t, "onereward_prompt_cache_hits_total"), 10);
  EXPECT_EQ(sample_value(t, "onereward_prompt_cache_misses_total"), 6);
  // A smaller total: the engine's counters restarted; the counter never goes down.
  m.set_prompt_cache_totals(2, 1);
  t = m.scrape();
  EXPECT_EQ(sample_value(t, "onereward_prompt_cache_hits_total"), 12);
  EXPECT_EQ(sample_value(t, "onereward_prompt_cache_misses_total"), 7);
  m.set_prompt_cache_totals(4, 1);
  t = m.scrape();
  EXPECT_EQ(sample_value(t, "onereward_prompt_cache_hits_total"), 14);
  EXPECT_EQ(sample_value(t, "onereward_prompt_cache_misses_total"), 7);
}

TEST(Metrics, ConcurrentUpdatesAddUp) {
  Metrics m("");
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&m] {
      for (int k = 0; k < 1000; ++k) {
        m.request_finished("extend", k % 2 ? "OK" : "CANCELLED", 0.01);
        m.batch_step(2, 0.001);
        if (k % 2 == 0) m.failure("cancelled");
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string t = m.scrape();
  EXPECT_EQ(sample_value(t, "onereward_requests_total", {{"task", "extend"}, {"code", "OK"}}), 4000);
  EXPECT_EQ(sample_value(t, "onereward_requests_total", {{"task", "extend"}, {"code", "CANCELLED"}}), 4000);
  EXPECT_EQ(sample_value(t, "onereward_request_duration_seconds_count", {{"task", "extend"}}), 8000);
  EXPECT_EQ(sample_value(t, "onereward_step_duration_seconds_count"), 8000);
  EXPECT_EQ(sample_value(t, "onereward_failures_total", {{"reason", "cancelled"}}), 4000);
}

TEST(Metrics, ExposerServesOnAnyFreePort) {
  Metrics m("127.0.0.1:0");
  ASSERT_GT(m.port(), 0);
  m.set_model_ready(true);
  m.request_finished("fill", "OK", 1.0);
  const std::string resp = http_get(m.port(), "/metrics");
  ASSERT_EQ(resp.rfind("HTTP/1.", 0), 0u) << resp;
  EXPECT_NE(resp.find(" 200 "), std::string::npos) << resp.substr(0, 200);
  const std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
  EXPECT_EQ(sample_value(body, "onereward_model_ready"), 1);
  EXPECT_EQ(sample_value(body, "onereward_requests_total", {{"task", "fill"}, {"code", "OK"}}), 1);
  for (const auto& name : contract_names()) EXPECT_NE(body.find("# TYPE " + name + " "), std::string::npos) << name;
}

TEST(Metrics, TwoExposersGetDistinctPorts) {
  Metrics a("127.0.0.1:0");
  Metrics b("localhost:0");
  EXPECT_GT(a.port(), 0);
  EXPECT_GT(b.port(), 0);
  EXPECT_NE(a.port(), b.port());
  EXPECT_NE(http_get(b.port(), "/metrics").find("onereward_model_ready"), std::string::npos);
}

TEST(Metrics, BindFailureIsUnavailableAndNamesTheAddress) {
  // Hold a listening socket, then ask for the same port.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string listen_addr = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  try {
    Metrics m(listen_addr);
    ADD_FAILURE() << "bound a port that is in use: " << listen_addr;
  } catch (const onereward::Error& e) {
    EXPECT_EQ(e.code(), onereward::StatusCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find(listen_addr), std::string::npos) << e.what();
  }
  close(fd);
}

TEST(Metrics, MalformedAddressIsInvalidArgument) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"}) {
    try {
      Metrics m(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const onereward::Error& e) {
      EXPECT_EQ(e.code(), onereward::StatusCode::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

// promtool (Debian package prometheus) lints the exposition: names, units, types, help.
TEST(Metrics, PromtoolAcceptsScrape) {
  ASSERT_TRUE(on_path("promtool")) << "promtool not on PATH (Debian package prometheus; scripts/setup.sh)";
  Metrics m("127.0.0.1:0");
  m.request_finished("fill", "OK", 0.3);
  m.request_finished("extend", "DEADLINE_EXCEEDED", 100);
  m.failure("deadline");
  m.batch_step(2, 0.05);
  m.stage("vae_decode", 0.2);
  m.queue_wait(0.1);
  m.set_prompt_cache_totals(1, 2);
  m.set_build_info("0.1.0", "2.1.0", "cpu", "fp32");
  const auto r = run_with_input("promtool check metrics", m.scrape());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(r.output.empty()) << r.output;  // no lint findings at all
  // What Prometheus actually scrapes (includes the exposer's own metrics).
  const std::string resp = http_get(m.port(), "/metrics");
  const auto r2 = run_with_input("promtool check metrics", resp.substr(resp.find("\r\n\r\n") + 4));
  EXPECT_EQ(r2.status, 0) << r2.output;
}

}  // namespace
