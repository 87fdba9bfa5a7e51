// Post-processing dictionary transforms (MONAI names and arguments, Clara 4.x deprecated forms).
#include <ATen/ATen.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/post/functional.h"
#include "transforms/register.h"

namespace barton::transforms {

namespace {

class Activations final : public MapTransform {
 public:
  Activations(KeySelection k, std::vector<bool> sigmoid, std::vector<bool> softmax)
      : MapTransform(std::move(k)), sigmoid_(std::move(sigmoid)), softmax_(std::move(softmax)) {}
  std::string name() const override { return "Activationsd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      auto& img = s.image(key);
      const auto in = img.data.scalar_type();
      auto x = img.data.to(at::kFloat);
      if (sigmoid_[i]) x = at::sigmoid(x);
      if (softmax_[i]) x = at::softmax(x, 0);
      img.data = x.to(in);
    });
  }

 private:
  std::vector<bool> sigmoid_, softmax_;
};

struct DiscreteSpec {
  bool argmax = false;
  std::optional<int64_t> to_onehot;
  std::optional<double> threshold;
  bool rounding = false;
};

class AsDiscrete final : public MapTransform {
 public:
  AsDiscrete(KeySelection k, std::vector<DiscreteSpec> specs)
      : MapTransform(std::move(k)), specs_(std::move(specs)) {}
  std::string name() const override { return "AsDiscreted"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      auto& img = s.image(key);
      const auto& p = specs_[i];
      img.data = post::as_discrete(img.data, p.argmax, p.to_onehot, p.threshold, p.rounding);
    });
  }

 private:
  std::vector<DiscreteSpec> specs_;
};

// One entry per key from a scalar or a list argument (JSON null entries -> fallback node).
std::vector<ConfigNode> nodes_per_key(const ConfigNode& a, const char* name, std::size_t n) {
  std::vector<ConfigNode> out;
  const auto v = a.at(name);
  if (v.is_array()) {
    if (v.size() != n) throw v.error(fmt::format("expected one value or one per key ({})", n));
    for (std::size_t i = 0; i < n; ++i) out.push_back(v.at(i));
  } else {
    for (std::size_t i = 0; i < n; ++i) out.push_back(v);
  }
  return out;
}

std::vector<DiscreteSpec> discrete_specs(const ConfigNode& a, std::size_t n) {
  std::vector<DiscreteSpec> specs(n);
  const auto argmax = per_key<bool>(a, "argmax", n, false);
  const auto rounding = per_key<std::string>(a, "rounding", n, "");
  const auto onehot = nodes_per_key(a, "to_onehot", n);
  const auto classes = nodes_per_key(a, a.given("num_classes") ? "num_classes" : "n_classes", n);
  const auto threshold = nodes_per_key(a, "threshold", n);
  const auto threshold_values = per_key<bool>(a, "threshold_values", n, false);
  const auto logit = per_key<double>(a, "logit_thresh", n, 0.5);
  for (std::size_t i = 0; i < n; ++i) {
    auto& s = specs[i];
    s.argmax = argmax[i];
    if (!rounding[i].empty()) {
      if (rounding[i] != "torchrounding") {
        throw ConfigError(a.source(), a.pointer() + "/rounding",
                          "rounding must be \"torchrounding\" or null");
      }
      s.rounding = true;
    }
    if (!onehot.empty() && !onehot[i].is_null()) {
      if (onehot[i].is_bool()) {
        // Clara 4.x / MONAI 0.x: to_onehot=true with n_classes.
        if (onehot[i].as<bool>()) {
          if (classes.empty() || classes[i].is_null()) {
            throw ConfigError(onehot[i].source(), onehot[i].pointer(),
                              "to_onehot=true needs n_classes (or num_classes)");
          }
          s.to_onehot = classes[i].as<int64_t>();
        }
      } else {
        s.to_onehot = onehot[i].as<int64_t>();
      }
      if (s.to_onehot && *s.to_onehot < 1)
        throw ConfigError(onehot[i].source(), onehot[i].pointer(), "must be at least 1");
    }
    if (!threshold.empty() && !threshold[i].is_null()) {
      if (threshold[i].is_bool()) {
        if (threshold[i].as<bool>()) s.threshold = logit[i];
      } else {
        s.threshold = threshold[i].as<double>();
      }
    } else if (threshold_values[i]) {
      s.threshold = logit[i];
    }
  }
  return specs;
}

std::vector<int64_t> labels_arg(const ConfigNode& a, const char* name) {
  if (a.at(name).is_null()) return {};
  const auto v = a.at(name);
  return v.is_array() ? v.as<std::vector<int64_t>>() : std::vector<int64_t>{v.as<int64_t>()};
}

std::optional<int> connectivity_arg(const ConfigNode& a) {
  if (!a.given("connectivity") || a.at("connectivity").is_null()) return std::nullopt;
  return a.at("connectivity").as<int>();
}

