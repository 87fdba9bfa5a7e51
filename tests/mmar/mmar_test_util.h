#pragma once
#include <string>

#include "mmar/config_resolver.h"
#include "support/test_support.h"

namespace barton::test {

/// Writes MMAR/config/config_train.json (and environment.json) and returns its ConfigFiles.
inline mmar::ConfigFiles make_mmar(
    const TempDir& tmp,
    const std::string& config,
    const std::string& env = R"({"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json",
                                     "MMAR_CKPT_DIR": "models", "MMAR_CKPT": "models/model.pt"})",
    const std::string& name = "config_train.json") {
  write_text(tmp.file("mmar/config/" + name), config);
  write_text(tmp.file("mmar/config/environment.json"), env);
  return mmar::locate_config(tmp.file("mmar"), name);
}

}  // namespace barton::test
