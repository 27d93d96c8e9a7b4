// Logs: text and JSON lines on stderr, request fields, prompts only at debug, escaping.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "engine/util/status.h"
#include "server/logging.h"
#include "tests/observability/obs_test_util.h"

using namespace onereward::server;
using nlohmann::json;
using obs_test::lines_of;
using obs_test::StderrCapture;

namespace {

RequestLog sample_request() {
  RequestLog r;
  r.request_id = "req-42";
  r.task = "fill";
  r.width = 64;
  r.height = 48;
  r.steps = 20;
  r.rows = 2;
  r.variant = "onereward";
  r.adapters = {"removal:0.8", "style:1"};
  r.queue_ms = 12.34;
  r.total_ms = 1234.5;
  r.outcome = "OK";
  r.prompt = "a red boat";
  r.negative_prompt = "nsfw";
  return r;
}

std::string capture_request(const std::string& level, const std::string& format, const RequestLog& r) {
  setup_logging(level, format);
  StderrCapture cap;
  log_request(r);
  return cap.stop();
}

class Logging : public ::testing::Test {
 protected:
  void TearDown() override { setup_logging("info", "text"); }
};

TEST_F(Logging, TextRequestLine) {
  const auto lines = lines_of(capture_request("info", "text", sample_request()));
  ASSERT_EQ(lines.size(), 1u);
  const std::string& l = lines[0];
  EXPECT_TRUE(std::regex_search(l, std::regex(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info request_id=req-42 )")))
      << l;
  for (const char* field : {"task=fill", "size=64x48", "steps=20", "rows=2", "variant=onereward",
                            "adapters=removal:0.8,style:1", "queue_ms=12.3", "total_ms=1234.5", "outcome=OK"}) {
    EXPECT_NE(l.find(std::string(" ") + field), std::string::npos) << field << " in " << l;
  }
  EXPECT_EQ(l.find("prompt"), std::string::npos) << l;
  EXPECT_EQ(l.find("a red boat"), std::string::npos) << l;
  EXPECT_EQ(l.find("message="), std::string::npos) << l;
}

TEST_F(Logging, TextPromptsOnlyAtDebug) {
  const auto lines = lines_of(capture_request("debug", "text", sample_request()));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" prompt=\"a red boat\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" negative_prompt=nsfw"), std::string::npos) << lines[0];
}

TEST_F(Logging, TextErrorCarriesMessageAndStaysOneLine) {
  RequestLog r = sample_request();
  r.outcome = "INVALID_ARGUMENT";
  r.message = "steps: 1000 is above the limit 100\nsecond \"line\"";
  r.prompt = "evil\nprompt";
  const auto lines = lines_of(capture_request("debug", "text", r));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" outcome=INVALID_ARGUMENT"), std::string::npos);
  EXPECT_NE(lines[0].find(R"( message="steps: 1000 is above the limit 100\nsecond \"line\"")"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find(R"( prompt="evil\nprompt")"), std::string::npos) << lines[0];
}

TEST_F(Logging, InternalIsWarn) {
  RequestLog r = sample_request();
  r.outcome = "INTERNAL";
  r.message = "bug";
  auto lines = lines_of(capture_request("info", "text", r));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" warn request_id=req-42"), std::string::npos) << lines[0];
  lines = lines_of(capture_request("info", "json", r));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json::parse(lines[0])["level"], "warn");
}

