#include "engine/decollate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/affine.h"
#include "core/errors.h"

namespace barton::engine {

std::vector<double> item_spacing(const transforms::ImageItem& item) {
  return voxel_spacing(item.affine, item.spatial_dims());
}

std::vector<transforms::Sample> decollate(const data::Batch& batch,
                                          const at::Tensor& pred,
                                          const transforms::Compose* post,
                                          transforms::Rng& rng) {
  std::vector<transforms::Sample> out;
  out.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    transforms::Sample s = batch.items[i];
    transforms::ImageItem p = s.is_image("image") ? s.image("image") : transforms::ImageItem{};
    p.data = pred[static_cast<int64_t>(i)];
    p.filename = s.is_image("image") ? s.image("image").filename : "";
    s.set("pred", std::move(p));
    if (post) post->apply(s, rng);
    out.push_back(std::move(s));
  }
  return out;
}

at::Tensor stack_key(const std::vector<transforms::Sample>& samples, const std::string& key) {
  std::vector<at::Tensor> t;
  for (const auto& s : samples) t.push_back(s.image(key).data);
  return at::stack(t);
}

std::string case_name(const transforms::Sample& s) {
  const auto o = s.origin();
  return o.empty() ? "case" : o;
}

void update_metrics(std::vector<NamedMetric>& metrics,
                    const std::vector<transforms::Sample>& samples) {
  if (metrics.empty()) return;
  for (const auto& s : samples) {
    if (!s.is_image("pred") || !s.is_image("label")) {
      throw Error(fmt::format(
          "metrics need 'pred' and 'label' after the post transforms; case {} has keys [{}]",
          case_name(s), fmt::join(s.keys(), ", ")));
    }
    const auto& p = s.image("pred");
    const auto& l = s.image("label");
    if (p.data.sizes() != l.data.sizes()) {
      throw Error(fmt::format(
          "case {}: prediction {} and label {} differ in shape after the post transforms "
          "(does the label need AsDiscreted to_onehot, or the prediction Invertd?)",
          case_name(s), fmt::format("[{}]", fmt::join(p.data.sizes(), ", ")),
          fmt::format("[{}]", fmt::join(l.data.sizes(), ", "))));
    }
    const auto sp = item_spacing(l);
    for (auto& m : metrics)
      m.metric->update(p.data.unsqueeze(0), l.data.unsqueeze(0), sp, {case_name(s)});
  }
}

void check_pair(const data::Batch& batch) {
  const auto& img = batch.tensors.at("image");
  const auto it = batch.tensors.find("label");
  if (it == batch.tensors.end()) return;
  if (img.sizes().slice(2) != it->second.sizes().slice(2)) {
    throw Error(fmt::format(
        "label shape [{}] differs from image shape [{}] (case {}): check that the label belongs "
        "to the image and that the same spatial transforms apply to both keys",
        fmt::join(it->second.sizes().slice(1), ", "), fmt::join(img.sizes().slice(1), ", "),
        batch.items.empty() ? "?" : batch.items.front().origin()));
  }
}

}  // namespace barton::engine
