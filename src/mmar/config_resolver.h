#pragma once
/// Loads a Clara 4.x MMAR config and resolves it into one explicit model (docs/architecture.md,
/// flows): {VAR} substitution from environment.json, top-level scalar keys and
/// --set; --set /json/pointer=VALUE; `ref` entries expanded; the implicit (4.0) wiring style
/// filled in so both styles give the same explicit config; every component checked against its
/// registry; @references and Clara's Python idioms checked; circular references refused.

#include <string>
#include <vector>

#include "core/config.h"
#include "core/registry.h"
#include "mmar/registries.h"

namespace barton::mmar {

/// Where a config comes from.
struct ConfigFiles {
  std::string mmar_root;    ///< Folder that relative paths in the config are relative to.
  std::string config_path;  ///< The config JSON.
  std::string env_path;     ///< environment.json, or "" when there is none.
};

/// PATH is an MMAR folder (config taken from PATH/config/) or a config file (environment.json
/// taken from the same folder; MMAR root = the parent of a folder named "config", else that
/// folder). `config` (-c) and `env` (-e) are absolute, relative to the current folder, or
/// relative to the MMAR's config/ folder. Throws IoError when a file is missing.
ConfigFiles locate_config(const std::string& path,
                          const std::string& config = "",
                          const std::string& env = "",
                          const std::string& default_config = "config_train.json");

enum class ConfigKind { kTrain, kEvaluate };

struct ResolvedConfig {
  ConfigFiles files;
  ConfigKind kind = ConfigKind::kTrain;
  /// The resolved document. Pointers of components match the file's (disabled components stay,
  /// marked "disabled": true; wiring only adds keys).
  ConfigNode doc = ConfigNode::parse("{}", "");
  /// The variable table after --set, with typed values.
  ConfigNode variables = ConfigNode::parse("{}", "");
  /// Section pointers: "/train", "/validate" for training configs; "" for flat ones.
  std::vector<std::string> sections;
};

struct ResolveOptions {
  /// --set arguments: "KEY=VALUE" (variable) or "/json/pointer=VALUE".
  std::vector<std::string> sets;
  /// Also check that datalists, the files they list, and enabled checkpoints exist.
  bool check_files = false;
};

/// Resolves, throwing the first problem as ConfigError (or IoError for unreadable files).
ResolvedConfig resolve_config(const ConfigFiles& files,
                              const ResolveOptions& options = {},
                              const Registries& registries = builtin_registries());

/// Resolves, collecting every problem in `diag` (config check). The result is as complete as the
/// problems allow. Unreadable or unparsable files still throw.
ResolvedConfig resolve_config(const ConfigFiles& files,
                              const ResolveOptions& options,
                              const Registries& registries,
                              Diagnostics& diag);

/// Parses a --set value: JSON when it parses, Python's True/False/None, else a string.
std::string parse_set_value_json(const std::string& text);

}  // namespace barton::mmar
