// DeepEdit's dictionary transforms (MONAI's apps.deepedit): several labels at once, clicks per
// label name, an automatic mode without clicks; checked against
// tests/golden/monai_twin/deepedit.py. label_names, sids and guidance are sample values holding
// ordered JSON objects (MONAI keeps Python dicts); discrepancy is one image [2N, ...] with a
// positive and a negative channel per name.
#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/deepedit/functional.h"
#include "transforms/deepgrow/functional.h"
#include "transforms/register.h"

namespace barton::transforms {

namespace {

namespace de = deepedit;
namespace dg = deepgrow;
using de::ojson;
using A = ArgType;

ojson object_arg(const ConfigNode& a, const char* name) {
  if (!a.given(name) || a.at(name).is_null()) return ojson::object();
  const auto& j = a.at(name).json();
  if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      if (!v.is_number()) throw a.at(name).error("the value of '" + k + "' must be a number");
    return j;
  }
  if (j.is_array()) {  // a list of names: values 1, 2, ... in order ("background" 0)
    ojson out = ojson::object();
    int64_t next = 1;
    for (const auto& v : j) {
      if (!v.is_string()) throw a.at(name).error("label names must be strings");
      const auto n = v.get<std::string>();
      out[n] = n == "background" ? 0 : next++;
    }
    return out;
  }
  throw a.at(name).error("must be an object {name: value} or a list of names");
}

class NormalizeLabelsInDataset final : public MapTransform {
 public:
  NormalizeLabelsInDataset(KeySelection k, ojson names)
      : MapTransform(std::move(k)), names_(std::move(names)) {}
  std::string name() const override { return "NormalizeLabelsInDatasetd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      const auto src = img.data.to(at::kDouble);
      auto out = at::zeros(src.sizes(), at::kDouble);
      ojson fresh = ojson::object();
      int64_t idx = 1;  // MONAI's enumerate(start=1) counts "background" too
      for (const auto& [n, v] : names_.items()) {
        if (n != "background") {
          fresh[n] = idx;
          out.masked_fill_(src.eq(v.get<double>()), static_cast<double>(idx));
        } else {
          fresh["background"] = 0;
        }
        ++idx;
      }
      img.data = out;
      s.set("label_names", fresh.dump());
    });
  }

 private:
  ojson names_;
};

class FindAllValidSlicesMissingLabels final : public MapTransform {
 public:
  FindAllValidSlicesMissingLabels(KeySelection k, std::string sids)
      : MapTransform(std::move(k)), sids_(std::move(sids)) {}
  std::string name() const override { return "FindAllValidSlicesMissingLabelsd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& label = s.image("label").data;
    if (label.size(0) != 1)
      throw Error(name() + ": only single-channel labels, got " + fmt::format("{}", label.sizes()));
    if (label.dim() != 4)
      throw Error(name() + ": the label must be [1, H, W, D], got " +
                  fmt::format("{}", label.sizes()));
    const auto names = de::dict_value(s, "label_names", name());
    const auto l = label[0].to(at::kDouble);
    ojson sids = ojson::object();
    for (const auto& [n, v] : names.items()) {
      // Which slices (last axis) hold the value.
      const auto present = l.eq(v.get<double>()).flatten(0, 1).any(0);
      ojson ids = ojson::array();
      for (int64_t i = 0; i < present.size(0); ++i)
        if (present[i].item<bool>()) ids.push_back(i);
      if (ids.empty()) ids = ojson(std::vector<int64_t>(10, -1));
      sids[n] = ids;
    }
    s.set(sids_, sids.dump());
  }

 private:
  std::string sids_;
};

