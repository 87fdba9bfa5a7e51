#include "mmar/builder.h"

#include <filesystem>

#include "core/errors.h"
#include "mmar/registries.h"

namespace barton::mmar {

namespace fs = std::filesystem;

std::string mmar_path(const ResolvedConfig& config, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(config.files.mmar_root) / path).lexically_normal().string();
}

std::string section_pointer(const ResolvedConfig& config, const std::string& section) {
  if (config.kind == ConfigKind::kEvaluate) return "";
  if (section == "train") return "/train";
  if (section == "validate" || section == "validation") {
    if (!config.doc.has("validate"))
      throw ConfigError(config.doc.source(), "", "this config has no \"validate\" section");
    return "/validate";
  }
  throw Error("unknown section '" + section + "' (use train or validate)");
}

ConfigNode node_at(const ConfigNode& doc, const std::string& pointer) {
  ConfigNode n = doc;
  std::size_t pos = 1;
  while (pos <= pointer.size() && !pointer.empty()) {
    const auto next = pointer.find('/', pos);
    const auto token =
        pointer.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    n = n.is_array() ? n.at(static_cast<std::size_t>(std::stoul(token))) : n.at(token);
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return n;
}

std::shared_ptr<transforms::Compose> build_transforms(const ResolvedConfig& config,
                                                      const std::string& pointer,
                                                      const Registries& registries,
                                                      const BuildContext& ctx_in) {
  const auto list = node_at(config.doc, pointer);
  if (!list.is_array()) throw list.error("expected a list of transforms");
  BuildContext ctx = ctx_in;
  if (ctx.mmar_root == ".") ctx.mmar_root = config.files.mmar_root;
  std::vector<std::shared_ptr<const transforms::Transform>> steps;
  std::vector<std::string> where;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto t = registries.transforms.create(list.at(i), ctx, {"rank", "search", "apply"});
    if (!t) continue;  // disabled
    steps.emplace_back(std::move(t));
    where.push_back(list.at(i).pointer());
  }
  auto chain = std::make_shared<transforms::Compose>(std::move(steps), std::move(where));
  chain->set_fingerprint(list.dump());
  return chain;
}

std::vector<data::DataItem> section_datalist(const ResolvedConfig& config,
                                             const std::string& section,
                                             bool check_files) {
  const auto sec = node_at(config.doc, section);
  if (!sec.has("dataset")) throw sec.error("this section has no \"dataset\"");
  const auto ds = sec.at("dataset");
  const auto list = ds.require<std::string>("data_list_file_path");
  const auto base = ds.get_or<std::string>("data_file_base_dir", "");
  const auto key = ds.get_or<std::string>("data_list_key", "training");
  try {
    return data::load_datalist(mmar_path(config, list), key,
                               {base.empty() ? "" : mmar_path(config, base), check_files});
  } catch (const ConfigError& e) {
    throw ConfigError(ds.source(), ds.pointer() + "/data_list_key", e.what());
  } catch (const IoError& e) {
    throw ConfigError(ds.source(), ds.pointer() + "/data_list_file_path", e.what());
  }
}

}  // namespace barton::mmar
