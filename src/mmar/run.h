#pragma once
/// Runs of an MMAR as library calls: what `barton train | finetune | validate | infer` do, for the
/// CLI, the annotation server, federated-learning clients and AutoML trials alike. Each call
/// resolves the config, builds the workflow, runs it and returns what happened; nothing is printed
/// to stdout (progress goes to the log).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/launcher.h"
#include "mmar/workflow.h"

namespace barton::mmar {

/// Which config of which MMAR, and how to run it.
struct RunOptions {
  std::string mmar;               ///< MMAR folder or config file.
  std::string config;             ///< Config file ("" = the command's default in MMAR/config/).
  std::string env;                ///< Environment file ("" = MMAR/config/environment.json).
  std::vector<std::string> sets;  ///< Overrides: KEY=VALUE or /json/pointer=VALUE.
  std::string device = "auto";    ///< auto, cpu, cuda, cuda:N.
  bool cpu_bf16 = false;          ///< bfloat16 autocast on CPU (engine::Engine::cpu_bf16).
};

struct TrainOptions {
  RunOptions run;
  bool finetune =
      false;            ///< Clara's finetune: the checkpoint loader enabled, or the weights loaded.
  std::string ckpt;     ///< Fine-tuning: the checkpoint to start from ("" = MMAR_CKPT).
  bool resume = false;  ///< Continue from MMAR_CKPT_DIR/checkpoint_last.pt.
  bool write_stats = true;  ///< Write MMAR_CKPT_DIR/train_stats.json (rank 0).
  /// Data parallelism: ranks of this machine to start (launch.nproc > 0), or, when this process is
  /// a rank (RANK/WORLD_SIZE set), how it joins the others.
  engine::LaunchOptions launch;
  double dist_timeout_s = 300;  ///< Seconds a rank waits for the others.
  bool scale_lr = false;        ///< Learning rate x world size.
  bool sync_bn = false;         ///< SyncBatchNorm across ranks.
  /// The command each rank runs (argv, launcher flags removed) when ranks are started here
  /// (launch.nproc > 0, or multi_gpu=true with several GPUs). Empty: no ranks are started.
  std::vector<std::string> rank_command;
};

struct TrainResult {
  bool launched = false;  ///< Ranks were started as child processes; the fields below are unset.
  int rank = 0, world_size = 1;
  int epochs = 0;  ///< Epochs completed in total (resumed runs included).
  int64_t iterations = 0;
  double seconds = 0;  ///< This run's wall time.
  std::string key_metric_name;
  std::optional<double> best_metric;  ///< Best validation key metric, when there was validation.
  int best_metric_epoch = -1;
  std::string ckpt_dir;    ///< MMAR_CKPT_DIR, resolved.
  std::string stats_path;  ///< train_stats.json, "" when not written.
  std::optional<double>
      allreduce_ms_per_step;  ///< Data-parallel runs: rank 0's mean all-reduce time.
  int64_t allreduce_steps = 0;
};

/// Trains (or fine-tunes) an MMAR. Throws barton::Error (ConfigError, IoError, ...) on bad input.
TrainResult run_training(const TrainOptions& options);

struct EvalOptions {
  RunOptions run;
  std::string default_config = "config_validation.json";  ///< config_inference.json for infer.
  std::string ckpt;  ///< Checkpoint, plan or model.ts to evaluate ("" = the config's model).
  std::string datalist_key;  ///< "" = the config's.
  std::string output;        ///< Report folder ("" = MMAR_EVAL_OUTPUT_PATH).
  std::string input;         ///< An image or a datalist JSON instead of the config's datalist.
  bool save_segmentations = false;  ///< Enable the config's SaveImaged post transform.
};

struct EvalResult {
  std::size_t cases = 0;
  std::map<std::string, double> metrics;  ///< Key and additional metrics (empty for inference).
  std::string eval_dir;                   ///< Where reports and outputs went.
  std::string reports;                    ///< metrics.csv, "" when there were no metrics.
};

/// Validates or infers with an MMAR's evaluation config.
EvalResult run_evaluation(const EvalOptions& options);

/// `barton infer`: like run_evaluation with config_inference.json, and with `model` (a Barton plan
/// or a TorchScript file) in place of the checkpoint; with a plan, `options.run.mmar` may be empty
/// and the plan's own inference config is used (outputs then default to ./eval).
EvalResult run_inference(EvalOptions options, const std::string& model);

/// The annotation server's model: an MMAR's inference config (options.default_config is not
/// used: config_inference.json unless options.run.config names another), or a plan's, built
/// once as an InferencePipeline with SaveImaged disabled. `model` is as for run_inference.
InferencePipeline load_inference_pipeline(EvalOptions options, const std::string& model = "");

}  // namespace barton::mmar
