#include "data/datalist.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/errors.h"
#include "core/strings.h"

namespace barton::data {

namespace fs = std::filesystem;

namespace {

std::string resolve_path(const std::string& base, const std::string& p) {
  if (p.empty()) return p;
  const fs::path path(p);
  if (path.is_absolute()) return path.lexically_normal().string();
  return (fs::path(base) / path).lexically_normal().string();
}

}  // namespace

std::vector<std::string> datalist_keys(const std::string& path) {
  const auto doc = ConfigNode::load(path);
  std::vector<std::string> out;
  for (const auto& k : doc.keys()) {
    if (doc.at(k).is_array()) out.push_back(k);
  }
  return out;
}

std::vector<DataItem> load_datalist(const std::string& path,
                                    const std::string& key,
                                    const DatalistOptions& options) {
  const auto doc = ConfigNode::load(path);
  if (!doc.is_object()) throw ConfigError(path, "", "a datalist must be a JSON object");
  if (!doc.has(key)) {
    std::vector<std::string> lists;
    for (const auto& k : doc.keys()) {
      if (doc.at(k).is_array()) lists.push_back(k);
    }
    throw ConfigError(path, "",
                      "no list '" + key + "' in datalist" + did_you_mean(key, lists) +
                          " (lists present: " + (lists.empty() ? "none" : join(lists, ", ")) + ")");
  }
  const auto list = doc.at(key);
  if (!list.is_array()) {
    throw ConfigError(path, list.pointer(), "expected a list of cases, got " + list.type_name());
  }
  if (list.size() == 0) throw ConfigError(path, list.pointer(), "the list '" + key + "' is empty");
  const std::string base = options.base_dir.empty() ? fs::absolute(path).parent_path().string()
                                                    : fs::absolute(options.base_dir).string();
  std::vector<DataItem> items;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto entry = list.at(i);
    DataItem item;
    item.where = path + ":" + entry.pointer();
    auto add_file = [&](const std::string& field, const ConfigNode& v) {
      const auto resolved = resolve_path(base, v.as<std::string>());
      if (options.check_files) {
        std::error_code ec;
        if (!fs::exists(resolved, ec)) {
          throw ConfigError(path, v.pointer(), "file not found: " + resolved);
        }
      }
      item.files[field] = resolved;
    };
    if (entry.is_string()) {
      add_file("image", entry);
    } else if (entry.is_object()) {
      for (const auto& field : entry.keys()) {
        const auto v = entry.at(field);
        if (field == "fold") {
          item.fold = v.as<int>();
          item.values[field] = v.dump();
        } else if (v.is_string()) {
          add_file(field, v);
        } else if (v.is_array() && v.size() > 0 && v.at(0).is_string()) {
          // Multi-file fields (e.g. several modalities) keep the first file under the field name
          // and the rest as field_1, field_2, ...
          for (std::size_t k = 0; k < v.size(); ++k) {
            add_file(k == 0 ? field : field + "_" + std::to_string(k), v.at(k));
          }
        } else {
          item.values[field] = v.dump();
        }
      }
      if (item.files.empty()) {
        throw ConfigError(path, entry.pointer(),
                          "case lists no file (expected e.g. {\"image\": ..., \"label\": ...})");
      }
    } else {
      throw ConfigError(path, entry.pointer(),
                        "expected a case object {\"image\": ..., \"label\": ...} or a path, got " +
                            entry.type_name());
    }
    items.push_back(std::move(item));
  }
  return items;
}

std::vector<DataItem> select_fold(const std::vector<DataItem>& items, int fold, bool include) {
  std::vector<DataItem> out;
  for (const auto& it : items) {
    const bool match = it.fold && *it.fold == fold;
    if (match == include) out.push_back(it);
  }
  return out;
}

}  // namespace barton::data
