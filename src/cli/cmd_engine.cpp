// barton train | finetune | validate | infer: the engine's commands (Clara's medl.apps.train and
// medl.apps.evaluate). Parse the options, call mmar/run.h, print the outcome.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/errors.h"
#include "io/image.h"
#include "mmar/run.h"
#if BARTON_WITH_SERVE
#include "serve/model.h"
#endif

namespace barton::cli {

namespace fs = std::filesystem;

namespace {

void add_common(CLI::App& app,
                mmar::RunOptions& a,
                const std::string& default_config,
                bool mmar_required = true) {
  auto* mmar = app.add_option("MMAR", a.mmar, "MMAR folder or config file");
  if (mmar_required) mmar->required();
  app.add_option("-c,--config", a.config, "Config file (default: config/" + default_config + ")");
  app.add_option("-e,--env", a.env, "Environment file (default: config/environment.json)");
  app.add_option("--set", a.sets, "Override: KEY=VALUE or /json/pointer=VALUE")->take_all();
  app.add_option("--device", a.device, "auto (use_gpu and a CUDA device), cpu, cuda, cuda:N");
  app.add_flag("--bf16", a.cpu_bf16,
               "bfloat16 autocast on CPU (native bf16 CPUs): faster, not MONAI's float32 (amp is "
               "CUDA-only there)");
}

/// Multi-process options of train / finetune (torchrun's names).
void add_launch(CLI::App& app, mmar::TrainOptions& t) {
  auto& l = t.launch;
  app.add_option("--nproc", l.nproc, "Start N local ranks (data-parallel on c10d: Gloo on CPU)");
  app.add_option("--nnodes", l.nnodes, "Number of machines (with --nproc)");
  app.add_option("--node-rank", l.node_rank, "This machine's index (with --nproc)");
  app.add_option("--master-addr", l.master_addr,
                 "Rendezvous host (rank 0's machine; default 127.0.0.1)");
  app.add_option("--master-port", l.master_port,
                 "Rendezvous port (default: a free one for a single machine, 29500 otherwise)");
  app.add_option("--dist-timeout", t.dist_timeout_s,
                 "Seconds a rank waits for the others before it gives up (default 300)");
  app.add_flag("--scale-lr", t.scale_lr,
               "Multiply the learning rate by the number of ranks (linear scaling rule)");
  app.add_flag("--sync-bn", t.sync_bn,
               "Synchronise BatchNorm statistics across ranks (SyncBatchNorm)");
}

std::string rel(const std::string& p) {
  std::error_code ec;
  const auto r = fs::relative(p, fs::current_path(), ec);
  return ec || r.empty() ? p : r.string();
}

int train(mmar::TrainOptions o) {
  o.rank_command = engine::without_launcher_flags(command_line());
  const auto r = mmar::run_training(o);
  if (r.launched || r.rank != 0) return 0;
  std::cout << fmt::format("Trained {} epoch(s) in {:.1f} s", r.epochs, r.seconds);
  if (r.best_metric)
    std::cout << fmt::format("; best {} {:.4f} at epoch {}", r.key_metric_name, *r.best_metric,
                             r.best_metric_epoch);
  std::cout << "\n";
  if (r.allreduce_ms_per_step)
    std::cout << fmt::format("  all-reduce:  {:.1f} ms per step on rank 0 ({} steps, {} ranks)\n",
                             *r.allreduce_ms_per_step, r.allreduce_steps, r.world_size);
  std::cout << "  checkpoints: " << rel(r.ckpt_dir)
            << "/ (best: model.pt, resume: checkpoint_last.pt)\n";
  std::cout << "  TensorBoard: tensorboard --logdir " << rel(r.ckpt_dir) << "\n";
  if (!r.stats_path.empty()) std::cout << "  summary:     " << rel(r.stats_path) << "\n";
  return 0;
}

int print_evaluation(const mmar::EvalResult& r) {
  for (const auto& [k, v] : r.metrics) std::cout << fmt::format("{}: {:.4f}\n", k, v);
  if (!r.reports.empty()) std::cout << "  reports: " << rel(r.eval_dir) << "/metrics.csv\n";
  return 0;
}

}  // namespace

void setup_train(CLI::App& app, Runner& runner) {
  struct Args {
    mmar::TrainOptions t;
    bool no_stats = false;
  };
  auto a = std::make_shared<Args>();
  add_common(app, a->t.run, "config_train.json");
  add_launch(app, a->t);
  app.add_flag("--resume", a->t.resume,
               "Continue an interrupted run from MMAR_CKPT_DIR/checkpoint_last.pt");
  app.add_flag("--no-train-stats", a->no_stats, "Do not write train_stats.json");
  runner = [a]() {
    auto t = a->t;
    t.write_stats = !a->no_stats;
    return train(t);
  };
}

void setup_finetune(CLI::App& app, Runner& runner) {
  auto o = std::make_shared<mmar::TrainOptions>();
  o->finetune = true;
  add_common(app, o->run, "config_train.json");
  add_launch(app, *o);
  app.add_option(
      "--ckpt", o->ckpt,
      "Checkpoint to start from (default: MMAR_CKPT); MONAI and Clara checkpoints load too");
  app.add_flag("--resume", o->resume, "Continue an interrupted fine-tuning run");
  runner = [o]() { return train(*o); };
}

void setup_validate(CLI::App& app, Runner& runner) {
  auto o = std::make_shared<mmar::EvalOptions>();
  add_common(app, o->run, "config_validation.json");
  app.add_option("--ckpt", o->ckpt, "Checkpoint to validate (default: MMAR_CKPT)");
  app.add_option("--datalist-key", o->datalist_key,
                 "Datalist key to validate on (default: the config's, usually validation)");
  app.add_option("--output", o->output, "Report folder (default: MMAR_EVAL_OUTPUT_PATH)");
  app.add_flag("--save-segmentations", o->save_segmentations,
               "Enable the config's SaveImaged post transform");
  runner = [o]() { return print_evaluation(mmar::run_evaluation(*o)); };
}

struct InferArgs {
  mmar::EvalOptions e;
  std::string model;
  std::string clicks;
};

/// `barton infer --clicks`: one click round of an interactive model on one image, through the
/// same code the server runs for each click (serve::ServedModel), timed by stage.
int infer_clicks(const InferArgs& a) {
#if !BARTON_WITH_SERVE
  (void)a;
  throw Error("--clicks needs the server's model code: this build has BARTON_WITH_SERVE off");
#else
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (a.e.input.empty() || !fs::is_regular_file(a.e.input))
    throw Error("--clicks needs --input IMAGE (one image file)");
  nlohmann::json params;
  try {
    params = nlohmann::json::parse(a.clicks);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("--clicks is not JSON: ") + e.what());
  }
  const std::string source = a.model.empty() ? a.e.run.mmar : a.model;
  if (source.empty()) throw Error("give the MMAR folder or --model PLAN");
  serve::ServedModel m(serve::describe_model(source, "", a.e.run.sets), a.e.run.device);
  const auto clicks = m.clicks_from(params);
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto image = m.prepare(a.e.input);
  const auto r = m.infer_clicks(*image, clicks);
  auto stem = fs::path(a.e.input).filename().string();
  for (const auto* ext : {".nii.gz", ".nii", ".nrrd", ".mha"}) {
    const std::string e(ext);
    if (stem.size() > e.size() && stem.compare(stem.size() - e.size(), e.size(), e) == 0) {
      stem.resize(stem.size() - e.size());
      break;
    }
  }
  const auto out_dir = fs::path(a.e.output.empty() ? "eval" : a.e.output) / stem;
  fs::create_directories(out_dir);
  const auto out = (out_dir / (stem + "_clicks.nii.gz")).string();
  const auto tw = Clock::now();
  io::write_image(r.label, out);
  const double write_s = std::chrono::duration<double>(Clock::now() - tw).count();
  fmt::print("model {} (loaded in {:.3f} s)\n", m.info().name, load_s);
  fmt::print(
      "read {:.3f} s, pre-process {:.3f} s (prepare) + {:.3f} s (clicks), network {:.3f} s, "
      "post-process {:.3f} s, write {:.3f} s\n",
      image->read_seconds, image->pre_seconds, r.click_pre, r.times.network, r.times.post, write_s);
  fmt::print("crop [[{}, {}], [{}, {}], [{}, {}]]; {} foreground voxels\n", r.crop[0].first,
             r.crop[0].second, r.crop[1].first, r.crop[1].second, r.crop[2].first, r.crop[2].second,
             (r.label.data > 0).sum().item<int64_t>());
  fmt::print("wrote {}\n", out);
  return 0;
#endif
}

void setup_infer(CLI::App& app, Runner& runner) {
  using Args = InferArgs;
  auto a = std::make_shared<Args>();
  a->e.default_config = "config_inference.json";
  add_common(app, a->e.run, "config_inference.json", false);
  app.add_option("--ckpt", a->e.ckpt, "Checkpoint (default: the config's model, else MMAR_CKPT)");
  app.add_option(
      "--model", a->model,
      "A Barton plan (barton export; then MMAR may be left out) or a TorchScript model.ts");
  app.add_option("--input", a->e.input,
                 "An image file, or a datalist JSON (default: the config's datalist)");
  app.add_option("--datalist-key", a->e.datalist_key,
                 "Datalist key (default: the config's, usually test)");
  app.add_option("--output", a->e.output, "Output folder (default: MMAR_EVAL_OUTPUT_PATH)");
  app.add_option("--clicks", a->clicks,
                 "Interactive (DeepGrow) models: {\"foreground\": [[x, y, z], ...], "
                 "\"background\": [...]} in the input's voxel indices; needs --input IMAGE");
  runner = [a]() {
    if (!a->clicks.empty()) return infer_clicks(*a);
    return print_evaluation(mmar::run_inference(a->e, a->model));
  };
}

}  // namespace barton::cli
