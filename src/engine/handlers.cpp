// Handlers (MONAI's names and arguments). The metrics they log are in metric_accumulators.cpp.
#include "engine/handlers.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/jit/serialization/pickle.h>

#include "core/atomic_file.h"
#include "core/build_args.h"
#include "core/errors.h"
#include "core/logging.h"
#include "engine/distributed.h"
#include "engine/evaluator.h"
#include "engine/events.h"
#include "engine/trainer.h"
#include "io/torch_file.h"
#include "metrics/metrics.h"
#include <unistd.h>

namespace barton::engine {

namespace fs = std::filesystem;

namespace {

using A = ArgType;

std::string path_in(const BuildContext& ctx, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(ctx.mmar_root) / p).lexically_normal().string();
}

double rss_gb() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         1073741824.0;  // GiB, as the epoch line
}

std::string hms(double s) {
  const auto t = static_cast<int64_t>(std::max(0.0, s));
  return fmt::format("{}:{:02d}:{:02d}", t / 3600, (t / 60) % 60, t % 60);
}

std::string metrics_line(const std::map<std::string, double>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += fmt::format("{}{} {:.4f}", out.empty() ? "" : "  ", k, v);
  return out;
}

double current_lr(const Engine& e);

// ---------------------------------------------------------------------------------------------
class CheckpointLoader final : public Handler {
 public:
  CheckpointLoader(std::string path,
                   std::vector<std::string> what,
                   bool strict,
                   std::shared_ptr<nets::Network> net,
                   optim::Optimizer* opt,
                   ConfigNode where)
      : path_(std::move(path)),
        what_(std::move(what)),
        strict_(strict),
        net_(std::move(net)),
        opt_(opt),
        where_(std::move(where)) {}
  std::string name() const override { return "CheckpointLoader"; }
  bool early() const override { return true; }
  void started(Engine&) override {
    if (done_) return;
    if (!fs::exists(path_)) {
      throw ConfigError(where_.source(), where_.pointer() + "/load_path",
                        fmt::format("CheckpointLoader: the checkpoint '{}' does not exist", path_));
    }
    for (const auto& w : what_) {
      if (w == "model") {
        nets::load_state_dict(*net_, io::load_state_dict_file(path_), strict_);
        log::info(fmt::format("Loaded the model weights from {}", path_));
      } else if (w == "optimizer" && opt_) {
        const auto root = io::load_torch_file(path_);
        const auto* o = root.get("optimizer");
        if (!o || !o->is_dict()) throw IoError(path_, "has no 'optimizer' entry to load");
        opt_->load_state(io::tensor_items(*o));
      }
    }
    done_ = true;
  }

 private:
  std::string path_;
  std::vector<std::string> what_;
  bool strict_;
  std::shared_ptr<nets::Network> net_;
  optim::Optimizer* opt_;
  ConfigNode where_;
  bool done_ = false;
};

// ---------------------------------------------------------------------------------------------
struct SaverOptions {
  std::string dir, prefix, final_filename, key_filename;
  bool save_final = false, save_key = false;
  int64_t key_n_saved = 1, interval = 0, n_saved = 0;
  bool save_optimizer = false;
};

class CheckpointSaver final : public Handler {
 public:
  CheckpointSaver(SaverOptions o,
                  std::shared_ptr<nets::Network> net,
                  std::string conf,
                  optim::Optimizer* opt)
      : o_(std::move(o)), net_(std::move(net)), conf_(std::move(conf)), opt_(opt) {}
  std::string name() const override { return "CheckpointSaver"; }
  bool rank0_only() const override { return true; }
  void epoch_completed(Engine& e) override {
    const int64_t epoch = e.global_epoch();
    const double key = e.state.metrics.count(e.state.key_metric_name)
                           ? e.state.metrics.at(e.state.key_metric_name)
                           : std::nan("");
    if (o_.save_key && e.has_key_metric && e.state.best_metric_epoch == epoch &&
        std::isfinite(key) && key >= e.state.best_metric) {
      std::string file = o_.key_filename;
      if (file.empty())
        file = o_.key_n_saved == 1 ? "model.pt"
                                   : fmt::format("{}key_metric={:.4f}.pt", o_.prefix, key);
      save(file, epoch, key);
      if (file != o_.key_filename && o_.key_n_saved != 1) keep_last(best_, file, o_.key_n_saved);
      log::info(fmt::format("Saved the best model ({} {:.4f} at epoch {}) to {}",
                            e.state.key_metric_name, key, epoch,
                            (fs::path(o_.dir) / file).string()));
    }
    if (o_.interval > 0 && epoch % o_.interval == 0) {
      const auto file = fmt::format("{}checkpoint_epoch={}.pt", o_.prefix, epoch);
      save(file, epoch, key);
      if (o_.n_saved > 0) keep_last(interval_, file, o_.n_saved);
    }
  }
  void completed(Engine& e) override {
    if (!o_.save_final || e.role() != "train") return;
    const auto file = o_.final_filename.empty() ? o_.prefix + "model_final.pt" : o_.final_filename;
    save(file, e.state.epoch, std::nan(""));
    log::info(fmt::format("Saved the final model to {}", (fs::path(o_.dir) / file).string()));
  }