class KeepLargest final : public MapTransform {
 public:
  KeepLargest(KeySelection k,
              std::vector<int64_t> labels,
              std::optional<bool> onehot,
              bool independent,
              std::optional<int> connectivity,
              int num)
      : MapTransform(std::move(k)),
        labels_(std::move(labels)),
        onehot_(onehot),
        independent_(independent),
        connectivity_(connectivity),
        num_(num) {}
  std::string name() const override { return "KeepLargestConnectedComponentd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      img.data = post::keep_largest_connected_component(img.data, labels_, onehot_, independent_,
                                                        connectivity_, num_);
    });
  }

 private:
  std::vector<int64_t> labels_;
  std::optional<bool> onehot_;
  bool independent_;
  std::optional<int> connectivity_;
  int num_;
};

class FillHoles final : public MapTransform {
 public:
  FillHoles(KeySelection k, std::vector<int64_t> labels, std::optional<int> connectivity)
      : MapTransform(std::move(k)), labels_(std::move(labels)), connectivity_(connectivity) {}
  std::string name() const override { return "FillHolesd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      img.data = post::fill_holes(img.data, labels_, connectivity_);
    });
  }

 private:
  std::vector<int64_t> labels_;
  std::optional<int> connectivity_;
};

ComponentSpec activationsd_spec() {
  return dict_spec(
      "Activationsd", "Applies sigmoid or softmax.",
      {keys_spec(),
       opt("sigmoid", A::kBools, "false", "Apply a sigmoid (one value, or one per key)."),
       opt("softmax", A::kBools, "false",
           "Apply a softmax over the channels (one value, or one per key)."),
       opt("other", A::kCallable, "null",
           "Custom activation callable; not supported (must be null)."),
       allow_missing_spec()});
}

ComponentSpec as_discreted_spec() {
  return dict_spec(
      "AsDiscreted", "argmax, one-hot and thresholding.",
      {keys_spec(),
       opt("argmax", A::kBools, "false",
           "Take the argmax over the channels (one value, or one per key)."),
       opt("to_onehot", A::kAny, "null", "Number of classes (or true with n_classes)."),
       opt("threshold", A::kFloats, "null",
           "Binarise at this value (x >= threshold); null: no thresholding."),
       opt("rounding", A::kStrings, "null",
           "torchrounding rounds the values to integers; null: no rounding."),
       allow_missing_spec(),
       opt("n_classes", A::kInts, "null", "Deprecated: number of classes for to_onehot=true."),
       opt("num_classes", A::kInts, "null", "Deprecated alias of n_classes."),
       opt("threshold_values", A::kBools, "false", "Deprecated: use threshold."),
       opt("logit_thresh", A::kFloats, "0.5", "Deprecated: the threshold value.")});
}

ComponentSpec keep_largest_connected_componentd_spec() {
  return dict_spec(
      "KeepLargestConnectedComponentd", "Keeps the largest connected component(s).",
      {keys_spec(),
       opt("applied_labels", A::kInts, "null",
           "Labels to process; null: every non-zero label present."),
       opt("is_onehot", A::kBool, "null",
           "Whether the input is one-hot; null: one-hot when it has more than one channel."),
       opt("independent", A::kBool, "true",
           "Treat each label separately (true) or their union as one foreground (false)."),
       opt("connectivity", A::kInt, "null",
           "Neighbourhood: 1 (faces) up to the number of spatial dims (full); null: full."),
       opt("num_components", A::kInt, "1", "Number of largest components to keep."),
       allow_missing_spec()});
}

ComponentSpec fill_holesd_spec() {
  return dict_spec(
      "FillHolesd", "Fills holes in labels.",
      {keys_spec(),
       opt("applied_labels", A::kInts, "null",
           "Labels whose holes are filled; null: every label present."),
       opt("connectivity", A::kInt, "null",
           "Neighbourhood: 1 (faces) up to the number of spatial dims (full); null: full."),
       allow_missing_spec()});
}

}  // namespace

void register_post(TransformRegistry& r) {
  r.add(activationsd_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    const auto sig = per_key<bool>(a, "sigmoid", n, false),
               soft = per_key<bool>(a, "softmax", n, false);
    for (std::size_t i = 0; i < n; ++i) {
      if (sig[i] && soft[i]) throw a.error("sigmoid and softmax cannot both be true");
    }
    if (a.given("other")) {
      throw a.at("other").error("custom activations ('other') are not supported");
    }
    return std::make_unique<Activations>(std::move(k), sig, soft);
  });
  r.add(as_discreted_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    return std::make_unique<AsDiscrete>(std::move(k), discrete_specs(a, n));
  });
  r.add(keep_largest_connected_componentd_spec(), [](const ConfigNode& a, const BuildContext&) {
    std::optional<bool> onehot;
    if (auto v = a.get_optional<bool>("is_onehot")) onehot = *v;
    const int num = a.require<int>("num_components");
    if (num < 1) throw a.at("num_components").error("must be at least 1");
    return std::make_unique<KeepLargest>(KeySelection::from_config(a),
                                         labels_arg(a, "applied_labels"), onehot,
                                         a.require<bool>("independent"), connectivity_arg(a), num);
  });
  r.add(fill_holesd_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<FillHoles>(KeySelection::from_config(a),
                                       labels_arg(a, "applied_labels"), connectivity_arg(a));
  });
}

}  // namespace barton::transforms
