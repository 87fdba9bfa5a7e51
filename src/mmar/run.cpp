#include "mmar/run.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/logging.h"
#include "core/version.h"
#include "engine/distributed.h"
#include "engine/handlers.h"
#include "export/plan.h"
#include "io/torch_file.h"
#include "mmar/builder.h"
#include "mmar/workflow.h"
#include "nets/blocks/layers.h"
#include <unistd.h>

namespace barton::mmar {

namespace fs = std::filesystem;

namespace {

bool truthy(const std::string& v) {
  return v == "true" || v == "True" || v == "1";
}

std::string rel(const std::string& p) {
  std::error_code ec;
  const auto r = fs::relative(p, fs::current_path(), ec);
  return ec || r.empty() ? p : r.string();
}

/// Clara's print_conf: the resolved config on stdout before the run.
void maybe_print_conf(const ResolvedConfig& c) {
  if (truthy(variable(c, "print_conf"))) std::cout << c.doc.dump(2) << "\n";
}

/// Clara's multi_gpu=true in a single process: the number of ranks to start (one per GPU), or 0.
int multi_gpu_ranks(const ResolvedConfig& cfg, const TrainOptions& o) {
  if (!truthy(variable(cfg, "multi_gpu"))) return 0;
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (gpus > 1 && !o.rank_command.empty()) return gpus;
  log::warn(fmt::format(
      "multi_gpu=true but {} CUDA device(s): training in one process (--nproc N starts CPU ranks)",
      gpus));
  return 0;
}

/// Joins this rank to the others: process group, sharded loaders, rank-0-only handlers dropped on
/// the other ranks, learning-rate scaling.
void join_ranks(Workflow& wf,
                const engine::DistInfo& dist,
                const TrainOptions& o,
                const std::shared_ptr<std::shared_ptr<engine::Distributed>>& group) {
  auto& t = *wf.trainer;
  t.dist = std::make_shared<engine::Distributed>(
      dist, std::chrono::milliseconds(static_cast<int64_t>(o.dist_timeout_s * 1000)));
  *group = t.dist;
  t.loader->shard(dist.rank, dist.world_size);
  // Validation is split too: each rank evaluates its share of the cases (no case twice) and the
  // metrics are merged over ranks, so every rank sees the same values.
  if (wf.evaluator) {
    wf.evaluator->loader->shard(dist.rank, dist.world_size, /*even_divisible=*/false);
    wf.evaluator->dist = t.dist;
  }
  if (dist.rank != 0) {
    // Rank 0 logs and writes; the others train and validate (Clara's "rank": 0 components).
    auto drop = [](std::vector<std::shared_ptr<engine::Handler>> hs) {
      hs.erase(std::remove_if(hs.begin(), hs.end(), [](const auto& h) { return h->rank0_only(); }),
               hs.end());
      return hs;
    };
    t.set_handlers(drop(t.handlers));
    if (wf.evaluator) wf.evaluator->set_handlers(drop(wf.evaluator->handlers));
    log::set_level(log::Level::kWarn);
  }
  if (o.scale_lr) {
    t.optimizer->scale_lr(static_cast<double>(dist.world_size));
    log::info(fmt::format("Learning rate scaled by the world size: x{} (first group {:.3g})",
                          dist.world_size, t.optimizer->lr(0)));
  }
  log::info(fmt::format("Data-parallel training: {} ranks ({}), {} over {}:{}", dist.world_size,
                        dist.source, dist.backend == "nccl" ? "NCCL" : "Gloo", dist.master_addr,
                        dist.master_port));
}

/// Fine-tuning without a CheckpointLoader in the config: the weights from `ckpt` (or MMAR_CKPT).
void load_finetune_weights(Workflow& wf, const ResolvedConfig& cfg, const std::string& ckpt) {
  for (const auto& h : wf.trainer->handlers) {
    if (h->name() == "CheckpointLoader") return;
  }
  const auto path = ckpt.empty() ? mmar_path(cfg, variable(cfg, "MMAR_CKPT")) : ckpt;
  if (!fs::exists(path)) throw IoError(path, "the checkpoint to fine-tune from does not exist");
  nets::load_state_dict(*wf.network, io::load_state_dict_file(path), true);
  log::info("Loaded the model weights from " + path);
}

void resume_from(engine::Trainer& t, const std::string& path) {
  if (!fs::exists(path)) {
    throw IoError(path,
                  "nothing to resume: no checkpoint_last.pt in the checkpoint folder (a run writes "
                  "it at the end "
                  "of each epoch)");
  }
  t.load_state(path);
  log::info(fmt::format("Resuming after epoch {} (iteration {}) from {}", t.state.epoch,
                        t.state.iteration, path));
  if (t.state.epoch >= t.options.max_epochs)
    log::info("That run had already finished all its epochs");
}

/// train_stats.json, as Clara writes it, plus Barton's own fields.
std::string write_train_stats(const Workflow& wf,
                              const std::string& config_path,
                              double secs,
                              int world_size) {
  const auto& t = *wf.trainer;
  nlohmann::ordered_json s;
  s["barton_version"] = BARTON_VERSION;
  s["config"] = config_path;
  s["network"] = wf.network->name();
  s["total_epochs"] = t.state.epoch;
  s["total_iterations"] = t.state.iteration;
  double total = 0;
  for (double x : t.state.epoch_times) total += x;
  s["total_time"] = total;
  s["this_run_time"] = secs;
  s["epoch_times"] = t.state.epoch_times;
  s["final_train_loss"] = t.state.loss;
  s["key_metric_name"] = t.state.key_metric_name;
  if (t.state.best_metric_epoch >= 0) {
    s["best_validation_metric"] = t.state.best_metric;
    s["best_validation_epoch"] = t.state.best_metric_epoch;
  }
  s["device"] = wf.device.str();
  s["world_size"] = world_size;
  if (t.comm_steps > 0)
    s["allreduce_ms_per_step"] = 1000.0 * t.comm_seconds / static_cast<double>(t.comm_steps);
  s["threads"] = at::get_num_threads();
  const auto path = (fs::path(wf.ckpt_dir) / "train_stats.json").string();
  write_file_atomic(path, s.dump(2) + "\n");
  return path;
}

ResolvedConfig resolve_training_config(const TrainOptions& o, ConfigFiles& files) {
  auto sets = o.run.sets;
  if (o.finetune) {
    // Clara's finetune.sh: the same config with the checkpoint loader enabled.
    sets.insert(sets.begin(), "dont_load_ckpt_model=False");
    if (!o.ckpt.empty()) sets.push_back("MMAR_CKPT=" + fs::absolute(o.ckpt).string());
  }
  files = locate_config(o.run.mmar, o.run.config, o.run.env);
  return resolve_config(files, {sets, false});
}

/// Builds the training workflow; with several ranks, on this rank's device and joined to the
/// others.
Workflow build_rank_workflow(const ResolvedConfig& cfg,
                             const TrainOptions& o,
                             engine::DistInfo& dist) {
  WorkflowOptions wo;
  wo.device = o.run.device;
  wo.cpu_bf16 = o.run.cpu_bf16;
  // One GPU per local rank; NCCL where the ranks train on GPUs (CUDA LibTorch), Gloo otherwise.
  if (dist.world_size > 1 && wo.device == "auto" && torch::cuda::is_available() &&
      dist.local_rank < static_cast<int>(torch::cuda::device_count()))
    wo.device = "cuda:" + std::to_string(dist.local_rank);
  if (dist.world_size > 1 && wo.device.rfind("cuda", 0) == 0) dist.backend = "nccl";
  // SyncBatchNorm: decided when the network is built; the process group joins it afterwards.
  auto group = std::make_shared<std::shared_ptr<engine::Distributed>>();
  if (o.sync_bn && dist.world_size > 1) {
    nets::set_sync_batchnorm(std::make_shared<nets::AllReduceSum>(
        [group](torch::Tensor& t) { (*group)->allreduce_sum(t); }));
  }
  auto wf = build_training(cfg, wo);
  nets::set_sync_batchnorm(nullptr);
  if (dist.world_size > 1) join_ranks(wf, dist, o, group);
  return wf;
}

}  // namespace

TrainResult run_training(const TrainOptions& o) {
  TrainResult r;
  if (o.launch.nproc > 0) {
    engine::launch_ranks(o.launch, o.rank_command);
    r.launched = true;
    return r;
  }
  auto dist = engine::dist_from_env();
  const bool rank0 = dist.rank == 0;
  ConfigFiles files;
  const auto cfg = resolve_training_config(o, files);
  if (dist.world_size == 1) {
    if (const int gpus = multi_gpu_ranks(cfg, o); gpus > 0) {
      auto per_gpu = o.launch;
      per_gpu.nproc = gpus;
      engine::launch_ranks(per_gpu, o.rank_command);
      r.launched = true;
      return r;
    }
  }
  maybe_print_conf(cfg);
  auto wf = build_rank_workflow(cfg, o, dist);
  auto& t = *wf.trainer;
  fs::create_directories(wf.ckpt_dir);
  const auto resume_path = (fs::path(wf.ckpt_dir) / "checkpoint_last.pt").string();
  t.options.resume_path = rank0 ? resume_path : "";
  if (o.finetune) load_finetune_weights(wf, cfg, o.ckpt);
  if (o.resume) resume_from(t, resume_path);
  if (rank0)
    write_file_atomic(
        fs::path(wf.ckpt_dir) / (fs::path(files.config_path).stem().string() + ".resolved.json"),
        cfg.doc.dump(2) + "\n");
  log::info(fmt::format(
      "Training {} ({} parameters) on {} for {} epoch(s), {} iteration(s) per epoch; seed {}",
      wf.network->name(), nets::count_parameters(*wf.network), wf.device.str(),
      t.options.max_epochs, t.loader->num_batches(),
      wf.deterministic ? std::to_string(wf.seed) : std::string("none")));
  const auto started = std::chrono::steady_clock::now();
  t.run();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (o.write_stats && rank0)
    r.stats_path = write_train_stats(wf, files.config_path, r.seconds, dist.world_size);
  r.rank = dist.rank;
  r.world_size = dist.world_size;
  r.epochs = t.state.epoch;
  r.iterations = t.state.iteration;
  r.key_metric_name = t.state.key_metric_name;
  if (t.state.best_metric_epoch >= 0) {
    r.best_metric = t.state.best_metric;
    r.best_metric_epoch = t.state.best_metric_epoch;
  }
  r.ckpt_dir = wf.ckpt_dir;
  if (t.comm_steps > 0) {
    r.allreduce_ms_per_step = 1000.0 * t.comm_seconds / static_cast<double>(t.comm_steps);
    r.allreduce_steps = t.comm_steps;
  }
  return r;
}

namespace {

/// Index of the first post transform named `name` in the section at `section`, or -1.
int find_post(const ResolvedConfig& c, const std::string& section, const std::string& name) {
  const auto sec = node_at(c.doc, section);
  if (!sec.has("post_transforms")) return -1;
  const auto p = sec.at("post_transforms");
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p.at(i).has("name") && p.at(i).at("name").as<std::string>() == name)
      return static_cast<int>(i);
  }
  return -1;
}