class AddInitialSeedPointMissingLabels final : public MapTransform {
 public:
  AddInitialSeedPointMissingLabels(
      KeySelection k, std::string guidance, std::string sids, std::string sid, int64_t regions)
      : MapTransform(std::move(k)),
        guidance_(std::move(guidance)),
        sids_(std::move(sids)),
        sid_(std::move(sid)),
        regions_(regions) {}
  std::string name() const override { return "AddInitialSeedPointMissingLabelsd"; }
  bool is_random() const override { return true; }
  void apply(Sample& s, Rng& rng) const override {
    const auto& label = s.image("label").data;
    if (label.dim() != 4) throw Error(name() + ": the label must be [1, H, W, D]");
    const auto names = de::dict_value(s, "label_names", name());
    const auto sids = de::dict_value(s, sids_, name());
    const ojson chosen = s.has(sid_) ? de::dict_value(s, sid_, name()) : ojson::object();
    const ojson none = ojson(std::vector<int64_t>(4, -1));
    ojson guidance = ojson::object();
    for (const auto& [n, list] : sids.items()) {
      if (!names.contains(n)) throw Error(name() + ": '" + n + "' is not in label_names");
      std::vector<int64_t> ids;
      for (const auto& v : list) ids.push_back(v.get<int64_t>());
      if (ids.empty()) throw Error(name() + ": no slices for '" + n + "'");
      int64_t sid = ids[static_cast<std::size_t>(rng.randint(0, static_cast<int64_t>(ids.size())))];
      if (chosen.contains(n) &&
          std::find(ids.begin(), ids.end(), chosen[n].get<int64_t>()) != ids.end())
        sid = chosen[n].get<int64_t>();
      const auto depth = label.size(3);
      const int64_t at = sid < 0 ? sid + depth : sid;  // numpy: -1 is the last slice
      if (at < 0 || at >= depth)
        throw Error(fmt::format("{}: slice {} is outside the label", name(), sid));
      const auto mask =
          de::name_mask(label[0].select(2, at), n, names[n].get<double>()).unsqueeze(0);
      const auto [blobs, count] = dg::label_components(mask);
      ojson out = ojson::array();
      if (count <= 0) {
        out.push_back(none);
      } else {
        for (int64_t r = 1; r <= regions_; ++r) {
          const auto region = (blobs == r).to(at::kFloat);
          if (r > count) {
            out.push_back(none);
            continue;
          }
          const auto dist = dg::chessboard_distance(region);
          const auto flat = dg::draw_flat_index(dg::click_probability(region, dist), rng);
          const auto g = dg::click_point(flat, region.sizes().vec(), dist);
          out.push_back({g[0], g[g.size() - 2], g[g.size() - 1], sid});
        }
      }
      guidance[n] = out;
    }
    s.set(guidance_, guidance.dump());
  }

 private:
  std::string guidance_, sids_, sid_;
  int64_t regions_;
};

class AddGuidanceSignalDeepEdit final : public MapTransform {
 public:
  AddGuidanceSignalDeepEdit(KeySelection k, std::string guidance, double sigma, int64_t nch)
      : MapTransform(std::move(k)), guidance_(std::move(guidance)), sigma_(sigma), nch_(nch) {}
  std::string name() const override { return "AddGuidanceSignalDeepEditd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      if (key != "image") return;  // MONAI: "This transform only applies to image key"
      auto& img = s.image(key);
      if (img.data.dim() != 4) throw Error(name() + ": the image must be [C, H, W, D]");
      const auto g = de::dict_value(s, guidance_, name());
      const auto chans = de::guidance_channels(img.spatial_shape(), g, sigma_);
      const auto t = img.data.scalar_type();
      const auto out =
          (t == at::kDouble || t == at::kInt || t == at::kLong) ? at::kDouble : at::kFloat;
      img.data = at::cat({img.data.slice(0, 0, nch_).to(out), chans.to(out)}, 0);
    });
  }

 private:
  std::string guidance_;
  double sigma_;
  int64_t nch_;
};

class DiscardAddGuidance final : public MapTransform {
 public:
  DiscardAddGuidance(KeySelection k, int64_t nch, double probability, int64_t labels)
      : MapTransform(std::move(k)), nch_(nch), probability_(probability), labels_(labels) {}
  std::string name() const override { return "DiscardAddGuidanced"; }
  bool is_random() const override { return probability_ < 1.0; }
  void apply(Sample& s, Rng& rng) const override {
    const bool discard = probability_ >= 1.0 || rng.uniform() < probability_;
    for_each_key(s, [&](const std::string& key, std::size_t) {
      if (!discard) return;
      auto& img = s.image(key);
      auto shape = img.data.sizes().vec();
      if (shape[0] == nch_ + labels_) {
        img.data = img.data.clone();
        img.data.slice(0, nch_).zero_();
      } else {
        shape[0] = labels_;
        img.data = at::cat({img.data, at::zeros(shape, img.data.options())}, 0);
      }
    });
  }

 private:
  int64_t nch_;
  double probability_;
  int64_t labels_;
};

class FindDiscrepancyRegionsDeepEdit final : public MapTransform {
 public:
  FindDiscrepancyRegionsDeepEdit(KeySelection k, std::string pred, std::string out)
      : MapTransform(std::move(k)), pred_(std::move(pred)), out_(std::move(out)) {}
  std::string name() const override { return "FindDiscrepancyRegionsDeepEditd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& label = s.image("label");
    const auto& pred = s.image(pred_).data;
    if (label.data.sizes() != pred.sizes())
      throw Error(fmt::format("{}: label {} and prediction '{}' {} differ", name(),
                              label.data.sizes(), pred_, pred.sizes()));
    const auto names = de::dict_value(s, "label_names", name());
    std::vector<at::Tensor> chans;
    for (const auto& [n, v] : names.items()) {
      const auto l = de::name_mask(label.data, n, v.get<double>());
      const auto p = de::name_mask(pred, n, v.get<double>());
      const auto d = l - p;
      chans.push_back((d > 0).to(at::kFloat));
      chans.push_back((d < 0).to(at::kFloat));
    }
    ImageItem out;
    out.data = at::cat(chans, 0);
    out.affine = label.affine;
    s.set(out_, std::move(out));
  }

