#pragma once
/// Builds runtime objects (transform chains, datalists) from a resolved config.

#include <memory>
#include <string>
#include <vector>

#include "data/datalist.h"
#include "mmar/config_resolver.h"
#include "transforms/transform.h"

namespace barton::mmar {

/// The transform chain of the list at `pointer` (e.g. "/train/pre_transforms"); disabled
/// components are skipped. Errors name the config file and the component's pointer.
std::shared_ptr<transforms::Compose> build_transforms(
    const ResolvedConfig& config,
    const std::string& pointer,
    const Registries& registries = builtin_registries(),
    const BuildContext& ctx = {});

/// The datalist of the section's dataset (data_list_file_path, data_file_base_dir, data_list_key),
/// with paths relative to the MMAR root resolved. Throws ConfigError at the dataset's pointer.
std::vector<data::DataItem> section_datalist(const ResolvedConfig& config,
                                             const std::string& section,
                                             bool check_files = true);

/// The section pointers a command may address: "train" -> "/train", "validate" -> "/validate" for
/// training configs; the whole document ("") for validation / inference configs.
std::string section_pointer(const ResolvedConfig& config, const std::string& section);

/// The node at a JSON Pointer of `doc` ("" = the document). Throws ConfigError when absent.
ConfigNode node_at(const ConfigNode& doc, const std::string& pointer);

/// Resolves a path from the config relative to the MMAR root.
std::string mmar_path(const ResolvedConfig& config, const std::string& path);

}  // namespace barton::mmar