/// The overrides that point the evaluation at `input` (an image or a datalist JSON).
void add_input_sets(const EvalOptions& o, std::vector<std::string>& sets) {
  const auto abs = fs::absolute(o.input);
  if (!fs::exists(abs)) throw IoError(o.input, "the input does not exist");
  if (abs.extension() == ".json") {
    sets.push_back("DATASET_JSON=" + abs.string());
    sets.push_back("DATA_ROOT=" + abs.parent_path().string());
    return;
  }
  // One image: a one-case datalist beside the outputs.
  const auto dir = o.output.empty()
                       ? fs::temp_directory_path() / fmt::format("barton-infer-{}", getpid())
                       : fs::absolute(o.output);
  nlohmann::ordered_json dl;
  dl["test"] = nlohmann::ordered_json::array({{{"image", abs.string()}}});
  dl["validation"] = dl["test"];
  write_file_atomic(dir / "input_datalist.json", dl.dump(2) + "\n");
  sets.push_back("DATASET_JSON=" + (dir / "input_datalist.json").string());
  sets.push_back("DATA_ROOT=" + abs.parent_path().string());
}

ResolvedConfig resolve_evaluation_config(const EvalOptions& o, ConfigFiles& files) {
  std::vector<std::string> sets;
  if (!o.output.empty()) sets.push_back("MMAR_EVAL_OUTPUT_PATH=" + fs::absolute(o.output).string());
  if (!o.input.empty()) add_input_sets(o, sets);
  files = locate_config(o.run.mmar, o.run.config, o.run.env, o.default_config);
  // One look at the config as the user gave it decides the extra settings; then one resolution.
  sets.insert(sets.end(), o.run.sets.begin(), o.run.sets.end());
  const auto probe = resolve_config(files, {sets, false});
  const auto section = section_pointer(probe, "validate");
  std::vector<std::string> extra;
  // Clara's validate_ckpt.sh: the checkpoint rather than TorchScript, where the config has the
  // switches (before the user's --set, which may override them).
  if (probe.variables.has("dont_load_ts_model")) extra.push_back("dont_load_ts_model=True");
  if (probe.variables.has("dont_load_ckpt_model")) extra.push_back("dont_load_ckpt_model=False");
  sets.insert(sets.begin(), extra.begin(), extra.end());
  if (!o.datalist_key.empty()) sets.push_back(section + "/dataset/data_list_key=" + o.datalist_key);
  if (o.save_segmentations) {
    const int i = find_post(probe, section, "SaveImaged");
    if (i < 0)
      throw ConfigError(files.config_path, section + "/post_transforms",
                        "--save-segmentations needs a SaveImaged post transform");
    sets.push_back(fmt::format("{}/post_transforms/{}/disabled=false", section, i));
  }
  return resolve_config(files, {sets, false});
}

