// Subcommands of onereward-engine; each registers itself on the CLI app and returns the
// callback result through `exit_code`.
#pragma once

namespace CLI {
class App;
}

namespace onereward::tools {

void register_inspect(CLI::App& app, int* exit_code);
void register_bench(CLI::App& app, int* exit_code);
#ifndef ONEREWARD_ENGINE_ONLY
void register_generate(CLI::App& app, int* exit_code);
void register_encode_prompt(CLI::App& app, int* exit_code);
void register_make_tiny(CLI::App& app, int* exit_code);
#endif

}  // namespace onereward::tools
