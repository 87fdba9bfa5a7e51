#pragma once
/// Assembles runnable loops from a resolved config: networks, losses, optimizers, schedules,
/// datasets, loaders, inferers, post transforms, metrics and handlers are built through their
/// registries in dependency order; "@name" arguments are looked up in the current section, then
/// in the shared objects (model, optimizer, ...), then in the other sections (the training
/// section's ValidationHandler refers to the validation section's "@evaluator").

#include <any>
#include <map>
#include <memory>
#include <string>

#include "engine/evaluator.h"
#include "engine/trainer.h"
#include "mmar/config_resolver.h"

namespace barton::mmar {

struct WorkflowOptions {
  std::string device = "auto";  ///< auto (use_gpu and CUDA present), cpu, cuda, cuda:N
  /// Evaluation configs: checkpoint to load instead of the config's model entries ("" = config).
  std::string ckpt;
  /// bfloat16 autocast on CPU (engine::Engine::cpu_bf16).
  bool cpu_bf16 = false;
};

struct Workflow {
  ResolvedConfig config;
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;
  bool deterministic = false;
  std::shared_ptr<nets::Network> network;    ///< Null for TorchScript models.
  std::string network_config;                ///< {"name", "args"} of the network, for checkpoints.
  std::string model_source;                  ///< Where the evaluation model came from.
  std::shared_ptr<engine::Trainer> trainer;  ///< Training configs.
  std::shared_ptr<engine::Evaluator> evaluator;  ///< The validation / evaluation loop.
  std::string ckpt_dir;                          ///< {MMAR_CKPT_DIR}, resolved.
  std::string eval_dir;                          ///< {MMAR_EVAL_OUTPUT_PATH}, resolved.
  std::map<std::string, std::any> shared;        ///< Everything built, for handlers and tests.
};

/// A training config (train + validate sections).
Workflow build_training(const ResolvedConfig& config, const WorkflowOptions& options = {});
/// A validation or inference config (flat).
Workflow build_evaluation(const ResolvedConfig& config, const WorkflowOptions& options = {});

/// What answering one image needs from an inference config (config_inference.json, flat): the
/// pre transforms, the model, the inferer and the post transforms, without the datalist, loader,
/// handlers or evaluator (the annotation server). Ownership: shares what it holds; the network
/// and its weights stay alive with `workflow`. Thread-safety: the transforms are const-safe;
/// the predictor must be called by one thread at a time.
struct InferencePipeline {
  Workflow workflow;                          ///< Device, config, network.
  std::shared_ptr<transforms::Compose> pre;   ///< /pre_transforms.
  std::shared_ptr<transforms::Compose> post;  ///< /post_transforms (null when none).
  std::shared_ptr<engine::Inferer> inferer;   ///< /inferer, or a SimpleInferer.
  engine::Predictor predictor;                ///< The network's forward.
  std::function<void(bool train)> set_mode;   ///< Switches the network's mode.
  bool amp = false;       ///< The evaluator's amp (CUDA autocast; nothing on CPU).
  bool cpu_bf16 = false;  ///< WorkflowOptions::cpu_bf16.
};

/// Builds an InferencePipeline from a flat evaluation config. Throws ConfigError for a training
/// config, or one without "model" or "pre_transforms".
InferencePipeline build_inference_pipeline(const ResolvedConfig& config,
                                           const WorkflowOptions& options = {});

/// The value of a config variable as a string ("" when unset).
std::string variable(const ResolvedConfig& config, const std::string& name);

/// Marks the trainer and evaluator entries implemented.
void register_engines(Registries& r);

}  // namespace barton::mmar
