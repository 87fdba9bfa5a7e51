#include "transforms/deepedit/functional.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "core/errors.h"
#include "transforms/deepgrow/functional.h"

namespace barton::transforms::deepedit {

namespace dg = deepgrow;

at::Tensor name_mask(const at::Tensor& label, const std::string& name, double value) {
  if (name != "background" && !(value > 0.5)) return at::zeros(label.sizes(), at::kFloat);
  return label.to(at::kDouble).eq(value).to(at::kFloat);
}

Draws Draws::from(Rng& rng) {
  Draws d;
  d.interact = [&rng](double p) { return rng.uniform() < p; };
  d.flat = [&rng](const at::Tensor& prob) { return dg::draw_flat_index(prob, rng); };
  d.num_clicks = [&rng] { return rng.randint(1, 11); };
  d.pick = [&rng](std::size_t n) {
    return static_cast<std::size_t>(rng.randint(0, static_cast<int64_t>(n)));
  };
  return d;
}

namespace {

/// MONAI's find_guidance: a click drawn in `region` ([1, ...]); null when it is empty.
ojson find_guidance(const at::Tensor& region, Draws& draws) {
  if (!(region > 0).any().item<bool>()) return nullptr;
  const auto dist = dg::chessboard_distance(region);
  const auto flat = draws.flat(dg::click_probability(region, dist));
  return dg::click_point(flat, region.sizes().vec(), dist);
}

std::vector<ojson> points_of(const ojson& g) {
  ojson list = g.is_string() ? ojson::parse(g.get<std::string>()) : g;
  std::vector<ojson> out;
  if (!list.is_array()) return out;
  for (const auto& p : list) out.push_back(p);
  return out;
}

}  // namespace

ojson add_random_guidance(const ojson& guidance,
                          const at::Tensor& discrepancy,
                          const ojson& label_names,
                          const at::Tensor& label,
                          double probability,
                          Draws& draws) {
  if (!draws.interact(probability)) return guidance;
  const auto n = static_cast<int64_t>(label_names.size());
  if (discrepancy.size(0) != 2 * n)
    throw Error(
        fmt::format("AddRandomGuidanceDeepEditd: the discrepancy has {} channels for {} "
                    "label names (needs a positive and a negative one for each)",
                    discrepancy.size(0), n));
  ojson out = ojson::object();
  for (const auto& [name, value] : label_names.items()) {
    if (!guidance.contains(name))
      throw Error("AddRandomGuidanceDeepEditd: the guidance has no entry for '" + name + "'");
    ojson kept = ojson::array();
    for (const auto& p : points_of(guidance[name])) {
      bool minus_one = false;
      for (const auto& c : p) minus_one = minus_one || (c.is_number() && c.get<double>() == -1);
      if (!minus_one) kept.push_back(p);
    }
    out[name] = kept;
  }
  std::vector<at::Tensor> masks;
  std::vector<std::string> names;
  for (const auto& [name, value] : label_names.items()) {
    names.push_back(name);
    masks.push_back(name_mask(label, name, value.get<double>()));
  }
  for (int64_t li = 0; li < n; ++li) {
    const auto pos = discrepancy.slice(0, 2 * li, 2 * li + 1);
    const auto neg = discrepancy.slice(0, 2 * li + 1, 2 * li + 2);
    if ((pos > 0).any().item<bool>())
      out[names[static_cast<std::size_t>(li)]].push_back(find_guidance(pos, draws));
    for (std::size_t k = 0; k < names.size(); ++k) {
      const auto overlap = neg * masks[k];
      if (overlap.sum().item<double>() > 50) out[names[k]].push_back(find_guidance(overlap, draws));
    }
  }
  // The click budget.
  const int64_t budget = draws.num_clicks();
  std::vector<bool> kept(names.size(), false);
  std::size_t n_kept = 0;
  int64_t counter = 0;
  while (true) {
    const auto i = draws.pick(names.size());
    if (!kept[i]) {
      kept[i] = true;
      ++n_kept;
      counter += static_cast<int64_t>(out[names[i]].size());
      if (counter >= budget) {
        for (std::size_t k = 0; k < names.size(); ++k)
          if (!kept[k]) out[names[k]] = ojson::array();
        break;
      }
    }
    if (n_kept == names.size()) break;
  }
  return out;
}

at::Tensor guidance_channels(const std::vector<int64_t>& spatial,
                             const ojson& guidance,
                             double sigma) {
  std::vector<at::Tensor> chans;
  for (const auto& [name, g] : guidance.items()) {
    const auto pts = points_of(g);
    nlohmann::json group = nlohmann::json::array();
    for (const auto& p : pts) group.push_back(nlohmann::json::parse(p.dump()));
    chans.push_back(dg::guidance_signal(spatial, nlohmann::json::array({group}), sigma));
  }
  if (chans.empty()) {
    std::vector<int64_t> shape{0};
    shape.insert(shape.end(), spatial.begin(), spatial.end());
    return at::zeros(shape, at::kFloat);
  }
  return at::cat(chans, 0);
}

ojson dict_value(const Sample& s, const std::string& key, const std::string& who) {
  if (!s.has(key)) throw Error(who + ": the sample has no '" + key + "'");
  const auto* str = std::get_if<std::string>(&s.get(key));
  if (!str) throw Error(who + ": '" + key + "' must be a JSON object");
  ojson j;
  try {
    j = ojson::parse(*str);
  } catch (const ojson::exception& e) {
    throw Error(who + ": '" + key + "' is not JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(who + ": '" + key + "' must be a JSON object");
  return j;
}

}  // namespace barton::transforms::deepedit
