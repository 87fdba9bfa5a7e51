// barton train | finetune | validate | infer: the engine's commands (Clara's medl.apps.train and
// medl.apps.evaluate). Thin: resolve the config, assemble the workflow, run, report.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
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

namespace barton::cli {

namespace fs = std::filesystem;

namespace {

struct CommonArgs {
  std::string mmar, config, env, device = "auto";
  std::vector<std::string> sets;
  bool bf16 = false;
};

/// Multi-process options of train / finetune (torchrun's names).
struct LaunchArgs {
  int nproc = 0, nnodes = 1, node_rank = 0, master_port = 0;
  std::string master_addr = "127.0.0.1";
  double timeout_s = 300;
  bool scale_lr = false, sync_bn = false;
};

void add_launch(CLI::App& app, LaunchArgs& l) {
  app.add_option("--nproc", l.nproc, "Start N local ranks (data-parallel on c10d: Gloo on CPU)");
  app.add_option("--nnodes", l.nnodes, "Number of machines (with --nproc)");
  app.add_option("--node-rank", l.node_rank, "This machine's index (with --nproc)");
  app.add_option("--master-addr", l.master_addr, "Rendezvous host (rank 0's machine; default 127.0.0.1)");
  app.add_option("--master-port", l.master_port, "Rendezvous port (default: a free one for a single machine, 29500 otherwise)");
  app.add_option("--dist-timeout", l.timeout_s, "Seconds a rank waits for the others before it gives up (default 300)");
  app.add_flag("--scale-lr", l.scale_lr, "Multiply the learning rate by the number of ranks (linear scaling rule)");
  app.add_flag("--sync-bn", l.sync_bn, "Synchronise BatchNorm statistics across ranks (SyncBatchNorm)");
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 29500;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

/// torchrun's job: start the local ranks as copies of this command (without the launcher options)
/// with RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT set; if one fails, stop the
/// others and report which.
int launch(const LaunchArgs& l) {
  static const std::set<std::string> with_value = {"--nproc", "--nnodes", "--node-rank", "--master-addr", "--master-port"};
  std::vector<std::string> args;
  const auto& all = command_line();
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& x = all[i];
    const auto eq = x.find('=');
    if (with_value.count(x)) {
      ++i;
      continue;
    }
    if (eq != std::string::npos && with_value.count(x.substr(0, eq))) continue;
    args.push_back(x);
  }
  const int world = l.nnodes * l.nproc;
  const int port = l.master_port > 0 ? l.master_port : (l.nnodes == 1 ? free_port() : 29500);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::map<pid_t, int> ranks;
  for (int local = 0; local < l.nproc; ++local) {
    const int rank = l.node_rank * l.nproc + local;
    const pid_t pid = fork();
    if (pid < 0) throw Error("cannot start rank " + std::to_string(rank) + ": fork failed");
    if (pid == 0) {
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      setenv("MASTER_ADDR", l.master_addr.c_str(), 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (!std::getenv("BARTON_THREADS")) setenv("BARTON_THREADS", std::to_string(std::max(1, cores / l.nproc)).c_str(), 1);
      std::vector<char*> argv;
      for (auto& x : args) argv.push_back(x.data());
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    ranks[pid] = rank;
  }
  log::info(fmt::format("Started {} rank(s) of {} on this machine (rendezvous {}:{})", l.nproc, world, l.master_addr, port));
  int failures = 0;
  std::string first;
  while (!ranks.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    const auto it = ranks.find(pid);
    if (it == ranks.end()) continue;
    const int rank = it->second;
    ranks.erase(it);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) continue;
    if (failures++ == 0) {
      first = WIFSIGNALED(status) ? fmt::format("rank {} was killed by signal {}", rank, WTERMSIG(status))
                                  : fmt::format("rank {} exited with status {}", rank, WEXITSTATUS(status));
      for (const auto& [p, r] : ranks) kill(p, SIGTERM);
      // Give them a moment, then make sure nothing is left behind.
      for (int i = 0; i < 50 && !ranks.empty(); ++i) {
        for (auto r = ranks.begin(); r != ranks.end();) {
          if (waitpid(r->first, &status, WNOHANG) == r->first) r = ranks.erase(r);
          else ++r;
        }
        usleep(100000);
      }
      for (const auto& [p, r] : ranks) kill(p, SIGKILL);
    }
  }
  if (failures > 0) throw Error(first + "; the other ranks were stopped");
  return 0;
}

void add_common(CLI::App& app, CommonArgs& a, const std::string& default_config, bool mmar_required = true) {
  auto* mmar = app.add_option("MMAR", a.mmar, "MMAR folder or config file");
  if (mmar_required) mmar->required();
  app.add_option("-c,--config", a.config, "Config file (default: config/" + default_config + ")");
  app.add_option("-e,--env", a.env, "Environment file (default: config/environment.json)");
  app.add_option("--set", a.sets, "Override: KEY=VALUE or /json/pointer=VALUE")->take_all();
  app.add_option("--device", a.device, "auto (use_gpu and a CUDA device), cpu, cuda, cuda:N");
  app.add_flag("--bf16", a.bf16,
               "bfloat16 autocast on CPU (native bf16 CPUs): faster, not MONAI's float32 (amp is CUDA-only there)");
}

bool print_conf(const mmar::ResolvedConfig& c) {
  const auto v = mmar::variable(c, "print_conf");
  return v == "true" || v == "True" || v == "1";
}

std::string rel(const std::string& p) {
  std::error_code ec;
  const auto r = fs::relative(p, fs::current_path(), ec);
  return ec || r.empty() ? p : r.string();
}

int run_training(const CommonArgs& a, const LaunchArgs& l, bool finetune, const std::string& ckpt, bool resume,
                 bool write_stats) {
  if (l.nproc > 0) return launch(l);
  auto dist = engine::dist_from_env();
  const bool rank0 = dist.rank == 0;
  if (!rank0) write_stats = false;
  auto sets = a.sets;
  if (finetune) {
    // Clara's finetune.sh: the same config with the checkpoint loader enabled.
    sets.insert(sets.begin(), "dont_load_ckpt_model=False");
    if (!ckpt.empty()) sets.push_back("MMAR_CKPT=" + fs::absolute(ckpt).string());
  }
  const auto files = mmar::locate_config(a.mmar, a.config, a.env);
  const auto cfg = mmar::resolve_config(files, {sets, false});
  if (dist.world_size == 1) {
    // Clara's multi_gpu=true: one rank per visible GPU.
    const auto mg = mmar::variable(cfg, "multi_gpu");
    if (mg == "true" || mg == "True" || mg == "1") {
      const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
      if (gpus > 1) {
        LaunchArgs per_gpu = l;
        per_gpu.nproc = gpus;
        return launch(per_gpu);
      }
      log::warn(fmt::format("multi_gpu=true but {} CUDA device(s): training in one process (--nproc N starts CPU ranks)", gpus));
    }
  }
  if (print_conf(cfg)) std::cout << cfg.doc.dump(2) << "\n";
  mmar::WorkflowOptions wo;
  wo.device = a.device;
  wo.cpu_bf16 = a.bf16;
  // One GPU per local rank.
  if (dist.world_size > 1 && wo.device == "auto" && torch::cuda::is_available() &&
      dist.local_rank < static_cast<int>(torch::cuda::device_count()))
    wo.device = "cuda:" + std::to_string(dist.local_rank);
  // NCCL where the ranks train on GPUs (CUDA LibTorch), Gloo otherwise.
  if (dist.world_size > 1 && wo.device.rfind("cuda", 0) == 0) dist.backend = "nccl";
  // SyncBatchNorm: decided when the network is built; the process group joins it afterwards.
  auto group = std::make_shared<std::shared_ptr<engine::Distributed>>();
  if (l.sync_bn && dist.world_size > 1) {
    nets::set_sync_batchnorm(std::make_shared<nets::AllReduceSum>([group](torch::Tensor& t) { (*group)->allreduce_sum(t); }));
  }
  auto wf = mmar::build_training(cfg, wo);
  nets::set_sync_batchnorm(nullptr);
  auto& t = *wf.trainer;
  fs::create_directories(wf.ckpt_dir);
  const auto resume_path = (fs::path(wf.ckpt_dir) / "checkpoint_last.pt").string();
  t.options.resume_path = rank0 ? resume_path : "";
  if (dist.world_size > 1) {
    t.dist = std::make_shared<engine::Distributed>(
        dist, std::chrono::milliseconds(static_cast<int64_t>(l.timeout_s * 1000)));
    *group = t.dist;
    t.loader->shard(dist.rank, dist.world_size);
    // Validation is split too: each rank evaluates its share of the cases (no case twice) and the
    // metrics are merged over ranks, so every rank sees the same values.
    if (wf.evaluator) {
      wf.evaluator->loader->shard(dist.rank, dist.world_size, /*even_divisible=*/false);
      wf.evaluator->dist = t.dist;
    }
    if (!rank0) {
      // Rank 0 logs and writes; the others train and validate (Clara's "rank": 0 components).
      static const std::set<std::string> rank0_only = {"CheckpointSaver", "StatsHandler", "TensorBoardStatsHandler",
                                                       "TensorBoardImageHandler", "MetricsSaver"};
      auto drop = [](std::vector<std::shared_ptr<engine::Handler>> hs) {
        hs.erase(std::remove_if(hs.begin(), hs.end(), [](const auto& h) { return rank0_only.count(h->name()) > 0; }), hs.end());
        return hs;
      };
      t.set_handlers(drop(t.handlers));
      if (wf.evaluator) wf.evaluator->set_handlers(drop(wf.evaluator->handlers));
      log::set_level(log::Level::kWarn);
    }
    if (l.scale_lr) {
      t.optimizer->scale_lr(static_cast<double>(dist.world_size));
      log::info(fmt::format("Learning rate scaled by the world size: x{} (first group {:.3g})", dist.world_size, t.optimizer->lr(0)));
    }
    log::info(fmt::format("Data-parallel training: {} ranks ({}), {} over {}:{}", dist.world_size, dist.source,
                          dist.backend == "nccl" ? "NCCL" : "Gloo", dist.master_addr, dist.master_port));
  }
  if (finetune) {
    bool has_loader = false;
    for (const auto& h : t.handlers) has_loader = has_loader || h->name() == "CheckpointLoader";
    if (!has_loader) {
      const auto path = ckpt.empty() ? mmar::mmar_path(cfg, mmar::variable(cfg, "MMAR_CKPT")) : ckpt;
      if (!fs::exists(path)) throw IoError(path, "the checkpoint to fine-tune from does not exist");
      nets::load_state_dict(*wf.network, io::load_state_dict_file(path), true);
      log::info("Loaded the model weights from " + path);
    }
  }
  if (resume) {
    if (!fs::exists(resume_path)) {
      throw IoError(resume_path, "nothing to resume: no checkpoint_last.pt in the checkpoint folder (a run writes it at the end "
                                 "of each epoch)");
    }
    t.load_state(resume_path);
    log::info(fmt::format("Resuming after epoch {} (iteration {}) from {}", t.state.epoch, t.state.iteration, resume_path));
    if (t.state.epoch >= t.options.max_epochs) log::info("That run had already finished all its epochs");
  }
  if (rank0)
    write_file_atomic(fs::path(wf.ckpt_dir) / (fs::path(files.config_path).stem().string() + ".resolved.json"), cfg.doc.dump(2) + "\n");
  log::info(fmt::format("Training {} ({} parameters) on {} for {} epoch(s), {} iteration(s) per epoch; seed {}",
                        wf.network->name(), nets::count_parameters(*wf.network), wf.device.str(), t.options.max_epochs,
                        t.loader->num_batches(), wf.deterministic ? std::to_string(wf.seed) : std::string("none")));
  const auto started = std::chrono::steady_clock::now();
  t.run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (write_stats) {
    nlohmann::ordered_json s;
    s["barton_version"] = BARTON_VERSION;
    s["config"] = files.config_path;
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
    s["world_size"] = dist.world_size;
    if (t.comm_steps > 0) s["allreduce_ms_per_step"] = 1000.0 * t.comm_seconds / static_cast<double>(t.comm_steps);
    s["threads"] = at::get_num_threads();
    write_file_atomic(fs::path(wf.ckpt_dir) / "train_stats.json", s.dump(2) + "\n");
  }
  if (!rank0) return 0;
  std::cout << fmt::format("Trained {} epoch(s) in {:.1f} s", t.state.epoch, secs);
  if (t.state.best_metric_epoch >= 0)
    std::cout << fmt::format("; best {} {:.4f} at epoch {}", t.state.key_metric_name, t.state.best_metric, t.state.best_metric_epoch);
  std::cout << "\n";
  if (t.comm_steps > 0)
    std::cout << fmt::format("  all-reduce:  {:.1f} ms per step on rank 0 ({} steps, {} ranks)\n",
                             1000.0 * t.comm_seconds / static_cast<double>(t.comm_steps), t.comm_steps, dist.world_size);
  std::cout << "  checkpoints: " << rel(wf.ckpt_dir) << "/ (best: model.pt, resume: checkpoint_last.pt)\n";
  std::cout << "  TensorBoard: tensorboard --logdir " << rel(wf.ckpt_dir) << "\n";
  if (write_stats) std::cout << "  summary:     " << rel((fs::path(wf.ckpt_dir) / "train_stats.json").string()) << "\n";
  return 0;
}

/// Index of the first post transform named `name` in the section at `section`, or -1.
int find_post(const mmar::ResolvedConfig& c, const std::string& section, const std::string& name) {
  const auto sec = mmar::node_at(c.doc, section);
  if (!sec.has("post_transforms")) return -1;
  const auto p = sec.at("post_transforms");
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p.at(i).has("name") && p.at(i).at("name").as<std::string>() == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

void setup_train(CLI::App& app, Runner& runner) {
  struct Args {
    CommonArgs c;
    LaunchArgs l;
    bool resume = false, no_stats = false;
  };
  auto a = std::make_shared<Args>();
  add_common(app, a->c, "config_train.json");
  add_launch(app, a->l);
  app.add_flag("--resume", a->resume, "Continue an interrupted run from MMAR_CKPT_DIR/checkpoint_last.pt");
  app.add_flag("--no-train-stats", a->no_stats, "Do not write train_stats.json");
  runner = [a]() { return run_training(a->c, a->l, false, "", a->resume, !a->no_stats); };
}

void setup_finetune(CLI::App& app, Runner& runner) {
  struct Args {
    CommonArgs c;
    LaunchArgs l;
    std::string ckpt;
    bool resume = false;
  };
  auto a = std::make_shared<Args>();
  add_common(app, a->c, "config_train.json");
  add_launch(app, a->l);
  app.add_option("--ckpt", a->ckpt, "Checkpoint to start from (default: MMAR_CKPT); MONAI and Clara checkpoints load too");
  app.add_flag("--resume", a->resume, "Continue an interrupted fine-tuning run");
  runner = [a]() { return run_training(a->c, a->l, true, a->ckpt, a->resume, true); };
}

namespace {

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
    throw IoError(plan_path, "the plan carries no config_inference.json (its MMAR had none): pass the MMAR as well");
  }
  TempFolder dir((fs::temp_directory_path() / fmt::format("barton-plan-{}", getpid())).string());
  fs::remove_all(dir.path);
  write_file_atomic(fs::path(dir.path) / "config" / "config_inference.json", plan.meta["config_inference"].get<std::string>());
  write_file_atomic(fs::path(dir.path) / "config" / "environment.json",
                    plan.meta.contains("environment") ? plan.meta["environment"].get<std::string>() : std::string("{}\n"));
  return dir;
}

int run_evaluation(const CommonArgs& a, const std::string& default_config, const std::string& ckpt,
                   const std::string& key, const std::string& output, bool save_segs, const std::string& input) {
  std::vector<std::string> sets;
  if (!output.empty()) sets.push_back("MMAR_EVAL_OUTPUT_PATH=" + fs::absolute(output).string());
  if (!input.empty()) {
    const auto abs = fs::absolute(input);
    if (!fs::exists(abs)) throw IoError(input, "the input does not exist");
    if (abs.extension() == ".json") {
      sets.push_back("DATASET_JSON=" + abs.string());
      sets.push_back("DATA_ROOT=" + abs.parent_path().string());
    } else {
      // One image: a one-case datalist beside the outputs.
      const auto dir = output.empty() ? fs::temp_directory_path() / fmt::format("barton-infer-{}", getpid()) : fs::absolute(output);
      nlohmann::ordered_json dl;
      dl["test"] = nlohmann::ordered_json::array({{{"image", abs.string()}}});
      dl["validation"] = dl["test"];
      write_file_atomic(dir / "input_datalist.json", dl.dump(2) + "\n");
      sets.push_back("DATASET_JSON=" + (dir / "input_datalist.json").string());
      sets.push_back("DATA_ROOT=" + abs.parent_path().string());
    }
  }
  const auto files = mmar::locate_config(a.mmar, a.config, a.env, default_config);
  // One look at the config as the user gave it decides the extra settings; then one resolution.
  sets.insert(sets.end(), a.sets.begin(), a.sets.end());
  const auto probe = mmar::resolve_config(files, {sets, false});
  const auto section = mmar::section_pointer(probe, "validate");
  std::vector<std::string> extra;
  // Clara's validate_ckpt.sh: the checkpoint rather than TorchScript, where the config has the
  // switches (before the user's --set, which may override them).
  if (probe.variables.has("dont_load_ts_model")) extra.push_back("dont_load_ts_model=True");
  if (probe.variables.has("dont_load_ckpt_model")) extra.push_back("dont_load_ckpt_model=False");
  sets.insert(sets.begin(), extra.begin(), extra.end());
  if (!key.empty()) sets.push_back(section + "/dataset/data_list_key=" + key);
  if (save_segs) {
    const int i = find_post(probe, section, "SaveImaged");
    if (i < 0) throw ConfigError(files.config_path, section + "/post_transforms", "--save-segmentations needs a SaveImaged post transform");
    sets.push_back(fmt::format("{}/post_transforms/{}/disabled=false", section, i));
  }
  const auto cfg = mmar::resolve_config(files, {sets, false});
  if (print_conf(cfg)) std::cout << cfg.doc.dump(2) << "\n";
  mmar::WorkflowOptions wo;
  wo.device = a.device;
  wo.cpu_bf16 = a.bf16;
  wo.ckpt = ckpt.empty() ? "" : fs::absolute(ckpt).string();
  auto wf = mmar::build_evaluation(cfg, wo);
  auto& e = *wf.evaluator;
  log::info(fmt::format("Evaluating {} on {} case(s) with the model from {}", rel(files.config_path),
                        e.loader->dataset().size(), rel(wf.model_source)));
  e.run();
  bool has_saver = false;
  for (const auto& h : e.handlers) has_saver = has_saver || h->name() == "MetricsSaver";
  if (!e.metrics.empty()) {
    if (!has_saver) write_metric_reports(wf.eval_dir, e, e.cases, {"*"}, {"*"}, ",");
    for (const auto& [k, v] : e.state.metrics) std::cout << fmt::format("{}: {:.4f}\n", k, v);
    std::cout << "  reports: " << rel(wf.eval_dir) << "/metrics.csv\n";
  }
  return 0;
}

}  // namespace

void setup_validate(CLI::App& app, Runner& runner) {
  struct Args {
    CommonArgs c;
    std::string ckpt, key, output;
    bool save = false;
  };
  auto a = std::make_shared<Args>();
  add_common(app, a->c, "config_validation.json");
  app.add_option("--ckpt", a->ckpt, "Checkpoint to validate (default: MMAR_CKPT)");
  app.add_option("--datalist-key", a->key, "Datalist key to validate on (default: the config's, usually validation)");
  app.add_option("--output", a->output, "Report folder (default: MMAR_EVAL_OUTPUT_PATH)");
  app.add_flag("--save-segmentations", a->save, "Enable the config's SaveImaged post transform");
  runner = [a]() { return run_evaluation(a->c, "config_validation.json", a->ckpt, a->key, a->output, a->save, ""); };
}

void setup_infer(CLI::App& app, Runner& runner) {
  struct Args {
    CommonArgs c;
    std::string ckpt, input, output, key, model;
  };
  auto a = std::make_shared<Args>();
  add_common(app, a->c, "config_inference.json", false);
  app.add_option("--ckpt", a->ckpt, "Checkpoint (default: the config's model, else MMAR_CKPT)");
  app.add_option("--model", a->model, "A Barton plan (barton export; then MMAR may be left out) or a TorchScript model.ts");
  app.add_option("--input", a->input, "An image file, or a datalist JSON (default: the config's datalist)");
  app.add_option("--datalist-key", a->key, "Datalist key (default: the config's, usually test)");
  app.add_option("--output", a->output, "Output folder (default: MMAR_EVAL_OUTPUT_PATH)");
  runner = [a]() {
    auto c = a->c;
    std::string model = a->ckpt;
    std::optional<TempFolder> plan_mmar;
    if (!a->model.empty()) {
      if (!a->ckpt.empty()) throw Error("give --model or --ckpt, not both");
      model = a->model;
      if (!fs::exists(model)) throw IoError(model, "the model does not exist");
      if (c.mmar.empty()) plan_mmar.emplace(materialize_plan_mmar(model));
      if (plan_mmar) c.mmar = plan_mmar->path;
    }
    if (c.mmar.empty()) throw Error("infer needs an MMAR, or --model with a Barton inference plan");
    if (a->input.empty() && plan_mmar) throw Error("--model with a plan and no MMAR needs --input (an image or a datalist)");
    // Without an MMAR the outputs go to ./eval (the plan's own MMAR folder is temporary).
    const auto output = a->output.empty() && plan_mmar ? std::string("eval") : a->output;
    return run_evaluation(c, "config_inference.json", model, a->key, output, false, a->input);
  };
}

}  // namespace barton::cli
