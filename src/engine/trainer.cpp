#include "engine/trainer.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/logging.h"
#include "engine/autocast.h"
#include "engine/decollate.h"
#include "engine/distributed.h"
#include "io/torch_file.h"

namespace barton::engine {

void Trainer::train_iteration(data::Batch& batch) {
  if (interaction) {
    auto fwd = [this](const torch::Tensor& x) { return network->forward(x); };
    interaction->run(
        batch, inferer.get(), fwd, [this](bool t) { network->train(t); }, true, device,
        transforms::mix_seed(options.seed, static_cast<uint64_t>(state.iteration)));
  }
  check_pair(batch);
  const auto image = batch.tensors.at("image").to(device);
  const auto label = batch.tensors.at("label").to(device);
  at::Tensor pred;
  at::Tensor l;
  {
    AutocastGuard ac(amp, cpu_bf16, device);
    auto fwd = [this](const torch::Tensor& x) { return network->forward(x); };
    pred = inferer ? inferer->infer(image, fwd) : fwd(image);
  }
  l = loss->forward(pred.to(torch::kFloat), label);
  const double value = l.item<double>();
  state.loss = value;
  if (!std::isfinite(value)) {
    throw Error(fmt::format(
        "the loss is {} at epoch {}, iteration {} (case {}): training stopped before the "
        "optimizer step; checkpoints already written are kept. Lower the learning rate, "
        "check the intensity scaling, or check the labels",
        std::isnan(value) ? "NaN" : (value > 0 ? "+inf" : "-inf"), state.epoch,
        state.epoch_iteration + 1, batch.items.empty() ? "?" : batch.items.front().origin()));
  }
  // Gradients of the accumulated iterations are summed and divided by their count at the step, so a
  // short last group (end of epoch) is an average too.
  const bool last = state.epoch_iteration + 1 >= state.epoch_length;
  const bool stepping = pending_ + 1 >= options.grad_accumulation || last;
  // Data-parallel: the gradients of a stepping backward are averaged over ranks while backward
  // runs (GradReducer), already divided by the accumulated iteration count.
  // Overlap by default with NCCL (the GPU computes while the network moves gradients); on CPU
  // (Gloo) the communication threads compete with backward for the same cores and overlap was
  // slower on a 2-core VM (docs/performance.md). BARTON_DDP_OVERLAP=1 / 0 overrides.
  const bool overlap = [this] {
    const char* v = std::getenv("BARTON_DDP_OVERLAP");
    if (v && *v) return std::string(v) != "0";
    return dist && dist->backend() == "nccl";
  }();
  if (dist && stepping && overlap) {
    if (!reducer_) reducer_ = std::make_shared<GradReducer>(*dist, params_);
    reducer_->arm(static_cast<double>(pending_ + 1));
  }
  (scaling() ? l * scale_ : l).backward();
  ++pending_;
  if (stepping) {
    if (dist && overlap) {
      comm_seconds += reducer_->finish();
      ++comm_steps;
    } else if (pending_ > 1) {
      torch::NoGradGuard no_grad;
      for (auto& p : params_) {
        if (p.grad().defined()) p.mutable_grad().div_(static_cast<double>(pending_));
      }
    }
    if (dist && !overlap) {
      std::vector<at::Tensor> grads;
      for (auto& p : params_) {
        if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
        grads.push_back(p.grad());
      }
      const auto t0 = std::chrono::steady_clock::now();
      dist->allreduce_mean(grads);
      comm_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++comm_steps;
    }
    const bool ok = !scaling() || unscale_and_check();
    if (ok) {
      if (options.grad_clip_norm > 0)
        torch::nn::utils::clip_grad_norm_(params_, options.grad_clip_norm);
      optimizer->step();
    }
    optimizer->zero_grad();
    pending_ = 0;
  }
  if (!metrics.empty()) {
    torch::NoGradGuard no_grad;
    transforms::Rng rng(0);
    auto samples = decollate(batch, pred.detach().to(torch::kCPU, torch::kFloat), post.get(), rng);
    update_metrics(metrics, samples);
  }
  state.batch_size = static_cast<int64_t>(batch.size());
}

bool Trainer::unscale_and_check() {
  torch::NoGradGuard no_grad;
  bool finite = true;
  for (auto& p : params_) {
    auto g = p.mutable_grad();
    if (!g.defined()) continue;
    g.div_(scale_);
    if (finite && !g.isfinite().all().item<bool>()) finite = false;
  }
  if (!finite) {
    scale_ /= 2.0;
    clean_steps_ = 0;
    log::debug(fmt::format("amp: inf/NaN gradients, step skipped, loss scale now {}", scale_));
    return false;
  }
  if (++clean_steps_ >= 2000) {
    scale_ *= 2.0;
    clean_steps_ = 0;
  }
  return true;
}

void Trainer::run() {
  state.max_epochs = options.max_epochs;
  state.run_start = std::chrono::steady_clock::now();
  params_ = nets::unique_parameters(*network);
  state.terminate = false;
  SystemMonitor monitor(device.is_cuda() ? (device.has_index() ? device.index() : 0) : -1);
  fire_started();
  if (dist) {
    // Every rank starts from rank 0's weights (also after a CheckpointLoader or --resume there).
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> all;
    for (const auto& [k, v] : nets::state_dict(*network)) all.push_back(v);
    dist->broadcast(all);
  }
  while (state.epoch < state.max_epochs && !state.terminate) {
    ++state.epoch;
    if (options.deterministic)
      torch::manual_seed(transforms::mix_seed(options.seed, static_cast<uint64_t>(state.epoch)));
    loader->start_epoch(static_cast<uint64_t>(state.epoch));
    state.epoch_length =
        options.epoch_length > 0
            ? std::min<int64_t>(options.epoch_length, static_cast<int64_t>(loader->num_batches()))
            : static_cast<int64_t>(loader->num_batches());
    if (state.epoch_length == 0)
      throw Error("the training data loader is empty: the datalist section has no cases");
    state.epoch_iteration = 0;
    state.epoch_start = std::chrono::steady_clock::now();
    for (auto& m : metrics) m.metric->reset();
    network->train();
    optimizer->zero_grad();
    pending_ = 0;
    fire_epoch_started();
    while (state.epoch_iteration < state.epoch_length) {
      auto batch = loader->next();
      if (!batch) break;
      train_iteration(*batch);
      ++state.epoch_iteration;
      ++state.iteration;
      fire_iteration_completed();
      if (state.terminate) break;
    }
    compute_metrics(state.epoch);
    state.epoch_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - state.epoch_start).count();
    state.epoch_times.push_back(state.epoch_seconds);
    state.system = monitor.sample();
    fire_epoch_completed();
    if (dist) state.terminate = dist->allreduce_sum(state.terminate ? 1.0 : 0.0) > 0;
    if (!options.resume_path.empty()) save_state(options.resume_path);
  }
  fire_completed();
}

