#pragma once
/// MONAI Label's `/train/` for `barton serve`: one fine-tuning run at a time of a served MMAR on
/// the datastore's labelled images, in a separate process (`barton finetune`), so that a crash or
/// an out-of-memory error in training never takes the server down. Only files and processes
/// here: no tensors.

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <sys/types.h>

namespace barton::serve {

/// One run to start. Ownership: values.
struct TrainRequest {
  std::string model;        ///< Served name.
  std::string mmar;         ///< Its MMAR folder (has config/config_train.json).
  std::string ckpt;         ///< The weights to start from (the served checkpoint).
  std::string run_dir;      ///< Where the run's datalist, log, checkpoints and eval go (created).
  std::string device;       ///< --device for the child.
  int epochs = 0;           ///< 0: the config's own.
  bool publish = true;      ///< Serve the result when the run ends DONE (kept in the status).
  nlohmann::json datalist;  ///< {"training": [...], "validation": [...]} with absolute paths.
  nlohmann::json sources;   ///< What each item came from (image id, label tag and version).
};

/// Thread-safety: all members may be called from any thread.
class TrainRunner {
 public:
  /// `barton_exe`: the binary whose `finetune` runs. `on_done(status)` is called from the
  /// monitor thread when a run ends (any outcome) and may change status["published"...].
  TrainRunner(std::string barton_exe, std::function<void(nlohmann::json&)> on_done);
  /// Stops a running child (SIGTERM, then SIGKILL after 10 s) and waits for it.
  ~TrainRunner();
  TrainRunner(const TrainRunner&) = delete;
  TrainRunner& operator=(const TrainRunner&) = delete;

  /// Starts a run and returns its status; nullopt when one is running (the server answers 429).
  /// Throws IoError when the run folder cannot be written or the process cannot start.
  std::optional<nlohmann::json> start(const TrainRequest& request);
  /// The latest run's status ({id, model, status: RUNNING|DONE|FAILED|STOPPED, ...}), or
  /// nullopt when none has run.
  std::optional<nlohmann::json> status() const;
  bool running() const;
  /// Asks a running child to stop (SIGTERM: checkpoints are written atomically, so what it saved
  /// stays whole). Returns the status, nullopt when none has run.
  std::optional<nlohmann::json> stop();

 private:
  void monitor(pid_t pid);
  nlohmann::json with_log_tail(nlohmann::json s) const;

  std::string exe_;
  std::function<void(nlohmann::json&)> on_done_;
  mutable std::mutex mu_;
  std::optional<nlohmann::json> status_;
  pid_t pid_ = -1;
  bool stop_asked_ = false;
  std::thread monitor_;
};

/// The path of the running executable (/proc/self/exe).
std::string current_executable();

}  // namespace barton::serve
