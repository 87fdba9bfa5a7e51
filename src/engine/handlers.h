#pragma once
/// Built-in handlers that commands and tests use directly.

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "nets/network.h"
#include "optim/optim.h"

namespace barton::engine {

/// Saves {"model", "train_conf", "epoch", "key_metric"} dictionaries the way Python's torch.load
/// reads them; written atomically.
void save_model_checkpoint(const std::string& path,
                           const nets::Network& network,
                           const std::string& network_config,
                           int64_t epoch,
                           double key_metric,
                           const optim::Optimizer* optimizer = nullptr);

/// The network config ({"name", "args"} JSON) stored in a Barton checkpoint, or "" when the file
/// has none (MONAI / Clara checkpoints).
std::string checkpoint_network_config(const std::string& path);

/// Per-case metric report files: metrics.csv (case x metric, last row the aggregate),
/// <metric>_raw.csv (case x class), <metric>_summary.csv (per class statistics) and
/// metrics_summary.json. Every file is written atomically.
void write_metric_reports(const std::string& dir,
                          const Engine& e,
                          const std::vector<std::string>& cases,
                          const std::vector<std::string>& which,
                          const std::vector<std::string>& details,
                          const std::string& delimiter);

}  // namespace barton::engine
