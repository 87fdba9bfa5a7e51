// barton config show|check MMAR [-c FILE] [-e FILE] [--set K=V ...]
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "core/errors.h"
#include "mmar/config_resolver.h"

namespace barton::cli {

namespace {

struct ConfigArgs {
  std::string mmar;
  std::string config;
  std::string env;
  std::vector<std::string> sets;
  bool variables = false;
};

void add_common(CLI::App& sub, ConfigArgs& a) {
  sub.add_option("MMAR", a.mmar, "MMAR folder or config file")->required();
  sub.add_option("-c,--config", a.config, "Config file (default: config/config_train.json)");
  sub.add_option("-e,--env", a.env, "Environment file (default: config/environment.json)");
  sub.add_option("--set", a.sets, "Override: KEY=VALUE (variable) or /json/pointer=VALUE")
      ->take_all();
}

}  // namespace

void setup_config(CLI::App& app, Runner& runner) {
  auto args = std::make_shared<ConfigArgs>();
  app.require_subcommand(1);
  auto* show =
      app.add_subcommand("show", "Print the fully resolved config as JSON (Clara's print_conf)");
  add_common(*show, *args);
  show->add_flag("--variables", args->variables, "Print the variable table instead");
  auto* check = app.add_subcommand(
      "check", "Report every problem of a config at once, as file:/json/pointer: message");
  add_common(*check, *args);
  runner = [args, show, check]() {
    const auto files = mmar::locate_config(args->mmar, args->config, args->env);
    if (show->parsed()) {
      const auto resolved = mmar::resolve_config(files, {args->sets, false});
      std::cout << (args->variables ? resolved.variables.dump(2) : resolved.doc.dump(2)) << "\n";
      return 0;
    }
    (void)check;
    Diagnostics diag;
    const auto resolved =
        mmar::resolve_config(files, {args->sets, true}, builtin_registries(), diag);
    for (const auto& e : diag.errors()) std::cerr << e.what() << "\n";
    if (diag.empty()) {
      std::cout << resolved.doc.source() << ": OK\n";
      return 0;
    }
    std::cerr << diag.errors().size() << " problem" << (diag.errors().size() == 1 ? "" : "s")
              << " found\n";
    return 2;
  };
}

}  // namespace barton::cli