TEST_F(Logging, JsonRequestLine) {
  const auto lines = lines_of(capture_request("info", "json", sample_request()));
  ASSERT_EQ(lines.size(), 1u);
  const json j = json::parse(lines[0]);
  EXPECT_TRUE(std::regex_match(j.at("ts").get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << j["ts"];
  EXPECT_EQ(j.at("level"), "info");
  EXPECT_EQ(j.at("msg"), "request");
  EXPECT_EQ(j.at("request_id"), "req-42");
  EXPECT_EQ(j.at("task"), "fill");
  EXPECT_EQ(j.at("size"), "64x48");
  EXPECT_EQ(j.at("steps"), 20);
  EXPECT_EQ(j.at("rows"), 2);
  EXPECT_EQ(j.at("variant"), "onereward");
  EXPECT_EQ(j.at("adapters"), json::array({"removal:0.8", "style:1"}));
  EXPECT_NEAR(j.at("queue_ms").get<double>(), 12.34, 1e-9);
  EXPECT_NEAR(j.at("total_ms").get<double>(), 1234.5, 1e-9);
  EXPECT_EQ(j.at("outcome"), "OK");
  EXPECT_FALSE(j.contains("message"));
  EXPECT_FALSE(j.contains("prompt"));
  EXPECT_FALSE(j.contains("negative_prompt"));
  EXPECT_EQ(lines[0].find("a red boat"), std::string::npos);
}

TEST_F(Logging, JsonPromptsAtDebugAndEscaping) {
  RequestLog r = sample_request();
  r.outcome = "CANCELLED";
  r.message = "cancelled by \"client\"\n\\done";
  r.prompt = "quote \" backslash \\ newline \n tab \t ctrl \x01 utf8 \xc3\xa9 bad \xff end";
  r.negative_prompt = "";
  const std::string out = capture_request("debug", "json", r);
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j.at("outcome"), "CANCELLED");
  EXPECT_EQ(j.at("message"), "cancelled by \"client\"\n\\done");
  const std::string p = j.at("prompt");
  EXPECT_EQ(p.rfind("quote \" backslash \\ newline \n tab \t ctrl \x01 utf8 \xc3\xa9 bad ", 0), 0u) << p;
  EXPECT_EQ(p.substr(p.size() - 4), " end");
  EXPECT_EQ(j.at("negative_prompt"), "");
}

TEST_F(Logging, JsonEventsAndPlainSpdlogCalls) {
  setup_logging("info", "json");
  StderrCapture cap;
  log_event("info", "model loaded", {{"seconds", "1.25"}, {"device", "cpu"}, {"msg", "shadow"}});
  log_event("debug", "hidden at info");
  log_event("error", "listen failed", {{"address", "0.0.0.0:50051"}});
  spdlog::warn("plain {} with \"quotes\"", "spdlog");
  const auto lines = lines_of(cap.stop());
  ASSERT_EQ(lines.size(), 3u);
  json a = json::parse(lines[0]);
  EXPECT_EQ(a.at("level"), "info");
  EXPECT_EQ(a.at("msg"), "model loaded");
  EXPECT_EQ(a.at("seconds"), "1.25");
  EXPECT_EQ(a.at("device"), "cpu");
  EXPECT_EQ(a.at("field_msg"), "shadow");
  json b = json::parse(lines[1]);
  EXPECT_EQ(b.at("level"), "error");
  EXPECT_EQ(b.at("address"), "0.0.0.0:50051");
  json c = json::parse(lines[2]);
  EXPECT_EQ(c.at("level"), "warn");
  EXPECT_EQ(c.at("msg"), "plain spdlog with \"quotes\"");
}

TEST_F(Logging, TextEvents) {
  setup_logging("debug", "text");
  StderrCapture cap;
  log_event("debug", "prompt cache", {{"hits", "3"}, {"note", "two words"}, {"empty", ""}});
  log_event("info", "serving");
  const auto lines = lines_of(cap.stop());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(std::regex_search(lines[0], std::regex(R"( debug prompt cache hits=3 note="two words" empty=""$)")))
      << lines[0];
  EXPECT_TRUE(std::regex_search(lines[1], std::regex(R"( info serving$)"))) << lines[1];
}

TEST_F(Logging, LevelFilters) {
  const auto none = lines_of(capture_request("warn", "json", sample_request()));
  EXPECT_TRUE(none.empty());
  setup_logging("off", "text");
  StderrCapture cap;
  log_event("error", "nothing");
  EXPECT_TRUE(cap.stop().empty());
}

TEST_F(Logging, UnknownLevelOrFormatIsInvalidArgument) {
  for (const auto& [level, format] : std::vector<std::pair<std::string, std::string>>{
           {"verbose", "text"}, {"info", "xml"}, {"", "json"}, {"info", ""}}) {
    try {
      setup_logging(level, format);
      ADD_FAILURE() << level << "/" << format << " accepted";
    } catch (const onereward::Error& e) {
      EXPECT_EQ(e.code(), onereward::StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