 private:
  void save(const std::string& file, int64_t epoch, double key) {
    save_model_checkpoint((fs::path(o_.dir) / file).string(), *net_, conf_, epoch, key,
                          o_.save_optimizer ? opt_ : nullptr);
  }
  void keep_last(std::vector<std::string>& list, const std::string& file, int64_t n) {
    list.erase(std::remove(list.begin(), list.end(), file), list.end());
    list.push_back(file);
    while (static_cast<int64_t>(list.size()) > n) {
      std::error_code ec;
      fs::remove(fs::path(o_.dir) / list.front(), ec);
      list.erase(list.begin());
    }
  }
  SaverOptions o_;
  std::shared_ptr<nets::Network> net_;
  std::string conf_;
  optim::Optimizer* opt_;
  std::vector<std::string> best_, interval_;
};

// ---------------------------------------------------------------------------------------------
class StatsHandler final : public Handler {
 public:
  StatsHandler(int64_t every, bool epoch_log, std::string tag)
      : every_(every), epoch_log_(epoch_log), tag_(std::move(tag)) {}
  std::string name() const override { return "StatsHandler"; }
  bool rank0_only() const override { return true; }
  void iteration_completed(Engine& e) override {
    if (every_ <= 0 || e.role() != "train") return;
    const auto& s = e.state;
    if (s.epoch_iteration % every_ != 0 && s.epoch_iteration != s.epoch_length) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - s.epoch_start).count();
    const double per_it = elapsed / static_cast<double>(s.epoch_iteration);
    const int64_t left =
        (s.epoch_length - s.epoch_iteration) + (s.max_epochs - s.epoch) * s.epoch_length;
    const int width = 20;
    const int done =
        static_cast<int>(width * s.epoch_iteration / std::max<int64_t>(1, s.epoch_length));
    std::string bar(static_cast<std::size_t>(done), '#');
    bar.append(static_cast<std::size_t>(width - done), '.');
    log::info(fmt::format(
        "Epoch {}/{} [{}] {}/{}  {} {:.4f}  lr {:.3g}  {:.2f} it/s  ETA {}  RSS {:.2f} GB", s.epoch,
        s.max_epochs, bar, s.epoch_iteration, s.epoch_length, tag_, s.loss, current_lr(e),
        per_it > 0 ? 1.0 / per_it : 0.0, hms(per_it * static_cast<double>(left)), rss_gb()));
  }
  void epoch_completed(Engine& e) override {
    if (!epoch_log_) return;
    const auto& s = e.state;
    if (e.role() == "train") {
      log::info(fmt::format("Epoch {}/{} finished in {:.1f} s  {} {:.4f}{}{}  {}", s.epoch,
                            s.max_epochs, s.epoch_seconds, tag_, s.loss,
                            s.metrics.empty() ? "" : "  ", metrics_line(s.metrics),
                            format_sample(s.system)));
    } else {
      std::string best;
      if (e.has_key_metric && e.parent)
        best = fmt::format("  (best {} {:.4f} at epoch {})", s.key_metric_name, s.best_metric,
                           s.best_metric_epoch);
      if (s.metrics.empty()) {
        log::info(fmt::format("Inference on {} case(s) in {:.1f} s",
                              s.epoch_iteration * s.batch_size, s.epoch_seconds));
        return;
      }
      const auto* ev = dynamic_cast<const Evaluator*>(&e);
      const auto n = ev && !ev->cases.empty() ? static_cast<int64_t>(ev->cases.size())
                                              : s.epoch_iteration * s.batch_size;
      log::info(fmt::format("Validation{} on {} case(s) in {:.1f} s: {}{}",
                            e.parent ? fmt::format(" at epoch {}", e.global_epoch()) : "", n,
                            s.epoch_seconds, metrics_line(s.metrics), best));
    }
  }

 private:
  int64_t every_;
  bool epoch_log_;
  std::string tag_;
};

