#include <filesystem>

#include "core/errors.h"
#include "mmar/config_resolver.h"

namespace barton::mmar {

namespace fs = std::filesystem;

namespace {

// Finds `name`: absolute, relative to the current folder, or relative to `config_dir`.
std::string find_file(const std::string& name, const fs::path& config_dir, const char* what) {
  std::error_code ec;
  const fs::path p(name);
  if (p.is_absolute() || fs::exists(p, ec)) {
    if (!fs::exists(p, ec)) throw IoError(name, std::string(what) + " not found");
    return p.lexically_normal().string();
  }
  const auto in_config = config_dir / p;
  if (fs::exists(in_config, ec)) return in_config.lexically_normal().string();
  throw IoError(name, std::string(what) + " not found (looked in the current folder and in " +
                          config_dir.string() + ")");
}

}  // namespace

ConfigFiles locate_config(const std::string& path,
                          const std::string& config,
                          const std::string& env,
                          const std::string& default_config) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(path, "no such MMAR folder or config file");
  ConfigFiles out;
  fs::path config_dir;
  if (fs::is_directory(path, ec)) {
    out.mmar_root = fs::path(path).lexically_normal().string();
    config_dir = fs::path(path) / "config";
    if (!fs::is_directory(config_dir, ec)) config_dir = fs::path(path);
    out.config_path =
        find_file(config.empty() ? default_config : config, config_dir, "config file");
  } else {
    out.config_path = fs::path(path).lexically_normal().string();
    config_dir = fs::path(out.config_path).parent_path();
    if (config_dir.empty()) config_dir = ".";
    out.mmar_root =
        config_dir.filename() == "config" ? config_dir.parent_path().string() : config_dir.string();
    if (out.mmar_root.empty()) out.mmar_root = ".";
    if (!config.empty()) out.config_path = find_file(config, config_dir, "config file");
  }
  if (!env.empty()) {
    out.env_path = find_file(env, config_dir, "environment file");
  } else if (fs::exists(config_dir / "environment.json", ec)) {
    out.env_path = (config_dir / "environment.json").lexically_normal().string();
  }
  return out;
}

}  // namespace barton::mmar
