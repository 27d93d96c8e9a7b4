// onereward-server's flags and JSON config file.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "server/options.h"

using namespace onereward::server;

namespace {

int parse(std::vector<std::string> args, ServerOptions& o) {
  args.insert(args.begin(), "onereward-server");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data(), o);
}

std::string write_config(const std::string& text) {
  const std::string path = ::testing::TempDir() + "/server-config-" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(ServerOptions, DefaultsFitTheModel) {
  ServerOptions o;
  ASSERT_EQ(parse({"--model", "/m"}, o), -1);
  EXPECT_EQ(o.engine.model_dir, "/m");
  EXPECT_EQ(o.listen, "0.0.0.0:50051");
  EXPECT_EQ(o.limits.max_pixels, 2048 * 2048);
  EXPECT_EQ(o.limits.max_steps, 100);
  EXPECT_GE(o.scheduler.max_batch_rows, 16);
  EXPECT_GE(o.limits.max_message_bytes, 4 * 2048 * 2048 * 3);  // 4 incompressible PNGs at the largest size
  EXPECT_GE(o.drain_grace_s, 120);
  EXPECT_TRUE(o.engine.load_base);
  EXPECT_TRUE(o.warmup);
}

TEST(ServerOptions, FlagsAndRepeatedVariantsAndLoras) {
  ServerOptions o;
  ASSERT_EQ(parse({"--model", "/m", "--variant", "onereward=/v/or", "--variant", "onereward-dynamic=/v/ord", "--lora",
                   "object-removal=/l/x.safetensors", "--no-base", "--default-variant", "onereward", "--max-batch-rows",
                   "2", "--queue-capacity", "5", "--drain-grace", "7.5", "--no-warmup", "--log-format", "json"},
                  o),
            -1);
  EXPECT_EQ(o.engine.variants.at("onereward"), "/v/or");
  EXPECT_EQ(o.engine.variants.at("onereward-dynamic"), "/v/ord");
  ASSERT_EQ(o.engine.loras.size(), 1u);
  EXPECT_EQ(o.engine.loras[0].name, "object-removal");
  EXPECT_FALSE(o.engine.load_base);
  EXPECT_EQ(o.engine.default_variant, "onereward");
  EXPECT_EQ(o.scheduler.max_batch_rows, 2);
  EXPECT_EQ(o.scheduler.queue_capacity, 5);
  EXPECT_DOUBLE_EQ(o.drain_grace_s, 7.5);
  EXPECT_FALSE(o.warmup);
  EXPECT_EQ(o.log_format, "json");
}

TEST(ServerOptions, ConfigFileWithCommandLineOverrides) {
  const std::string cfg = write_config(R"({"model": "/from-file", "listen": "127.0.0.1:1",
      "max-batch-rows": 8, "no-base": true, "variant": ["onereward=/v/or", "x=/v/x"],
      "lora": ["object-removal=/l"], "max-steps": 60})");
  ServerOptions o;
  ASSERT_EQ(parse({"--config", cfg, "--max-batch-rows", "4"}, o), -1);
  EXPECT_EQ(o.engine.model_dir, "/from-file");
  EXPECT_EQ(o.listen, "127.0.0.1:1");
  EXPECT_EQ(o.scheduler.max_batch_rows, 4);  // the command line wins
  EXPECT_EQ(o.limits.max_steps, 60);
  EXPECT_FALSE(o.engine.load_base);
  EXPECT_EQ(o.engine.variants.size(), 2u);
  EXPECT_EQ(o.engine.loras.size(), 1u);
  std::remove(cfg.c_str());
}

TEST(ServerOptions, BadUsageExitsWithTwo) {
  ServerOptions o;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(parse({}, o), 2);  // --model is required
  EXPECT_EQ(parse({"--model", "/m", "--variant", "no-equals"}, o), 2);
  EXPECT_EQ(parse({"--model", "/m", "--lora", "=x"}, o), 2);
  EXPECT_EQ(parse({"--model", "/m", "--max-batch-rows", "0"}, o), 2);
  EXPECT_EQ(parse({"--model", "/m", "--log-format", "xml"}, o), 2);
  EXPECT_EQ(parse({"--model", "/m", "--unknown-flag"}, o), 2);
  const std::string bad_json = write_config("{not json");
  EXPECT_EQ(parse({"--config", bad_json}, o), 2);
  EXPECT_EQ(parse({"--config", "/no/such/file.json", "--model", "/m"}, o), 2);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("--variant 'no-equals' must be NAME=DIR"), std::string::npos) << err;
  EXPECT_NE(err.find("model"), std::string::npos) << err;
  std::remove(bad_json.c_str());
}

TEST(ServerOptions, HelpListsEveryFlagWithItsDefault) {
  ServerOptions o;
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(parse({"--help"}, o), 0);
  const std::string out = ::testing::internal::GetCapturedStdout();
  for (const char* flag : {"--listen", "--metrics-listen", "--model", "--variant", "--lora", "--device", "--dtype",
                           "--queue-capacity", "--max-batch-rows", "--max-pixels", "--max-steps", "--max-message-mib",
                           "--drain-grace", "--config", "--threads", "--log-format"})
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  EXPECT_NE(out.find("=0.0.0.0:50051"), std::string::npos);
  EXPECT_NE(out.find("=4194304"), std::string::npos);
}