/// A folder removed on destruction.
struct TempFolder {
  std::string path;
  explicit TempFolder(std::string p) : path(std::move(p)) {}
  TempFolder(TempFolder&& o) noexcept : path(std::move(o.path)) { o.path.clear(); }
  TempFolder(const TempFolder&) = delete;
  ~TempFolder() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

/// An MMAR made of the config_inference.json and environment.json that a plan carries.
TempFolder materialize_plan_mmar(const std::string& plan_path) {
  const auto plan = exporter::load_plan(plan_path);
  if (!plan.meta.contains("config_inference")) {
    throw IoError(
        plan_path,
        "the plan carries no config_inference.json (its MMAR had none): pass the MMAR as well");
  }
  TempFolder dir((fs::temp_directory_path() / fmt::format("barton-plan-{}", getpid())).string());
  fs::remove_all(dir.path);
  write_file_atomic(fs::path(dir.path) / "config" / "config_inference.json",
                    plan.meta["config_inference"].get<std::string>());
  write_file_atomic(fs::path(dir.path) / "config" / "environment.json",
                    plan.meta.contains("environment") ? plan.meta["environment"].get<std::string>()
                                                      : std::string("{}\n"));
  return dir;
}

}  // namespace

EvalResult run_evaluation(const EvalOptions& o) {
  ConfigFiles files;
  const auto cfg = resolve_evaluation_config(o, files);
  maybe_print_conf(cfg);
  WorkflowOptions wo;
  wo.device = o.run.device;
  wo.cpu_bf16 = o.run.cpu_bf16;
  wo.ckpt = o.ckpt.empty() ? "" : fs::absolute(o.ckpt).string();
  auto wf = build_evaluation(cfg, wo);
  auto& e = *wf.evaluator;
  log::info(fmt::format("Evaluating {} on {} case(s) with the model from {}",
                        rel(files.config_path), e.loader->dataset().size(), rel(wf.model_source)));
  e.run();
  EvalResult r;
  r.cases = e.loader->dataset().size();
  r.eval_dir = wf.eval_dir;
  if (!e.metrics.empty()) {
    bool has_saver = false;
    for (const auto& h : e.handlers) has_saver = has_saver || h->name() == "MetricsSaver";
    if (!has_saver) engine::write_metric_reports(wf.eval_dir, e, e.cases, {"*"}, {"*"}, ",");
    for (const auto& [k, v] : e.state.metrics) r.metrics[k] = v;
    r.reports = (fs::path(wf.eval_dir) / "metrics.csv").string();
  }
  return r;
}

