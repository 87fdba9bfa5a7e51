#pragma once
/// Decathlon-style datalists (dataset.json): training / validation / test keys, paths relative
/// to a base folder (DATA_ROOT) or absolute, optional integer `fold` fields.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace barton::data {

/// One case of a datalist. Ownership: value type.
struct DataItem {
  /// String fields (image, label, ...) as absolute or base-relative-resolved paths.
  std::map<std::string, std::string> files;
  /// Non-path fields (numbers, booleans) as JSON text, e.g. {"fold": "2"}.
  std::map<std::string, std::string> values;
  std::optional<int> fold;
  /// "<datalist file>:/training/3" for error messages.
  std::string where;
};

struct DatalistOptions {
  /// Base for relative paths; empty = the datalist file's folder (MONAI's default).
  std::string base_dir;
  /// Throw when a listed file does not exist.
  bool check_files = true;
};

/// Reads `key` ("training", "validation", "test"/"testing") from a datalist.
/// Plain strings in a list (Decathlon "test") become {"image": path}.
/// Throws ConfigError naming the datalist file and the JSON pointer (missing key with the keys
/// that exist, empty list, missing file, bad fold), IoError for an unreadable file.
std::vector<DataItem> load_datalist(const std::string& path,
                                    const std::string& key,
                                    const DatalistOptions& options = {});

/// The keys of a datalist file whose values are lists (the available splits).
std::vector<std::string> datalist_keys(const std::string& path);

/// Items whose fold is (include=true) or is not (include=false) `fold`.
std::vector<DataItem> select_fold(const std::vector<DataItem>& items, int fold, bool include);

}  // namespace barton::data