// ---------------------------------------------------------------------------------------------
/// A middle axial slice of image | label | prediction, side by side, as an 8-bit grey picture.
at::Tensor slice_panel(const std::map<std::string, at::Tensor>& out) {
  std::vector<at::Tensor> panels;
  for (const char* key : {"image", "label", "pred"}) {
    auto it = out.find(key);
    if (it == out.end() || !it->second.defined()) continue;
    auto t = it->second[0].to(at::kFloat);  // [C, *spatial]
    if (t.dim() < 3) continue;
    if (std::string(key) == "pred" && t.size(0) > 1) t = t.argmax(0, true).to(at::kFloat);
    if (std::string(key) == "label" && t.size(0) > 1) t = t.argmax(0, true).to(at::kFloat);
    t = t[0];
    if (t.dim() == 3) t = t.select(2, t.size(2) / 2);  // [I, J]
    t = t.t().flip(0);                                 // rows = J (anterior up in RAS), columns = I
    const double lo = t.min().item<double>(), hi = t.max().item<double>();
    t = hi > lo ? (t - lo) / (hi - lo) : at::zeros_like(t);
    panels.push_back((t * 255.0).round().to(at::kByte));
  }
  if (panels.empty()) return {};
  const auto h = panels.front().size(0);
  for (auto& p : panels) {
    if (p.size(0) != h) p = at::constant_pad_nd(p, {0, 0, 0, h - p.size(0)});
  }
  return at::cat(panels, 1);
}

class TensorBoardStatsHandler final : public Handler {
 public:
  TensorBoardStatsHandler(std::string dir,
                          std::string tag,
                          int64_t iteration_interval,
                          int64_t epoch_interval,
                          bool images)
      : dir_(std::move(dir)),
        tag_(std::move(tag)),
        it_every_(iteration_interval),
        ep_every_(epoch_interval),
        images_(images) {}
  std::string name() const override { return "TensorBoardStatsHandler"; }
  bool rank0_only() const override { return true; }
  void started(Engine&) override {
    if (!writer_) writer_ = EventWriter::for_dir(dir_);
  }
  void iteration_completed(Engine& e) override {
    if (e.role() != "train" || it_every_ <= 0 || e.state.iteration % it_every_ != 0) return;
    writer_->scalar(tag_, e.state.loss, e.state.iteration);
  }
  void epoch_completed(Engine& e) override {
    const int64_t step = e.global_epoch();
    if (ep_every_ > 0 && step % ep_every_ != 0) return;
    for (const auto& [k, v] : e.state.metrics) writer_->scalar(k, v, step);
    if (e.role() == "train") {
      writer_->scalar("lr", current_lr(e), step);
      writer_->scalar("epoch_time_s", e.state.epoch_seconds, step);
      const auto& sys = e.state.system;
      writer_->scalar("system/cpu_percent", sys.cpu_percent, step);
      writer_->scalar("system/rss_mb", sys.rss_mb, step);
      writer_->scalar("system/peak_rss_mb", sys.peak_rss_mb, step);
      if (sys.has_gpu) {
        if (sys.gpu_util_percent >= 0)
          writer_->scalar("system/gpu_util_percent", sys.gpu_util_percent, step);
        writer_->scalar("system/gpu_mem_mb", sys.gpu_mem_used_mb, step);
      }
    } else if (images_) {
      const auto panel = slice_panel(e.last_output);
      if (panel.defined()) writer_->image("val_image_label_pred", panel, step);
    }
    writer_->flush();
  }
  void completed(Engine&) override { writer_->flush(); }

 private:
  std::string dir_, tag_;
  int64_t it_every_, ep_every_;
  bool images_;
  std::shared_ptr<EventWriter> writer_;
};

class TensorBoardImageHandler final : public Handler {
 public:
  TensorBoardImageHandler(std::string dir, int64_t interval)
      : dir_(std::move(dir)), interval_(interval) {}
  std::string name() const override { return "TensorBoardImageHandler"; }
  bool rank0_only() const override { return true; }
  void started(Engine&) override {
    if (!writer_) writer_ = EventWriter::for_dir(dir_);
  }
  void epoch_completed(Engine& e) override {
    if (interval_ > 0 && e.global_epoch() % interval_ != 0) return;
    const auto panel = slice_panel(e.last_output);
    if (panel.defined()) writer_->image(e.role() + "_image_label_pred", panel, e.global_epoch());
    writer_->flush();
  }

 private:
  std::string dir_;
  int64_t interval_;
  std::shared_ptr<EventWriter> writer_;
};

// ---------------------------------------------------------------------------------------------
class ValidationHandler final : public Handler {
 public:
  ValidationHandler(std::shared_ptr<Evaluator> v, int64_t interval, bool at_start)
      : v_(std::move(v)), interval_(interval), at_start_(at_start) {}
  std::string name() const override { return "ValidationHandler"; }
  void started(Engine& e) override {
    v_->parent = &e;
    // A resumed run continues with the best metric it had.
    v_->state.best_metric = e.state.best_metric;
    v_->state.best_metric_epoch = e.state.best_metric_epoch;
    if (at_start_) validate(e);
  }
  void epoch_completed(Engine& e) override {
    if (interval_ > 0 && e.state.epoch % interval_ == 0) validate(e);
  }

 private:
  void validate(Engine& e) {
    v_->run();
    e.state.best_metric = v_->state.best_metric;
    e.state.best_metric_epoch = v_->state.best_metric_epoch;
    e.state.key_metric_name = v_->state.key_metric_name;
    e.state.validation = v_->state.metrics;
  }
  std::shared_ptr<Evaluator> v_;
  int64_t interval_;
  bool at_start_;
};