 private:
  std::string pred_, out_;
};

using dg::number_value;

class AddRandomGuidanceDeepEdit final : public Transform {
 public:
  AddRandomGuidanceDeepEdit(std::string guidance, std::string discrepancy, std::string probability)
      : guidance_(std::move(guidance)),
        discrepancy_(std::move(discrepancy)),
        probability_(std::move(probability)) {}
  std::string name() const override { return "AddRandomGuidanceDeepEditd"; }
  bool is_random() const override { return true; }
  void apply(Sample& s, Rng& rng) const override {
    const auto prob = number_value(s, probability_);
    if (!prob) throw Error(name() + ": the sample has no probability '" + probability_ + "'");
    auto draws = de::Draws::from(rng);
    const auto g = de::add_random_guidance(
        de::dict_value(s, guidance_, name()), s.image(discrepancy_).data,
        de::dict_value(s, "label_names", name()), s.image("label").data, *prob, draws);
    s.set(guidance_, g.dump());
  }

 private:
  std::string guidance_, discrepancy_, probability_;
};

/// Clicks given per label name (sample values named like the labels, [[h, w, d], ...] on the image
/// as loaded) scaled to the current image, as guidance.
class AddGuidanceFromPointsDeepEdit final : public Transform {
 public:
  AddGuidanceFromPointsDeepEdit(std::string ref, std::string guidance, ojson names)
      : ref_(std::move(ref)), guidance_(std::move(guidance)), names_(std::move(names)) {}
  std::string name() const override { return "AddGuidanceFromPointsDeepEditd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& img = s.image(ref_);
    const auto cur = img.spatial_shape();
    const auto orig = img.original_shape.empty() ? cur : img.original_shape;
    ojson out = ojson::object();
    for (const auto& [n, v] : names_.items()) {
      ojson list = ojson::array();
      if (s.has(n)) {
        const auto* str = std::get_if<std::string>(&s.get(n));
        const ojson pts = str ? ojson::parse(*str) : ojson::array();
        for (const auto& p : pts) {
          ojson q = ojson::array();
          for (std::size_t d = 0; d < p.size() && d < cur.size(); ++d)
            q.push_back(static_cast<int64_t>(static_cast<int64_t>(p[d].get<double>()) *
                                             (static_cast<double>(cur[d]) / orig[d])));
          list.push_back(q);
        }
      }
      out[n] = list;
    }
    s.set(guidance_, out.dump());
  }

 private:
  std::string ref_, guidance_;
  ojson names_;
};

/// Guidance scaled from the image as loaded to its current shape (after Resized).
class ResizeGuidanceMultipleLabel final : public Transform {
 public:
  ResizeGuidanceMultipleLabel(std::string guidance, std::string ref)
      : guidance_(std::move(guidance)), ref_(std::move(ref)) {}
  std::string name() const override { return "ResizeGuidanceMultipleLabelDeepEditd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& img = s.image(ref_);
    const auto cur = img.spatial_shape();
    const auto orig = img.original_shape.empty() ? cur : img.original_shape;
    if (orig.size() != cur.size())
      throw Error(name() + ": the image's rank changed since it was loaded");
    const auto g = de::dict_value(s, guidance_, name());
    ojson out = ojson::object();
    for (const auto& [n, pts] : g.items()) {
      ojson list = ojson::array();
      for (const auto& p : pts) {
        ojson q = ojson::array();
        for (std::size_t d = 0; d < p.size(); ++d) {
          const std::size_t axis = d + cur.size() - std::min(p.size(), cur.size());
          const double f = axis < cur.size()
                               ? static_cast<double>(cur[axis]) / static_cast<double>(orig[axis])
                               : 1.0;
          q.push_back(static_cast<int64_t>(p[d].get<double>() * f));
        }
        list.push_back(q);
      }
      out[n] = list;
    }
    s.set(guidance_, out.dump());
  }

 private:
  std::string guidance_, ref_;
};

ArgSpec key_spec(const char* name, const char* def, const char* doc) {
  return opt(name, A::kString, fmt::format("\"{}\"", def), doc);
}

}  // namespace