EvalResult run_inference(EvalOptions o, const std::string& model) {
  std::optional<TempFolder> plan_mmar;
  if (!model.empty()) {
    if (!o.ckpt.empty()) throw Error("give --model or --ckpt, not both");
    o.ckpt = model;
    if (!fs::exists(model)) throw IoError(model, "the model does not exist");
    if (o.run.mmar.empty()) {
      plan_mmar.emplace(materialize_plan_mmar(model));
      o.run.mmar = plan_mmar->path;
    }
  }
  if (o.run.mmar.empty())
    throw Error("infer needs an MMAR, or --model with a Barton inference plan");
  if (o.input.empty() && plan_mmar)
    throw Error("--model with a plan and no MMAR needs --input (an image or a datalist)");
  // Without an MMAR the outputs go to ./eval (the plan's own MMAR folder is temporary).
  if (o.output.empty() && plan_mmar) o.output = "eval";
  return run_evaluation(o);
}

InferencePipeline load_inference_pipeline(EvalOptions o, const std::string& model) {
  std::optional<TempFolder> plan_mmar;
  if (!model.empty()) {
    if (!fs::exists(model)) throw IoError(model, "the model does not exist");
    o.ckpt = model;
    if (o.run.mmar.empty()) {
      plan_mmar.emplace(materialize_plan_mmar(model));
      o.run.mmar = plan_mmar->path;
    }
  }
  if (o.run.mmar.empty()) throw Error("serving needs an MMAR, or a Barton inference plan");
  auto files = locate_config(o.run.mmar, o.run.config, o.run.env, "config_inference.json");
  auto sets = o.run.sets;
  const auto probe = resolve_config(files, {sets, false});
  std::vector<std::string> extra;
  if (probe.variables.has("dont_load_ts_model")) extra.push_back("dont_load_ts_model=True");
  if (probe.variables.has("dont_load_ckpt_model")) extra.push_back("dont_load_ckpt_model=False");
  // The server writes results itself, on the request's own grid.
  if (const int i = find_post(probe, "", "SaveImaged"); i >= 0)
    extra.push_back(fmt::format("/post_transforms/{}/disabled=true", i));
  sets.insert(sets.begin(), extra.begin(), extra.end());
  const auto cfg = resolve_config(files, {sets, false});
  WorkflowOptions wo;
  wo.device = o.run.device;
  wo.cpu_bf16 = o.run.cpu_bf16;
  wo.ckpt = o.ckpt.empty() ? "" : fs::absolute(o.ckpt).string();
  return build_inference_pipeline(cfg, wo);
}

}  // namespace barton::mmar