class LrScheduleHandler final : public Handler {
 public:
  LrScheduleHandler(optim::LrScheduler* s, bool epoch_level, bool print)
      : s_(s), epoch_level_(epoch_level), print_(print) {}
  std::string name() const override { return "LrScheduleHandler"; }
  void iteration_completed(Engine&) override {
    if (!epoch_level_) s_->step();
  }
  void epoch_completed(Engine& e) override {
    if (!epoch_level_) return;
    std::optional<double> metric;
    if (!e.state.key_metric_name.empty() && e.state.validation.count(e.state.key_metric_name))
      metric = e.state.validation.at(e.state.key_metric_name);
    else if (std::isfinite(e.state.loss))
      metric = e.state.loss;
    s_->step(metric);
    if (print_)
      log::info(fmt::format("Epoch {}: learning rate now {:.6g}", e.state.epoch, current_lr(e)));
  }

 private:
  optim::LrScheduler* s_;
  bool epoch_level_, print_;
};

class EarlyStopHandler final : public Handler {
 public:
  EarlyStopHandler(int64_t patience, double min_delta, std::shared_ptr<Engine> trainer)
      : patience_(patience), min_delta_(min_delta), trainer_(std::move(trainer)) {}
  std::string name() const override { return "EarlyStopHandler"; }
  void epoch_completed(Engine& e) override {
    if (e.state.key_metric_name.empty() || !e.state.metrics.count(e.state.key_metric_name)) return;
    const double v = e.state.metrics.at(e.state.key_metric_name);
    if (!best_ || v > *best_ + min_delta_) {
      best_ = v;
      bad_ = 0;
      return;
    }
    if (++bad_ >= patience_) {
      Engine* target = e.parent ? e.parent : &e;
      if (trainer_) target = trainer_.get();
      target->state.terminate = true;
      log::info(fmt::format("EarlyStopHandler: {} has not improved for {} validation(s); stopping",
                            e.state.key_metric_name, bad_));
    }
  }

 private:
  int64_t patience_;
  double min_delta_;
  std::shared_ptr<Engine> trainer_;
  std::optional<double> best_;
  int64_t bad_ = 0;
};

/// MONAI's SmartCacheHandler starts, updates and shuts down the cache replacement; Barton's
/// SmartCacheDataset does that itself at each epoch start (the loader calls it), so the handler
/// only checks that it refers to a SmartCacheDataset.
class SmartCacheHandler final : public Handler {
 public:
  std::string name() const override { return "SmartCacheHandler"; }
};

class MetricsSaver final : public Handler {
 public:
  MetricsSaver(std::string dir,
               std::vector<std::string> metrics,
               std::vector<std::string> details,
               std::string delim)
      : dir_(std::move(dir)),
        metrics_(std::move(metrics)),
        details_(std::move(details)),
        delim_(std::move(delim)) {}
  std::string name() const override { return "MetricsSaver"; }
  bool rank0_only() const override { return true; }
  void completed(Engine& e) override {
    if (auto* ev = dynamic_cast<Evaluator*>(&e))
      write_metric_reports(dir_, e, ev->cases, metrics_, details_, delim_);
  }

 private:
  std::string dir_;
  std::vector<std::string> metrics_, details_;
  std::string delim_;
};

double current_lr(const Engine& e) {
  if (const auto* t = dynamic_cast<const Trainer*>(&e)) return t->optimizer->lr(0);
  if (e.parent) return current_lr(*e.parent);
  return std::nan("");
}

