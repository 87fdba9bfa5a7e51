#include "transforms/trace.h"

#include <ATen/ATen.h>

#include "core/strings.h"
#include "transforms/spatial/functional.h"

namespace barton::transforms {

void record(ImageItem& item,
            const std::string& transform,
            const std::vector<int64_t>& orig_shape,
            const Affine& orig_affine,
            const std::string& mode,
            const std::string& padding) {
  TraceEntry e;
  e.transform = transform;
  e.orig_shape = orig_shape;
  e.orig_affine = orig_affine;
  if (!mode.empty()) e.strings["mode"] = mode;
  if (!padding.empty()) e.strings["padding"] = padding;
  item.applied.push_back(std::move(e));
}

std::pair<at::Tensor, Affine> invert_trace(const at::Tensor& data,
                                           const Affine& current_affine,
                                           const std::vector<TraceEntry>& trace,
                                           bool nearest) {
  spatial::Spatial cur{data.to(at::kFloat), current_affine};
  for (auto it = trace.rbegin(); it != trace.rend(); ++it) {
    const auto& e = *it;
    std::string mode =
        nearest ? "nearest" : (e.strings.count("mode") ? e.strings.at("mode") : "bilinear");
    if (mode == "area" || mode == "trilinear" || mode == "linear" || mode == "nearest-exact") {
      mode = mode == "nearest-exact" ? "nearest" : "bilinear";
    }
    if (e.transform == "Resized") {
      cur = {spatial::interpolate(cur.data, e.orig_shape,
                                  nearest                   ? "nearest"
                                  : e.strings.count("mode") ? e.strings.at("mode")
                                                            : "area",
                                  std::nullopt),
             e.orig_affine};
      continue;
    }
    const bool crop = e.transform.find("Crop") != std::string::npos;
    std::string padding =
        crop ? "zeros" : (e.strings.count("padding") ? e.strings.at("padding") : "border");
    if (padding == "edge" || padding == "replicate") padding = "border";
    if (padding == "constant") padding = "zeros";
    if (padding == "reflect") padding = "reflection";
    if (padding != "zeros" && padding != "border" && padding != "reflection") padding = "zeros";
    auto res = spatial::spatial_resample(cur, e.orig_affine, e.orig_shape, mode, padding, false,
                                         at::kDouble);
    cur = {res.data, e.orig_affine};
  }
  return {cur.data, cur.affine};
}

}  // namespace barton::transforms
