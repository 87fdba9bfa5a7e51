// The MMAR config resolver: JSON, {VAR} substitution from environment.json, Clara's `#` idioms,
// `ref` entries, @references, the implicit wiring, every component against the registry, and
// --set. Input: config_train.json, a line "----", environment.json, a line "----", then one
// --set argument per line.
#include <sstream>

#include "core/errors.h"
#include "fuzz/fuzz_util.h"
#include "mmar/config_resolver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using barton::fuzz::split_once;
  const auto [config, rest] = split_once(barton::fuzz::as_view(data, size), "\n----\n");
  const auto [env, sets] = split_once(rest, "\n----\n");
  barton::mmar::ConfigFiles files;
  files.config_path = barton::fuzz::scratch_file("mmar/config/config_train.json", config);
  files.env_path = barton::fuzz::scratch_file("mmar/config/environment.json", env);
  files.mmar_root = (barton::fuzz::scratch_dir() / "mmar").string();
  barton::mmar::ResolveOptions options;
  std::istringstream lines{std::string(sets)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) options.sets.push_back(line);
  }
  try {
    (void)barton::mmar::resolve_config(files, options);
  } catch (const barton::Error&) {
  }
  return 0;
}
