// Metric accumulators (MONAI's metric handlers: MeanDice, Accuracy, HausdorffDistance, ...): the
// per-case values are computed by metrics/ and reduced here over the cases of an evaluation.
#include <ATen/ATen.h>

#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "core/build_args.h"
#include "core/errors.h"
#include "engine/distributed.h"
#include "engine/metric.h"
#include "metrics/metrics.h"

namespace barton::engine {

void Metric::merge(Distributed&) {
  throw NotSupported("the metric " + name() + " cannot be computed over several ranks yet");
}


namespace {

class RowMetric : public Metric {
 public:
  explicit RowMetric(std::string reduction) : reduction_(std::move(reduction)) {}
  void reset() override {
    rows_.clear();
    cases_.clear();
  }
  void update(const at::Tensor& pred, const at::Tensor& label, const std::vector<double>& spacing,
              const std::vector<std::string>& cases) override {
    rows_.push_back(rows(pred, label, spacing).to(at::kDouble).cpu());
    cases_.insert(cases_.end(), cases.begin(), cases.end());
  }
  double compute() const override {
    if (rows_.empty()) return std::nan("");
    return metrics::reduce(at::cat(rows_), reduction_ == "none" ? "mean" : reduction_).item<double>();
  }
  at::Tensor details() const override { return rows_.empty() ? at::Tensor{} : at::cat(rows_); }
  std::vector<std::string> detail_cases() const override { return cases_; }
  void merge(Distributed& dist) override {
    const auto all = dist.allgather_rows(details());
    rows_.clear();
    if (all.size(0) > 0) rows_.push_back(all.to(at::kDouble));
    cases_ = dist.allgather_strings(cases_);
  }

 protected:
  virtual at::Tensor rows(const at::Tensor& pred, const at::Tensor& label, const std::vector<double>& spacing) const = 0;
  std::string reduction_;
  std::vector<at::Tensor> rows_;
  std::vector<std::string> cases_;
};

class FnMetric final : public RowMetric {
 public:
  using Fn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const std::vector<double>&)>;
  FnMetric(std::string name, std::string reduction, Fn fn) : RowMetric(std::move(reduction)), name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }

 protected:
  at::Tensor rows(const at::Tensor& p, const at::Tensor& l, const std::vector<double>& s) const override { return fn_(p, l, s); }

 private:
  std::string name_;
  Fn fn_;
};

/// ignite's Accuracy over the whole run: correct voxels / all voxels (per-case values for reports).
class AccuracyMetric final : public Metric {
 public:
  std::string name() const override { return "Accuracy"; }
  void reset() override {
    correct_ = total_ = 0;
    per_case_.clear();
    cases_.clear();
  }
  void update(const at::Tensor& pred, const at::Tensor& label, const std::vector<double>&,
              const std::vector<std::string>& cases) override {
    const auto acc = metrics::accuracy(pred, label);  // [B]
    const double n = static_cast<double>(pred[0][0].numel());
    for (int64_t b = 0; b < acc.size(0); ++b) {
      const double a = acc[b].item<double>();
      correct_ += a * n;
      total_ += n;
      per_case_.push_back(a);
    }
    cases_.insert(cases_.end(), cases.begin(), cases.end());
  }
  double compute() const override { return total_ > 0 ? correct_ / total_ : std::nan(""); }
  at::Tensor details() const override {
    if (per_case_.empty()) return {};
    return at::tensor(per_case_, at::kDouble).unsqueeze(1);
  }
  std::vector<std::string> detail_cases() const override { return cases_; }
  void merge(Distributed& dist) override {
    correct_ = dist.allreduce_sum(correct_);
    total_ = dist.allreduce_sum(total_);
    const auto all = dist.allgather_rows(details());
    per_case_.clear();
    for (int64_t i = 0; i < all.size(0); ++i) per_case_.push_back(all[i][0].item<double>());
    cases_ = dist.allgather_strings(cases_);
  }

 private:
  double correct_ = 0, total_ = 0;
  std::vector<double> per_case_;
  std::vector<std::string> cases_;
};

}  // namespace

void register_metrics(MetricRegistry& r) {
  auto red = [](const ConfigNode& a) { return arg_or<std::string>(a, "reduction", "mean"); };
  auto dice = [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
    const bool bg = arg_or<bool>(a, "include_background", true), ie = arg_or<bool>(a, "ignore_empty", true);
    return std::make_unique<FnMetric>("MeanDice", red(a), [bg, ie](const at::Tensor& p, const at::Tensor& l, const std::vector<double>&) {
      return metrics::dice(p, l, bg, ie);
    });
  };
  r.implement("MeanDice", dice);
  r.implement("DiceMetric", dice);
  r.implement("Accuracy", [](const ConfigNode&, const BuildContext&) -> std::unique_ptr<Metric> {
    return std::make_unique<AccuracyMetric>();
  });
  r.implement("HausdorffDistance", [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
    const bool bg = arg_or<bool>(a, "include_background", false), directed = arg_or<bool>(a, "directed", false);
    std::optional<double> pct;
    if (a.has("percentile") && !a.at("percentile").is_null()) pct = a.at("percentile").as<double>();
    return std::make_unique<FnMetric>("HausdorffDistance", red(a), [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>& s) {
      return metrics::hausdorff(p, l, bg, pct, directed, s);
    });
  });
  r.implement("SurfaceDistance", [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
    const bool bg = arg_or<bool>(a, "include_background", false), sym = arg_or<bool>(a, "symmetric", false);
    return std::make_unique<FnMetric>("SurfaceDistance", red(a), [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>& s) {
      return metrics::surface_distance(p, l, bg, sym, s);
    });
  });
  r.implement("SurfaceDice", [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
    const bool bg = arg_or<bool>(a, "include_background", false);
    const auto n = a.at("class_thresholds");
    const auto th = n.is_array() ? n.as<std::vector<double>>() : std::vector<double>{n.as<double>()};
    return std::make_unique<FnMetric>("SurfaceDice", red(a), [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>& s) {
      return metrics::surface_dice(p, l, th, bg, s);
    });
  });
  r.implement("ConfusionMatrix", [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
    const bool bg = arg_or<bool>(a, "include_background", true);
    const auto n = a.at_or_empty("metric_name");
    const std::string name = n.is_null() || !n.is_string() ? (n.is_array() ? n.at(std::size_t{0}).as<std::string>() : "hit_rate") : n.as<std::string>();
    return std::make_unique<FnMetric>("ConfusionMatrix", red(a), [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>&) {
      return metrics::confusion_metric(metrics::confusion_counts(p, l, bg), name);
    });
  });
}

}  // namespace barton::engine