void register_deepedit(TransformRegistry& r) {
  r.add(dict_spec("NormalizeLabelsInDatasetd",
                  "Renumbers the label's values to 1..N in label_names order (background 0) and "
                  "records the new label_names.",
                  {keys_spec(), opt("label_names", A::kAny, "null", "{name: value in the file}."),
                   allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          auto names = object_arg(a, "label_names");
          if (names.empty()) throw a.error("label_names must name at least one label");
          return std::make_unique<NormalizeLabelsInDataset>(KeySelection::from_config(a),
                                                            std::move(names));
        });
  r.add(dict_spec(
            "FindAllValidSlicesMissingLabelsd",
            "Per label name, the slices (last axis) that hold it ([-1] * 10 when none).",
            {keys_spec(), key_spec("sids", "sids", "Where the slices go."), allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<FindAllValidSlicesMissingLabels>(KeySelection::from_config(a),
                                                                   a.require<std::string>("sids"));
        });
  r.add(dict_spec("AddInitialSeedPointMissingLabelsd",
                  "Per label name, first clicks on a random valid slice: one in each of its "
                  "largest connected regions there (deeper inside more likely).",
                  {keys_spec(), key_spec("guidance", "guidance", "Where the guidance goes."),
                   key_spec("sids", "sids", "Slices per name."),
                   key_spec("sid", "sid", "Chosen slice per name (optional)."),
                   opt("connected_regions", A::kInt, "5", "Regions clicked per name."),
                   allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          const auto n = a.require<int64_t>("connected_regions");
          if (n < 1) throw a.at("connected_regions").error("must be at least 1");
          return std::make_unique<AddInitialSeedPointMissingLabels>(
              KeySelection::from_config(a), a.require<std::string>("guidance"),
              a.require<std::string>("sids"), a.require<std::string>("sid"), n);
        });
  r.add(dict_spec("AddGuidanceSignalDeepEditd",
                  "Appends one Gaussian click channel per label name to the image.",
                  {keys_spec(), key_spec("guidance", "guidance", "Guidance key."),
                   opt("sigma", A::kFloat, "3", "Gaussian sigma in voxels."),
                   opt("number_intensity_ch", A::kInt, "1", "Image channels kept."),
                   allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<AddGuidanceSignalDeepEdit>(
              KeySelection::from_config(a), a.require<std::string>("guidance"),
              a.require<double>("sigma"), a.require<int64_t>("number_intensity_ch"));
        });
  r.add(dict_spec("DiscardAddGuidanced",
                  "With the probability, zeroes the click channels (or appends zero ones): the "
                  "automatic mode of DeepEdit.",
                  {keys_spec(), opt("number_intensity_ch", A::kInt, "1", "Image channels."),
                   opt("probability", A::kFloat, "1.0", "Chance of discarding the clicks."),
                   opt("label_names", A::kAny, "null", "The label names (their count is used)."),
                   allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<DiscardAddGuidance>(
              KeySelection::from_config(a), a.require<int64_t>("number_intensity_ch"),
              a.require<double>("probability"),
              static_cast<int64_t>(object_arg(a, "label_names").size()));
        });
  r.add(dict_spec("FindDiscrepancyRegionsDeepEditd",
                  "Per label name, where the prediction misses the label and where it overshoots.",
                  {keys_spec(), key_spec("pred", "pred", "Prediction key (argmax values)."),
                   key_spec("discrepancy", "discrepancy", "Where the result goes."),
                   allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<FindDiscrepancyRegionsDeepEdit>(
              KeySelection::from_config(a), a.require<std::string>("pred"),
              a.require<std::string>("discrepancy"));
        });
  r.add(dict_spec("AddRandomGuidanceDeepEditd",
                  "With the sample's probability, clicks where each label is missed or taken by "
                  "another, within a random budget of 1-10 clicks.",
                  {keys_spec(), key_spec("guidance", "guidance", "Guidance key."),
                   key_spec("discrepancy", "discrepancy", "Discrepancy key."),
                   key_spec("probability", "probability", "Click probability key."),
                   allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<AddRandomGuidanceDeepEdit>(a.require<std::string>("guidance"),
                                                             a.require<std::string>("discrepancy"),
                                                             a.require<std::string>("probability"));
        });
  r.add(dict_spec("ResizeGuidanceMultipleLabelDeepEditd",
                  "Scales each label name's clicks from the image as loaded to its current shape.",
                  {req("guidance", A::kString, "Guidance key."),
                   req("ref_image", A::kString, "Image whose shapes give the scale.")}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<ResizeGuidanceMultipleLabel>(a.require<std::string>("guidance"),
                                                               a.require<std::string>("ref_image"));
        });
  r.add(dict_spec("AddGuidanceFromPointsDeepEditd",
                  "Clicks per label name (values named like the labels) scaled to the current "
                  "image, as guidance.",
                  {req("ref_image", A::kString, "Image whose shape the clicks are scaled to."),
                   key_spec("guidance", "guidance", "Where the guidance goes."),
                   opt("label_names", A::kAny, "null", "{name: value}."), meta_keys_spec(),
                   meta_postfix_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<AddGuidanceFromPointsDeepEdit>(
              a.require<std::string>("ref_image"), a.require<std::string>("guidance"),
              object_arg(a, "label_names"));
        });
}

}  // namespace barton::transforms
