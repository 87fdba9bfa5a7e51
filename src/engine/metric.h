#pragma once
/// The metric interface: per-case accumulation (MONAI's IgniteMetric / CumulativeIterationMetric).

#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "core/registry.h"

namespace barton::engine {

class Distributed;

/// Per-case metric accumulation (MONAI's IgniteMetric / CumulativeIterationMetric).
class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;
  virtual void reset() = 0;
  /// pred, label: [B, C, *spatial] binarised (one-hot) on the same grid; spacing in mm per spatial
  /// axis; cases: one name per batch item.
  virtual void update(const at::Tensor& pred,
                      const at::Tensor& label,
                      const std::vector<double>& spacing,
                      const std::vector<std::string>& cases) = 0;
  virtual double compute() const = 0;
  /// Per-case, per-class values [N, C] for reports, or an undefined tensor.
  virtual at::Tensor details() const { return {}; }
  virtual std::vector<std::string> detail_cases() const { return {}; }
  /// Data-parallel evaluation: replaces what this rank accumulated by the union over all ranks, so
  /// that every rank computes the metric over every case exactly once. Every rank must call it.
  virtual void merge(Distributed& dist);
};

/// A metric as a loop logs it.
struct NamedMetric {
  std::string label;  ///< log_label ("val_mean_dice"), or the component name.
  std::shared_ptr<Metric> metric;
};

using MetricRegistry = Registry<Metric>;
/// The built-in metrics (metric_accumulators.cpp).
void register_metrics(MetricRegistry& r);

/// The spec of `output_transform`, which metrics and handlers share.
ArgSpec output_transform_spec();

}  // namespace barton::engine