void Trainer::save_state(const std::string& path) const {
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  c10::Dict<std::string, at::Tensor> model;
  for (const auto& [k, v] : nets::state_dict(*network))
    model.insert(k, v.detach().cpu().contiguous());
  root.insert("model", model);
  c10::Dict<std::string, at::Tensor> opt;
  for (const auto& [k, v] : optimizer->state()) opt.insert(k, v.detach().cpu().contiguous());
  root.insert("optimizer", opt);
  root.insert("optimizer_name", optimizer->name());
  if (scheduler) root.insert("lr_scheduler_step", scheduler->last_step());
  root.insert("epoch", state.epoch);
  root.insert("iteration", state.iteration);
  root.insert("best_metric", state.best_metric);
  root.insert("best_metric_epoch", state.best_metric_epoch);
  root.insert("key_metric_name", state.key_metric_name);
  c10::List<double> times;
  for (double t : state.epoch_times) times.push_back(t);
  root.insert("epoch_times", times);
  root.insert("train_conf", network_config);
  const auto bytes = torch::jit::pickle_save(root);
  write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

namespace {
const io::PyValue& need(const io::PyValue& root, const std::string& key, const std::string& path) {
  const auto* v = root.get(key);
  if (!v)
    throw IoError(path, "is not a Barton training-state checkpoint: it has no '" + key + "' entry");
  return *v;
}
int64_t as_int(const io::PyValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v.v)) return *i;
  if (const auto* d = std::get_if<double>(&v.v)) return static_cast<int64_t>(*d);
  return 0;
}
double as_double(const io::PyValue& v) {
  if (const auto* d = std::get_if<double>(&v.v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v.v)) return static_cast<double>(*i);
  return std::nan("");
}
}  // namespace

void Trainer::load_state(const std::string& path) {
  const auto root = io::load_torch_file(path);
  if (!root.is_dict()) throw IoError(path, "is not a checkpoint dictionary");
  nets::load_state_dict(*network, io::load_state_dict_file(path, "model"), true);
  const auto s = io::tensor_items(need(root, "optimizer", path));
  if (const auto* n = root.get("optimizer_name");
      n && n->is_string() && std::get<std::string>(n->v) != optimizer->name()) {
    throw IoError(path, fmt::format("holds {} state but the config's optimizer is {}",
                                    std::get<std::string>(n->v), optimizer->name()));
  }
  optimizer->load_state(s);
  if (scheduler) {
    if (const auto* t = root.get("lr_scheduler_step")) scheduler->set_step(as_int(*t));
  }
  state.epoch = as_int(need(root, "epoch", path));
  state.iteration = as_int(need(root, "iteration", path));
  state.best_metric = as_double(need(root, "best_metric", path));
  state.best_metric_epoch = as_int(need(root, "best_metric_epoch", path));
  if (const auto* k = root.get("key_metric_name"); k && k->is_string())
    state.key_metric_name = std::get<std::string>(k->v);
  state.epoch_times.clear();
  if (const auto* t = root.get("epoch_times")) {
    if (const auto* l = std::get_if<std::shared_ptr<io::PyList>>(&t->v)) {
      for (const auto& x : **l) state.epoch_times.push_back(as_double(x));
    }
  }
}

}  // namespace barton::engine
