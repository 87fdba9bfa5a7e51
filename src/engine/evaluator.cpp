#include "engine/evaluator.h"

#include <cmath>

#include <torch/torch.h>

#include "engine/autocast.h"
#include "engine/decollate.h"
#include "engine/distributed.h"

namespace barton::engine {

double Evaluator::run() {
  state.epoch = global_epoch();
  state.max_epochs = parent ? parent->state.max_epochs : 1;
  state.epoch_iteration = 0;
  state.terminate = false;
  for (auto& m : metrics) m.metric->reset();
  loader->start_epoch(0);
  state.epoch_length =
      epoch_length > 0
          ? std::min<int64_t>(epoch_length, static_cast<int64_t>(loader->num_batches()))
          : static_cast<int64_t>(loader->num_batches());
  state.run_start = state.epoch_start = std::chrono::steady_clock::now();
  fire_started();
  fire_epoch_started();
  if (set_mode) set_mode(false);
  torch::NoGradGuard no_grad;
  transforms::Rng rng(0);
  cases.clear();
  while (state.epoch_iteration < state.epoch_length) {
    auto batch = loader->next();
    if (!batch) break;
    if (interaction) {
      interaction->run(*batch, inferer.get(), predictor, set_mode, false, device,
                       transforms::mix_seed(7, static_cast<uint64_t>(state.epoch_iteration)));
    }
    const auto image = batch->tensors.at("image").to(device);
    at::Tensor pred;
    {
      AutocastGuard ac(amp, cpu_bf16, device);
      pred = inferer->infer(image, predictor);
    }
    pred = pred.to(torch::kCPU, torch::kFloat);
    auto samples = decollate(*batch, pred, post.get(), rng);
    update_metrics(metrics, samples);
    for (const auto& s : samples) cases.push_back(case_name(s));
    ++state.epoch_iteration;
    ++state.iteration;
    state.batch_size = static_cast<int64_t>(batch->size());
    if (state.epoch_iteration == 1) {
      last_output.clear();
      last_output["image"] = image.cpu();
      if (batch->tensors.count("label")) last_output["label"] = batch->tensors.at("label");
      last_output["pred"] = pred;
    }
    fire_iteration_completed();
  }
  if (dist) {
    for (auto& m : metrics) m.metric->merge(*dist);
    cases = dist->allgather_strings(cases);
  }
  compute_metrics(global_epoch());
  state.epoch_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - state.epoch_start).count();
  fire_epoch_completed();
  fire_completed();
  return has_key_metric && !metrics.empty() ? state.metrics[metrics.front().label] : std::nan("");
}

}  // namespace barton::engine
