#pragma once
/// DeepEdit's click simulation (MONAI's apps.deepedit transforms) as functions, for the dictionary
/// transforms and for tests that script the random draws. Arrays are [C, H, W, D]: channel first,
/// depth (the slice axis) last. Values MONAI keeps as Python dicts (label_names, sids, guidance)
/// are ordered JSON objects: their order is the order of the guidance channels.

#include <cstdint>
#include <functional>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "transforms/sample.h"

namespace barton::transforms::deepedit {

using ojson = nlohmann::ordered_json;

/// MONAI's mask of one label name, as its transforms make it (label == value kept as the value,
/// then > 0.5; for "background" != value set to 1, then inverted): 1 where label == value, and for
/// a name other than "background" only when the value is above 0.5. float32, label's shape.
at::Tensor name_mask(const at::Tensor& label, const std::string& name, double value);

/// The random choices of AddRandomGuidanceDeepEditd, so that tests can script them.
struct Draws {
  std::function<bool(double)> interact;            ///< True with the given probability.
  std::function<int64_t(const at::Tensor&)> flat;  ///< A flat index from a probability map.
  std::function<int64_t()> num_clicks;             ///< MONAI's random.randint(1, 10).
  std::function<std::size_t(std::size_t)> pick;    ///< An index in [0, n).
  /// The draws from Barton's generator (MONAI's distributions).
  static Draws from(Rng& rng);
};

/// MONAI's AddRandomGuidanceDeepEditd on one sample: when draws.interact(probability), each name's
/// guidance loses its [-1, ...] points; for each name L (label_names order) a click in L's positive
/// discrepancy when it has one (appended to L), and for each name K whose mask overlaps L's
/// negative discrepancy in more than 50 voxels a click there (appended to K); then the click budget
/// (names picked at random until the kept names hold num_clicks clicks; the others lose theirs).
/// `discrepancy` is [2N, ...] (pos, neg per name). Returns the new guidance, or `guidance` itself
/// when there is no interaction.
ojson add_random_guidance(const ojson& guidance,
                          const at::Tensor& discrepancy,
                          const ojson& label_names,
                          const at::Tensor& label,
                          double probability,
                          Draws& draws);

/// One channel per name of `guidance` (its order): the points' last three entries (int, clamped)
/// set to 1 (a point with a negative entry is skipped), MONAI's erf Gaussian (sigma), min-max
/// normalised; zeros for a name without points. Returns [N, *spatial] float32.
at::Tensor guidance_channels(const std::vector<int64_t>& spatial,
                             const ojson& guidance,
                             double sigma);

/// A dict-valued sample entry (an ordered JSON object held as a string). Throws Error naming the
/// key and `who` when it is absent or not an object.
ojson dict_value(const Sample& s, const std::string& key, const std::string& who);

}  // namespace barton::transforms::deepedit
