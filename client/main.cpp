// onereward-client: command-line client of the onereward.v1.ImageFill service.
//
//   onereward-client fill|extend|remove --image F [--mask F] --out F [request flags]
//   onereward-client cancel --request-id ID
//   onereward-client info [--json]
//   onereward-client health [--service NAME]
//   onereward-client bench [--concurrency N | --rate R] [--duration S] [--requests N] ...
//
// Exit codes: 0 success, 1 an RPC failed, 2 bad usage, 130 interrupted.
#include <iostream>

#include <CLI/CLI.hpp>

#include "client/bench.h"
#include "client/client.h"
#include "client/commands.h"

namespace oc = onereward::client;

namespace {

// An optional flag: the target stays empty unless the flag is given.
template <class T>
CLI::Option* add_optional(CLI::App* app, const std::string& name, std::optional<T>& target,
                          const std::string& description) {
  return app->add_option_function<T>(
      name, [&target](const T& v) { target = v; }, description);
}

void add_connection_flags(CLI::App* app, oc::ConnectionFlags& conn, const char* timeout_default) {
  app->add_option("--target", conn.target, "server address HOST:PORT")->capture_default_str();
  add_optional(app, "--timeout", conn.timeout_s,
               std::string("deadline in seconds (default: ") + timeout_default + ")")
      ->check(CLI::PositiveNumber);
  app->add_option("--max-message-mib", conn.max_message_mib, "receive limit in MiB")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

void add_fill_flags(CLI::App* app, oc::FillFlags& f) {
  app->add_option("--image", f.image_path, "input image (PNG, JPEG or WebP)")->required();
  app->add_option("--mask", f.mask_path, "mask image, white = regenerate");
  app->add_option("--extend", f.extend, "margins L,T,R,B in pixels (extend)");
  add_optional(app, "--prompt", f.prompt, "prompt");
  add_optional(app, "--negative-prompt", f.negative_prompt, "negative prompt (server default)");
  add_optional(app, "--steps", f.steps, "denoising steps (server default)");
  add_optional(app, "--true-cfg", f.true_cfg, "true CFG scale (server default)");
  add_optional(app, "--guidance", f.guidance, "guidance scale (server default)");
  add_optional(app, "--seed", f.seed, "random seed (random when absent)");
  add_optional(app, "--strength", f.strength, "strength (server default)");
  add_optional(app, "--width", f.width, "output width (default: from the image)");
  add_optional(app, "--height", f.height, "output height (default: from the image)");
  add_optional(app, "--num-images", f.num_images, "images per request (default 1)");
  app->add_option("--variant", f.variant, "transformer variant (server default)");
  app->add_option("--adapter", f.adapters, "LoRA adapter NAME[:WEIGHT], repeatable")
      ->allow_extra_args(false);
  app->add_option("--format", f.format, "output format png|jpeg|webp (default: from --out)");
  add_optional(app, "--preview-every", f.preview_every, "steps between preview images");
  app->add_option("--previews-dir", f.previews_dir, "save previews as DIR/step_NNN.<ext>");
  add_optional(app, "--priority", f.priority, "priority, higher runs first");
  app->add_option("--request-id", f.request_id, "request id (server assigns one when empty)");
  app->add_option("--out", f.out, "output file; with several images FILE.ext, FILE_1.ext, FILE_2.ext, ...")
      ->required();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"onereward-client: client of the onereward.v1.ImageFill service"};
  app.require_subcommand(1);
  // Same shape as the other errors ("error: ..."); subcommands inherit it.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("error: ") + e.what() + "\nRun with --help for more information.\n";
  });

  oc::ConnectionFlags conn;
  oc::FillFlags fill;
  std::string cancel_id;
  bool info_json = false;
  std::string health_service;
  oc::BenchFlags bench;

  struct TaskCommand {
    const char* name;
    onereward::v1::Task task;
    const char* help;
  };
  const TaskCommand task_commands[] = {
      {"fill", onereward::v1::TASK_FILL, "inpaint the mask's white area following the prompt"},
      {"extend", onereward::v1::TASK_EXTEND, "outpaint: grow the canvas by --extend margins"},
      {"remove", onereward::v1::TASK_REMOVE, "remove the masked object"},
  };
  std::vector<std::pair<CLI::App*, onereward::v1::Task>> task_apps;
  for (const auto& t : task_commands) {
    CLI::App* sub = app.add_subcommand(t.name, t.help);
    add_connection_flags(sub, conn, "none");
    add_fill_flags(sub, fill);
    task_apps.emplace_back(sub, t.task);
  }

  CLI::App* cancel = app.add_subcommand("cancel", "cancel a queued or running job");
  add_connection_flags(cancel, conn, "10");
  cancel->add_option("--request-id", cancel_id, "the job's request id")->required();

  CLI::App* info = app.add_subcommand("info", "what the server serves");
  add_connection_flags(info, conn, "10");
  info->add_flag("--json", info_json, "print JSON");

  CLI::App* health = app.add_subcommand("health", "grpc.health.v1 check; exit 0 only when SERVING");
  add_connection_flags(health, conn, "10");
  health->add_option("--service", health_service, "service name (default: the whole server)");

  CLI::App* bench_app = app.add_subcommand("bench", "load generator");
  add_connection_flags(bench_app, conn, "none, per request");
  bench_app->add_option("--concurrency", bench.concurrency, "closed loop: concurrent callers")
      ->capture_default_str();
  add_optional(bench_app, "--rate", bench.rate, "open loop: Poisson arrivals per second");
  add_optional(bench_app, "--duration", bench.duration_s,
               "stop issuing after SECONDS (default 10 unless --requests)");
  add_optional(bench_app, "--requests", bench.requests, "stop issuing after N requests");
  bench_app->add_option("--tasks", bench.tasks, "task mix, e.g. fill:2,extend,remove:1")
      ->capture_default_str();
  bench_app->add_option("--sizes", bench.sizes, "input sizes, e.g. 64x64,256x256:2")
      ->capture_default_str();
  add_optional(bench_app, "--steps", bench.steps, "denoising steps (server default)");
  add_optional(bench_app, "--true-cfg", bench.true_cfg, "true CFG scale (server default)");
  add_optional(bench_app, "--seed", bench.seed, "request i gets seed+i; also seeds the mix");
  add_optional(bench_app, "--prompt", bench.prompt, "prompt (fill default: a photo of a cat)");
  add_optional(bench_app, "--num-images", bench.num_images, "images per request");
  bench_app
      ->add_option("--grace", bench.grace_s,
                   "seconds to wait for calls in flight at the end before cancelling")
      ->capture_default_str();
  bench_app
      ->add_option("--max-in-flight", bench.max_in_flight,
                   "open loop: outstanding calls before arrivals are dropped")
      ->capture_default_str();
  bench_app->add_option("--json", bench.json_path, "also write the report as JSON to FILE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : oc::kExitUsage;
  }

  try {
    for (const auto& [sub, task] : task_apps)
      if (sub->parsed()) return oc::run_fill(conn, task, fill);
    if (cancel->parsed()) return oc::run_cancel(conn, cancel_id);
    if (info->parsed()) return oc::run_info(conn, info_json);
    if (health->parsed()) return oc::run_health(conn, health_service);
    if (bench_app->parsed()) {
      if (bench.rate && bench_app->count("--concurrency") > 0) {
        std::cerr << "error: --rate (open loop) and --concurrency (closed loop) exclude each other"
                  << std::endl;
        return oc::kExitUsage;
      }
      return oc::run_bench(conn, bench);
    }
  } catch (const oc::UsageError& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return oc::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return oc::kExitRpcError;
  }
  return oc::kExitUsage;
}
