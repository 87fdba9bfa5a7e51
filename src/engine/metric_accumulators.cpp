// Metric accumulators (MONAI's metric handlers: MeanDice, Accuracy, HausdorffDistance, ...): the
// per-case values are computed by metrics/ and reduced here over the cases of an evaluation.
#include <cmath>
#include <optional>

#include <ATen/ATen.h>
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

using A = ArgType;

class RowMetric : public Metric {
 public:
  explicit RowMetric(std::string reduction) : reduction_(std::move(reduction)) {}
  void reset() override {
    rows_.clear();
    cases_.clear();
  }
  void update(const at::Tensor& pred,
              const at::Tensor& label,
              const std::vector<double>& spacing,
              const std::vector<std::string>& cases) override {
    rows_.push_back(rows(pred, label, spacing).to(at::kDouble).cpu());
    cases_.insert(cases_.end(), cases.begin(), cases.end());
  }
  double compute() const override {
    if (rows_.empty()) return std::nan("");
    return metrics::reduce(at::cat(rows_), reduction_ == "none" ? "mean" : reduction_)
        .item<double>();
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
  virtual at::Tensor rows(const at::Tensor& pred,
                          const at::Tensor& label,
                          const std::vector<double>& spacing) const = 0;
  std::string reduction_;
  std::vector<at::Tensor> rows_;
  std::vector<std::string> cases_;
};

class FnMetric final : public RowMetric {
 public:
  using Fn =
      std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const std::vector<double>&)>;
  FnMetric(std::string name, std::string reduction, Fn fn)
      : RowMetric(std::move(reduction)), name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }

 protected:
  at::Tensor rows(const at::Tensor& p,
                  const at::Tensor& l,
                  const std::vector<double>& s) const override {
    return fn_(p, l, s);
  }

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
  void update(const at::Tensor& pred,
              const at::Tensor& label,
              const std::vector<double>&,
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

ArgSpec save_details_spec() {
  return opt("save_details", A::kBool, "true",
             "Accepted for MONAI compatibility; ignored (per-case values are always kept).");
}

ArgSpec reduction_spec() {
  return opt(
      "reduction", A::kString, "\"mean\"",
      "Reduction of per-case, per-class values: mean or sum (none gives the mean); NaNs skipped.");
}

ComponentSpec mean_dice_spec() {
  return ComponentSpec{
      "MeanDice",
      "Mean Dice over classes and cases (handler form of DiceMetric).",
      {opt("include_background", A::kBool, "true", "Include channel 0 (background) in the score."),
       reduction_spec(), output_transform_spec(), save_details_spec(),
       opt("num_classes", A::kInt, "null", "Accepted for MONAI compatibility; ignored."),
       opt("ignore_empty", A::kBool, "true",
           "Cases with an empty ground truth give NaN (skipped) instead of 1 or 0.")}};
}

ComponentSpec dice_metric_spec() {
  return ComponentSpec{
      "DiceMetric",
      "Dice per case and class.",
      {opt("include_background", A::kBool, "true", "Include channel 0 (background) in the score."),
       reduction_spec(),
       opt("get_not_nans", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("ignore_empty", A::kBool, "true",
           "Cases with an empty ground truth give NaN (skipped) instead of 1 or 0."),
       opt("num_classes", A::kInt, "null", "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec accuracy_spec() {
  return ComponentSpec{
      "Accuracy",
      "Voxel accuracy (ignite Accuracy as Clara configs use it).",
      {output_transform_spec(),
       opt("is_multilabel", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec hausdorff_distance_spec() {
  return ComponentSpec{
      "HausdorffDistance",
      "Hausdorff distance in mm (percentile 95 for HD95).",
      {opt("include_background", A::kBool, "false", "Include channel 0 (background) in the score."),
       opt("distance_metric", A::kString, "\"euclidean\"",
           "Accepted for MONAI compatibility; ignored (distances are Euclidean, in mm)."),
       opt("percentile", A::kFloat, "null",
           "Percentile of the surface distances instead of their maximum (95 for HD95)."),
       opt("directed", A::kBool, "false",
           "Only prediction-to-label distances instead of the larger of both directions."),
       reduction_spec(), output_transform_spec(), save_details_spec()}};
}

ComponentSpec surface_distance_spec() {
  return ComponentSpec{
      "SurfaceDistance",
      "Mean surface distance in mm.",
      {opt("include_background", A::kBool, "false", "Include channel 0 (background) in the score."),
       opt("symmetric", A::kBool, "false",
           "Average the distances in both directions instead of prediction to label only."),
       opt("distance_metric", A::kString, "\"euclidean\"",
           "Accepted for MONAI compatibility; ignored (distances are Euclidean, in mm)."),
       reduction_spec(), output_transform_spec(), save_details_spec()}};
}

ComponentSpec surface_dice_spec() {
  return ComponentSpec{
      "SurfaceDice",
      "Normalised surface Dice at a tolerance in mm.",
      {req("class_thresholds", A::kFloats, "Tolerance in mm for each scored class."),
       opt("include_background", A::kBool, "false", "Include channel 0 (background) in the score."),
       opt("distance_metric", A::kString, "\"euclidean\"",
           "Accepted for MONAI compatibility; ignored (distances are Euclidean, in mm)."),
       reduction_spec(), output_transform_spec(), save_details_spec()}};
}

ComponentSpec confusion_matrix_spec() {
  return ComponentSpec{
      "ConfusionMatrix",
      "Sensitivity, specificity, precision, F1 and friends.",
      {opt("include_background", A::kBool, "true", "Include channel 0 (background) in the counts."),
       opt("metric_name", A::kStrings, "\"hit_rate\"",
           "Measure to report (sensitivity, precision, f1_score, ...); only a list's first is "
           "used."),
       opt("compute_sample", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       reduction_spec(), output_transform_spec(), save_details_spec()}};
}

}  // namespace

ArgSpec output_transform_spec() {
  return opt(
      "output_transform", ArgType::kCallable, "null",
      "Selects what the metric/handler reads from the engine output (Clara idiom or lambda).");
}

void register_metrics(MetricRegistry& r) {
  auto red = [](const ConfigNode& a) { return a.require<std::string>("reduction"); };
  auto dice = [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
    const bool bg = a.require<bool>("include_background"), ie = a.require<bool>("ignore_empty");
    return std::make_unique<FnMetric>(
        "MeanDice", red(a),
        [bg, ie](const at::Tensor& p, const at::Tensor& l, const std::vector<double>&) {
          return metrics::dice(p, l, bg, ie);
        });
  };
  r.add(mean_dice_spec(), dice);
  r.add(dice_metric_spec(), dice);
  r.add(accuracy_spec(), [](const ConfigNode&, const BuildContext&) -> std::unique_ptr<Metric> {
    return std::make_unique<AccuracyMetric>();
  });
  r.add(hausdorff_distance_spec(),
        [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
          const bool bg = a.require<bool>("include_background"),
                     directed = a.require<bool>("directed");
          std::optional<double> pct;
          if (a.given("percentile") && !a.at("percentile").is_null())
            pct = a.at("percentile").as<double>();
          return std::make_unique<FnMetric>(
              "HausdorffDistance", red(a),
              [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>& s) {
                return metrics::hausdorff(p, l, bg, pct, directed, s);
              });
        });
  r.add(surface_distance_spec(),
        [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
          const bool bg = a.require<bool>("include_background"), sym = a.require<bool>("symmetric");
          return std::make_unique<FnMetric>(
              "SurfaceDistance", red(a),
              [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>& s) {
                return metrics::surface_distance(p, l, bg, sym, s);
              });
        });
  r.add(surface_dice_spec(),
        [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
          const bool bg = a.require<bool>("include_background");
          const auto n = a.at("class_thresholds");
          const auto th =
              n.is_array() ? n.as<std::vector<double>>() : std::vector<double>{n.as<double>()};
          return std::make_unique<FnMetric>(
              "SurfaceDice", red(a),
              [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>& s) {
                return metrics::surface_dice(p, l, th, bg, s);
              });
        });
  r.add(confusion_matrix_spec(),
        [red](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Metric> {
          const bool bg = a.require<bool>("include_background");
          const auto n = a.at_or_empty("metric_name");
          const std::string name =
              n.is_null() || !n.is_string()
                  ? (n.is_array() ? n.at(std::size_t{0}).as<std::string>() : "hit_rate")
                  : n.as<std::string>();
          return std::make_unique<FnMetric>(
              "ConfusionMatrix", red(a),
              [=](const at::Tensor& p, const at::Tensor& l, const std::vector<double>&) {
                return metrics::confusion_metric(metrics::confusion_counts(p, l, bg), name);
              });
        });
}

}  // namespace barton::engine
