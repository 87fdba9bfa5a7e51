#include "engine/engine.h"

#include <algorithm>
#include <cmath>

namespace barton::engine {

void Engine::set_handlers(std::vector<std::shared_ptr<Handler>> h) {
  std::stable_partition(h.begin(), h.end(), [](const auto& x) { return x->early(); });
  handlers = std::move(h);
}

void Engine::fire_started() {
  for (auto& h : handlers) h->started(*this);
}
void Engine::fire_epoch_started() {
  for (auto& h : handlers) h->epoch_started(*this);
}
void Engine::fire_iteration_completed() {
  for (auto& h : handlers) h->iteration_completed(*this);
}
void Engine::fire_epoch_completed() {
  for (auto& h : handlers) h->epoch_completed(*this);
}
void Engine::fire_completed() {
  for (auto& h : handlers) h->completed(*this);
}

void Engine::compute_metrics(int64_t epoch_for_best) {
  state.metrics.clear();
  for (const auto& m : metrics) state.metrics[m.label] = m.metric->compute();
  if (has_key_metric && !metrics.empty()) {
    state.key_metric_name = metrics.front().label;
    const double v = state.metrics[state.key_metric_name];
    if (std::isfinite(v) && v > state.best_metric) {
      state.best_metric = v;
      state.best_metric_epoch = epoch_for_best;
    }
  }
}

}  // namespace barton::engine
