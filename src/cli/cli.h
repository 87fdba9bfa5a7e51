#pragma once
/// The `barton` command line: one binary, subcommands dispatched from an explicit table
/// (docs/architecture.md). cmd_<name>.cpp files stay thin: parse, load, call the library.

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace barton::cli {

/// Runs the CLI. Library errors propagate; main() maps them to exit codes
/// (0 ok, 1 Error, 2 usage or ConfigError, 3 InternalError).
int run(int argc, char** argv);

/// The command line this process was started with (the multi-process launcher re-runs it).
const std::vector<std::string>& command_line();

/// Each subcommand adds itself to the app and returns the function that runs it.
using Runner = std::function<int()>;
struct Command {
  const char* name;
  const char* help;
  void (*setup)(CLI::App& sub, Runner& runner);
};

void setup_config(CLI::App& sub, Runner& runner);
void setup_list_components(CLI::App& sub, Runner& runner);
void setup_convert(CLI::App& sub, Runner& runner);
void setup_info(CLI::App& sub, Runner& runner);
void setup_data(CLI::App& sub, Runner& runner);
void setup_preprocess(CLI::App& sub, Runner& runner);
void setup_metrics(CLI::App& sub, Runner& runner);
void setup_train(CLI::App& sub, Runner& runner);
void setup_finetune(CLI::App& sub, Runner& runner);
void setup_validate(CLI::App& sub, Runner& runner);
void setup_infer(CLI::App& sub, Runner& runner);
void setup_export(CLI::App& sub, Runner& runner);
void setup_verify(CLI::App& sub, Runner& runner);
void setup_serve(CLI::App& sub, Runner& runner);
void setup_serve_user(CLI::App& sub, Runner& runner);

}  // namespace barton::cli
