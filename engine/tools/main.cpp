// onereward-engine: the engine without a server (offline generation, inspection, benchmarks).
#include <iostream>

#include <CLI/CLI.hpp>

#include "engine/tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"onereward-engine: OneReward / FLUX.1-Fill image-fill engine, offline tool"};
  app.require_subcommand(1);
  int exit_code = 0;
  onereward::tools::register_inspect(app, &exit_code);
  onereward::tools::register_bench(app, &exit_code);
#ifndef ONEREWARD_ENGINE_ONLY
  onereward::tools::register_generate(app, &exit_code);
  onereward::tools::register_encode_prompt(app, &exit_code);
  onereward::tools::register_make_tiny(app, &exit_code);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