ComponentSpec checkpoint_loader_spec() {
  return ComponentSpec{
      "CheckpointLoader",
      "Loads a checkpoint into components before the run.",
      {req("load_path", A::kString, "Checkpoint file (relative to the MMAR root)."),
       req("load_dict", A::kAny, "{\"model\": \"@model\"} or [\"model\"]."),
       opt("name", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("map_location", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("strict", A::kBool, "true",
           "Require the checkpoint's keys to match the network's exactly."),
       opt("strict_shape", A::kBool, "true",
           "Accepted for MONAI compatibility; ignored (shape mismatches are always errors).")}};
}

ComponentSpec checkpoint_saver_spec() {
  return ComponentSpec{
      "CheckpointSaver",
      "Saves checkpoints: best key metric, final, every N epochs.",
      {req("save_dir", A::kString, "Directory of the checkpoints (relative to the MMAR root)."),
       req("save_dict", A::kAny,
           "What to save (an object or a list of names): must include model, may include "
           "optimizer."),
       opt("name", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("file_prefix", A::kString, "\"\"",
           "Prefix of the generated file names (an underscore is appended); the default model.pt "
           "has none."),
       opt("save_final", A::kBool, "false", "Save a final checkpoint when training completes."),
       opt("final_filename", A::kString, "null",
           "File name of the final checkpoint; null: model_final.pt after the prefix."),
       opt("save_key_metric", A::kBool, "false",
           "Save a checkpoint whenever the key metric reaches a new best."),
       opt("key_metric_name", A::kString, "null",
           "Accepted for MONAI compatibility; ignored (the evaluator's key metric is used)."),
       opt("key_metric_n_saved", A::kInt, "1",
           "Best checkpoints to keep: 1 writes model.pt, more write key_metric=VALUE.pt files."),
       opt("key_metric_filename", A::kString, "null",
           "File name of the best checkpoint; null: model.pt or key_metric=VALUE.pt."),
       opt("key_metric_save_state", A::kBool, "false",
           "Accepted for MONAI compatibility; ignored."),
       opt("key_metric_greater_or_equal", A::kBool, "false",
           "Accepted for MONAI compatibility; ignored."),
       opt("key_metric_negative_sign", A::kBool, "false",
           "Accepted for MONAI compatibility; ignored."),
       opt("epoch_level", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("save_interval", A::kInt, "0",
           "Also save checkpoint_epoch=N.pt every N epochs; 0 disables."),
       opt("n_saved", A::kInt, "null", "Interval checkpoints to keep; null keeps all.")}};
}

ComponentSpec stats_handler_spec() {
  return ComponentSpec{
      "StatsHandler",
      "Console progress: loss, metrics, lr, speed.",
      {opt("iteration_log", A::kAny, "true",
           "Log every training iteration (true), none (false) or every N (int); BARTON_LOG_EVERY "
           "overrides."),
       opt("epoch_log", A::kAny, "true", "Log a summary line after each epoch (true or false)."),
       opt("epoch_print_logger", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored."),
       opt("iteration_print_logger", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored."),
       output_transform_spec(),
       opt("global_epoch_transform", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored."),
       opt("state_attributes", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
       opt("name", A::kString, "\"StatsHandler\"", "Accepted for MONAI compatibility; ignored."),
       opt("tag_name", A::kString, "\"Loss\"", "Label of the loss in the log lines."),
       opt("key_var_format", A::kString, "\"{}: {:.4f} \"",
           "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec tensor_board_stats_handler_spec() {
  return ComponentSpec{
      "TensorBoardStatsHandler",
      "Writes TensorBoard event files.",
      {opt("summary_writer", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("log_dir", A::kString, "\"./runs\"",
           "Event-file directory (relative to the MMAR root)."),
       opt("iteration_log", A::kAny, "true",
           "Accepted for MONAI compatibility; ignored (see iteration_interval)."),
       opt("epoch_log", A::kAny, "true",
           "Accepted for MONAI compatibility; ignored (see epoch_interval)."),
       opt("epoch_event_writer", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored."),
       opt("epoch_interval", A::kInt, "1",
           "Write the epoch scalars (metrics, lr, system) every N epochs."),
       opt("iteration_event_writer", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored."),
       opt("iteration_interval", A::kInt, "1", "Write the training loss every N iterations."),
       output_transform_spec(),
       opt("global_epoch_transform", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored."),
       opt("state_attributes", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
       opt("tag_name", A::kString, "\"Loss\"", "Tag of the loss scalar.")}};
}

ComponentSpec tensor_board_image_handler_spec() {
  return ComponentSpec{
      "TensorBoardImageHandler",
      "Writes image slices to TensorBoard.",
      {opt("log_dir", A::kString, "\"./runs\"",
           "Event-file directory (relative to the MMAR root)."),
       opt("interval", A::kInt, "1", "Write an image, label and prediction slice every N epochs."),
       opt("epoch_level", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("batch_transform", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       output_transform_spec(),
       opt("index", A::kInt, "0", "Accepted for MONAI compatibility; ignored."),
       opt("max_channels", A::kInt, "1", "Accepted for MONAI compatibility; ignored."),
       opt("frame_dim", A::kInt, "-3", "Accepted for MONAI compatibility; ignored."),
       opt("max_frames", A::kInt, "64", "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec validation_handler_spec() {
  return ComponentSpec{
      "ValidationHandler",
      "Runs the evaluator every `interval` epochs.",
      {req("interval", A::kInt, "Validate every N training epochs."),
       opt("validator", A::kReference, "\"@evaluator\"", "The evaluator to run."),
       opt("epoch_level", A::kBool, "true", "Must be true: validation runs between epochs only."),
       opt("exec_at_start", A::kBool, "false", "Also validate once before training starts.")}};
}

ComponentSpec lr_schedule_handler_spec() {
  return ComponentSpec{
      "LrScheduleHandler",
      "Steps the LR scheduler per epoch or iteration.",
      {opt("lr_scheduler", A::kReference, "\"@lr_scheduler\"", "The scheduler to step."),
       opt("print_lr", A::kBool, "true", "Log the learning rate after each epoch step."),
       opt("name", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("epoch_level", A::kBool, "true",
           "Step once per epoch (true) or once per iteration (false)."),
       opt("step_transform", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (epoch steps get the key metric, else the "
           "loss).")}};
}

ComponentSpec metrics_saver_spec() {
  return ComponentSpec{
      "MetricsSaver",
      "Writes metrics.csv, <metric>_raw.csv and summaries.",
      {req("save_dir", A::kString, "Output directory (relative to the MMAR root)."),
       opt("metrics", A::kStrings, "\"*\"", "Metrics written to metrics.csv; * for all."),
       opt("metric_details", A::kStrings, "null",
           "Metrics whose per-case values go to NAME_raw.csv and NAME_summary.csv; * for all."),
       opt("batch_transform", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("summary_ops", A::kStrings, "null",
           "Accepted for MONAI compatibility; ignored (every summary statistic is written)."),
       opt("save_rank", A::kInt, "0", "Accepted for MONAI compatibility; ignored (rank 0 writes)."),
       opt("delimiter", A::kString, "\",\"", "Field separator of the CSV files."),
       opt("output_type", A::kString, "\"csv\"",
           "Accepted for MONAI compatibility; ignored (always csv).")}};
}

ComponentSpec early_stop_handler_spec() {
  return ComponentSpec{
      "EarlyStopHandler",
      "Stops when the key metric stops improving.",
      {req("patience", A::kInt,
           "Runs of its engine (usually validations) without improvement before training stops."),
       opt("score_function", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (the key metric is the score; higher is "
           "better)."),
       opt("trainer", A::kReference, "null",
           "Accepted for MONAI compatibility; ignored (the run that owns the evaluator is "
           "stopped)."),
       opt("min_delta", A::kFloat, "0.0",
           "Smallest increase of the key metric that counts as an improvement."),
       opt("cumulative_delta", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("epoch_level", A::kBool, "true", "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec smart_cache_handler_spec() {
  return ComponentSpec{
      "SmartCacheHandler",
      "Drives SmartCacheDataset replacement.",
      {opt("smartcacher", A::kReference, "\"@dataset\"",
           "The SmartCacheDataset (checked only: the dataset replaces its items itself).")}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void save_model_checkpoint(const std::string& path,
                           const nets::Network& network,
                           const std::string& network_config,
                           int64_t epoch,
                           double key_metric,
                           const optim::Optimizer* optimizer) {
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  c10::Dict<std::string, at::Tensor> model;
  for (const auto& [k, v] : nets::state_dict(network))
    model.insert(k, v.detach().cpu().contiguous());
  root.insert("model", model);
  if (optimizer) {
    c10::Dict<std::string, at::Tensor> opt;
    for (const auto& [k, v] : optimizer->state()) opt.insert(k, v.detach().cpu().contiguous());
    root.insert("optimizer", opt);
  }
  if (!network_config.empty()) root.insert("train_conf", network_config);
  root.insert("epoch", epoch);
  if (std::isfinite(key_metric)) root.insert("key_metric", key_metric);
  const auto bytes = torch::jit::pickle_save(root);
  write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

std::string checkpoint_network_config(const std::string& path) {
  const auto root = io::load_torch_file(path);
  const auto* c = root.get("train_conf");
  if (!c || !c->is_string()) return "";
  return std::get<std::string>(c->v);
}

void write_metric_reports(const std::string& dir,
                          const Engine& e,
                          const std::vector<std::string>& cases,
                          const std::vector<std::string>& which,
                          const std::vector<std::string>& details,
                          const std::string& delimiter) {
  const auto wanted = [](const std::vector<std::string>& list, const std::string& label) {
    return std::find(list.begin(), list.end(), "*") != list.end() ||
           std::find(list.begin(), list.end(), label) != list.end();
  };
  const std::string d = delimiter;
  // metrics.csv: one row per case, one column per metric (case value = mean over classes), and
  // the aggregate as the last row.
  std::vector<const NamedMetric*> chosen;
  for (const auto& m : e.metrics)
    if (wanted(which, m.label)) chosen.push_back(&m);
  std::string csv = "case";
  for (const auto* m : chosen) csv += d + m->label;
  csv += "\n";
  std::vector<at::Tensor> per_case;
  for (const auto* m : chosen) {
    auto t = m->metric->details();
    per_case.push_back(t.defined() ? at::nanmean(t, 1) : at::Tensor{});
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    csv += cases[i];
    for (const auto& t : per_case) {
      csv += d + (t.defined() && static_cast<int64_t>(i) < t.size(0)
                      ? fmt::format("{:.6f}", t[static_cast<int64_t>(i)].item<double>())
                      : "");
    }
    csv += "\n";
  }
  csv += "aggregate";
  nlohmann::ordered_json summary;
  for (const auto* m : chosen) {
    const double v =
        e.state.metrics.count(m->label) ? e.state.metrics.at(m->label) : m->metric->compute();
    csv += d + fmt::format("{:.6f}", v);
    summary["metrics"][m->label] = v;
  }
  csv += "\n";
  write_file_atomic(fs::path(dir) / "metrics.csv", csv);
  for (const auto* m : chosen) {
    if (!wanted(details, m->label)) continue;
    const auto t = m->metric->details();
    if (!t.defined()) continue;
    const auto names = m->metric->detail_cases();
    std::string raw = "filename";
    for (int64_t c = 0; c < t.size(1); ++c) raw += d + fmt::format("class{}", c);
    raw += d + "mean\n";
    for (int64_t i = 0; i < t.size(0); ++i) {
      raw += static_cast<std::size_t>(i) < names.size() ? names[static_cast<std::size_t>(i)]
                                                        : fmt::format("case{}", i);
      for (int64_t c = 0; c < t.size(1); ++c)
        raw += d + fmt::format("{:.6f}", t[i][c].item<double>());
      raw += d + fmt::format("{:.6f}", at::nanmean(t[i]).item<double>()) + "\n";
    }
    write_file_atomic(fs::path(dir) / (m->label + "_raw.csv"), raw);
    // Per-class statistics over cases (MONAI's summary_ops).
    std::string sum = "class" + d + "mean" + d + "median" + d + "max" + d + "min" + d +
                      "90percentile" + d + "std" + d + "notnans\n";
    auto stats = [&](const std::string& name, const at::Tensor& col) {
      const auto ok = col.masked_select(~col.isnan());
      if (ok.numel() == 0) {
        sum += name + d + "nan" + d + "nan" + d + "nan" + d + "nan" + d + "nan" + d + "nan" + d +
               "0\n";
        return;
      }
      sum += fmt::format("{}{}{:.6f}{}{:.6f}{}{:.6f}{}{:.6f}{}{:.6f}{}{:.6f}{}{}\n", name, d,
                         ok.mean().item<double>(), d, at::quantile(ok, 0.5).item<double>(), d,
                         ok.max().item<double>(), d, ok.min().item<double>(), d,
                         at::quantile(ok, 0.9).item<double>(), d,
                         ok.numel() > 1 ? ok.std(false).item<double>() : 0.0, d, ok.numel());
    };
    for (int64_t c = 0; c < t.size(1); ++c) stats(fmt::format("class{}", c), t.select(1, c));
    stats("mean", at::nanmean(t, 1));
    write_file_atomic(fs::path(dir) / (m->label + "_summary.csv"), sum);
    summary["per_case"][m->label] = nlohmann::ordered_json::array();
    for (int64_t i = 0; i < t.size(0); ++i) {
      summary["per_case"][m->label].push_back(
          {{"case",
            static_cast<std::size_t>(i) < names.size() ? names[static_cast<std::size_t>(i)] : ""},
           {"value", at::nanmean(t[i]).item<double>()}});
    }
  }
  summary["cases"] = cases.size();
  write_file_atomic(fs::path(dir) / "metrics_summary.json", summary.dump(2) + "\n");
}

namespace {

std::unique_ptr<Handler> make_checkpoint_loader(const ConfigNode& a, const BuildContext& ctx) {
  std::vector<std::string> what;
  const auto ld = a.at("load_dict");
  if (ld.is_object())
    what = ld.keys();
  else if (ld.is_array())
    what = ld.as<std::vector<std::string>>();
  else
    throw ld.error("load_dict must be an object {\"model\": \"@model\"} or a list of names");
  for (const auto& w : what) {
    if (w != "model" && w != "optimizer" && w != "lr_scheduler" && w != "train_conf")
      throw ld.error(fmt::format("cannot load '{}': Barton loads model, optimizer", w));
  }
  auto net = lookup_as<std::shared_ptr<nets::Network>>(ctx, "model", a);
  optim::Optimizer* opt = nullptr;
  if (std::find(what.begin(), what.end(), "optimizer") != what.end())
    opt = lookup_as<optim::Optimizer*>(ctx, "optimizer", a);
  return std::make_unique<CheckpointLoader>(path_in(ctx, a.require<std::string>("load_path")), what,
                                            a.require<bool>("strict"), net, opt, a);
}

std::unique_ptr<Handler> make_checkpoint_saver(const ConfigNode& a, const BuildContext& ctx) {
  SaverOptions o;
  o.dir = path_in(ctx, a.require<std::string>("save_dir"));
  o.prefix = a.require<std::string>("file_prefix");
  if (!o.prefix.empty() && o.prefix.back() != '_') o.prefix += "_";
  o.save_final = a.require<bool>("save_final");
  o.final_filename = a.get_optional<std::string>("final_filename").value_or("");
  o.save_key = a.require<bool>("save_key_metric");
  o.key_filename = a.get_optional<std::string>("key_metric_filename").value_or("");
  o.key_n_saved = a.require<int64_t>("key_metric_n_saved");
  o.interval = a.require<int64_t>("save_interval");
  o.n_saved = a.get_optional<int64_t>("n_saved").value_or(0);  // null: keep all
  const auto sd = a.at("save_dict");
  std::vector<std::string> what = sd.is_object() ? sd.keys() : sd.as<std::vector<std::string>>();
  if (std::find(what.begin(), what.end(), "model") == what.end())
    throw sd.error("save_dict must include \"model\"");
  o.save_optimizer = std::find(what.begin(), what.end(), "optimizer") != what.end();
  auto net = lookup_as<std::shared_ptr<nets::Network>>(ctx, "model", a);
  std::string conf;
  if (auto c = ctx.lookup ? ctx.lookup("conf") : std::any{}; c.has_value())
    conf = std::any_cast<std::string>(c);
  optim::Optimizer* opt = nullptr;
  if (o.save_optimizer) opt = lookup_as<optim::Optimizer*>(ctx, "optimizer", a);
  return std::make_unique<CheckpointSaver>(o, net, conf, opt);
}

}  // namespace

void register_handlers(HandlerRegistry& r) {
  r.add(checkpoint_loader_spec(), make_checkpoint_loader);
  r.add(checkpoint_saver_spec(), make_checkpoint_saver);
  r.add(stats_handler_spec(),
        [](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Handler> {
          int64_t every = 1;
          if (a.given("iteration_log")) {
            const auto n = a.at("iteration_log");
            if (n.is_bool())
              every = n.as<bool>() ? 1 : 0;
            else if (n.is_integer())
              every = n.as<int64_t>();
          }
          if (const char* env = std::getenv("BARTON_LOG_EVERY"))
            every = std::max(1L, std::atol(env));
          bool epoch_log = true;
          if (a.given("epoch_log") && a.at("epoch_log").is_bool())
            epoch_log = a.at("epoch_log").as<bool>();
          return std::make_unique<StatsHandler>(every, epoch_log,
                                                a.require<std::string>("tag_name"));
        });
  r.add(tensor_board_stats_handler_spec(),
        [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Handler> {
          return std::make_unique<TensorBoardStatsHandler>(
              path_in(ctx, a.require<std::string>("log_dir")), a.require<std::string>("tag_name"),
              a.require<int64_t>("iteration_interval"), a.require<int64_t>("epoch_interval"), true);
        });
  r.add(tensor_board_image_handler_spec(),
        [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Handler> {
          return std::make_unique<TensorBoardImageHandler>(
              path_in(ctx, a.require<std::string>("log_dir")), a.require<int64_t>("interval"));
        });
  r.add(validation_handler_spec(),
        [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Handler> {
          const std::string name = strip_ref(a.require<std::string>("validator"));
          auto v = lookup_as<std::shared_ptr<Evaluator>>(ctx, name, a);
          if (!a.require<bool>("epoch_level"))
            throw ConfigError(a.source(), a.pointer() + "/epoch_level",
                              "iteration-level validation is not supported; use epoch_level: true");
          return std::make_unique<ValidationHandler>(v, a.require<int64_t>("interval"),
                                                     a.require<bool>("exec_at_start"));
        });
  r.add(lr_schedule_handler_spec(),
        [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Handler> {
          const std::string name = strip_ref(a.require<std::string>("lr_scheduler"));
          return std::make_unique<LrScheduleHandler>(lookup_as<optim::LrScheduler*>(ctx, name, a),
                                                     a.require<bool>("epoch_level"),
                                                     a.require<bool>("print_lr"));
        });
  r.add(early_stop_handler_spec(),
        [](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Handler> {
          return std::make_unique<EarlyStopHandler>(a.require<int64_t>("patience"),
                                                    a.require<double>("min_delta"), nullptr);
        });
  r.add(smart_cache_handler_spec(),
        [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Handler> {
          const std::string name = strip_ref(a.require<std::string>("smartcacher"));
          auto ds = lookup_as<std::shared_ptr<data::Dataset>>(ctx, name, a);
          if (!dynamic_cast<data::SmartCacheDataset*>(ds.get()))
            throw ConfigError(a.source(), a.pointer() + "/smartcacher",
                              "'@" + name + "' is not a SmartCacheDataset");
          return std::make_unique<SmartCacheHandler>();
        });
  r.add(metrics_saver_spec(),
        [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Handler> {
          auto list = [&](std::string_view key, std::vector<std::string> fallback) {
            if (a.at(key).is_null()) return fallback;
            const auto n = a.at(key);
            return n.is_array() ? n.as<std::vector<std::string>>()
                                : std::vector<std::string>{n.as<std::string>()};
          };
          return std::make_unique<MetricsSaver>(path_in(ctx, a.require<std::string>("save_dir")),
                                                list("metrics", {"*"}), list("metric_details", {}),
                                                a.require<std::string>("delimiter"));
        });
}

}  // namespace barton::engine
