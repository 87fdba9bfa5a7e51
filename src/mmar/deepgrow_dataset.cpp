// DeepGrow's dataset preparation: see deepgrow_dataset.h.
#include "mmar/deepgrow_dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/errors.h"
#include "data/datalist.h"
#include "data/dataset.h"
#include "io/image.h"
#include "mmar/registries.h"
#include "transforms/deepgrow/functional.h"

namespace barton::mmar {

namespace fs = std::filesystem;

namespace {

/// MONAI's create_dataset chain: load, channel first, RAS, resample (image bilinear, label
/// nearest).
transforms::Compose load_chain(const std::vector<double>& pixdim) {
  const nlohmann::json steps = nlohmann::json::array({
      {{"name", "LoadImaged"}, {"args", {{"keys", {"image", "label"}}}}},
      {{"name", "EnsureChannelFirstd"}, {"args", {{"keys", {"image", "label"}}}}},
      {{"name", "Orientationd"}, {"args", {{"keys", {"image", "label"}}, {"axcodes", "RAS"}}}},
      {{"name", "Spacingd"},
       {"args",
        {{"keys", {"image", "label"}}, {"pixdim", pixdim}, {"mode", {"bilinear", "nearest"}}}}},
  });
  const auto doc = ConfigNode::parse(steps.dump(), "deepgrow dataset preparation");
  std::vector<std::shared_ptr<const transforms::Transform>> chain;
  for (std::size_t i = 0; i < doc.size(); ++i)
    chain.emplace_back(builtin_registries().transforms.create(doc.at(i)));
  return transforms::Compose(std::move(chain));
}

/// The label values > 0 present in `label` (whole numbers), ascending.
std::vector<int64_t> regions(const at::Tensor& label) {
  const auto values = std::get<0>(at::_unique(label.to(at::kLong).flatten(), true));
  std::vector<int64_t> out;
  for (int64_t i = 0; i < values.numel(); ++i)
    if (const auto v = values[i].item<int64_t>(); v > 0) out.push_back(v);
  return out;
}

void write(const at::Tensor& data,
           const Affine& affine,
           const std::string& dtype,
           const fs::path& path) {
  io::Image img;
  img.data = data.contiguous();
  img.affine = affine;
  img.file_dtype = dtype;
  io::write_image(img, path.string());
}

/// Writes one image and its per-region labels; returns the datalist entries.
nlohmann::json write_case(const at::Tensor& image,
                          const at::Tensor& label,
                          const Affine& affine,
                          const std::string& stem,
                          const fs::path& out,
                          DeepgrowDatasetReport& report) {
  nlohmann::json entries = nlohmann::json::array();
  const auto rel_image = fmt::format("images/{}.nii.gz", stem);
  write(image.unsqueeze(0).to(at::kFloat), affine, "float32", out / rel_image);
  ++report.images;
  const auto whole = label.round();
  for (const auto v : regions(whole)) {
    const auto rel_label = fmt::format("labels/{}_region_{:02d}.nii.gz", stem, v);
    write((whole == static_cast<double>(v)).unsqueeze(0).to(at::kByte), affine, "uint8",
          out / rel_label);
    ++report.labels;
    entries.push_back({{"image", rel_image}, {"label", rel_label}, {"region", v}});
  }
  return entries;
}

/// One volume through the chain, written as slices (2-D) or whole; returns its entries.
nlohmann::json prepare_volume(const data::DataItem& item,
                              const transforms::Compose& chain,
                              int dimensions,
                              int index,
                              const fs::path& out,
                              DeepgrowDatasetReport& report) {
  auto s = data::initial_sample(item);
  transforms::Rng rng(0);
  try {
    chain.apply(s, rng);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", item.where, e.what()));
  }
  // The first channel of a multi-channel image (MONAI: "4D-Image, pick only first series").
  const auto image = s.image("image").data[0];
  const auto label = s.image("label").data[0];
  const auto& affine = s.image("image").affine;
  if (image.sizes() != label.sizes())
    throw Error(fmt::format("{}: image {} and label {} differ in shape after resampling",
                            item.where, image.sizes().vec(), label.sizes().vec()));
  const auto vol = fmt::format("vol_idx_{:04d}", index);
  if (dimensions == 3) return write_case(image, label, affine, vol, out, report);
  nlohmann::json entries = nlohmann::json::array();
  const auto depth = image.dim() - 1;  // the last axis: superior after RAS
  for (int64_t k = 0; k < image.size(depth); ++k) {
    const auto lk = label.select(depth, k);
    if (lk.abs().sum().item<double>() == 0) continue;
    const auto a = transforms::deepgrow::slice_affine(affine, static_cast<int>(depth), k);
    for (auto& e : write_case(image.select(depth, k), lk, a, fmt::format("{}_slice_{:03d}", vol, k),
                              out, report))
      entries.push_back(e);
  }
  return entries;
}

}  // namespace

DeepgrowDatasetReport prepare_deepgrow_dataset(const DeepgrowDatasetOptions& o) {
  if (o.dimensions != 2 && o.dimensions != 3)
    throw Error(fmt::format("--dimensions must be 2 or 3, not {}", o.dimensions));
  if (!(o.split > 0 && o.split <= 1))
    throw Error(fmt::format("--split must lie in (0, 1], not {}", o.split));
  if (o.output.empty()) throw Error("--output is required");
  std::vector<double> pixdim = o.pixdim;
  if (pixdim.empty())
    pixdim =
        o.dimensions == 2 ? std::vector<double>{1.0, 1.0, 0.0} : std::vector<double>{1.0, 1.0, 1.0};
  data::DatalistOptions dlo;
  dlo.base_dir = o.dataset_root;
  std::vector<std::string> keys;
  for (std::size_t a = 0; a <= o.datalist_key.size();) {
    const auto b = std::min(o.datalist_key.find(',', a), o.datalist_key.size());
    if (b > a) keys.push_back(o.datalist_key.substr(a, b - a));
    a = b + 1;
  }
  if (keys.empty()) throw Error("--datalist_key names no key");
  if (o.split < 1 && keys.size() > 1)
    throw Error("--split divides one datalist key; give one key with it");
  const auto chain = load_chain(pixdim);
  const fs::path out(o.output);
  nlohmann::json lists = nlohmann::json::object();
  DeepgrowDatasetReport report;
  for (const auto& key : keys) {
    auto items = data::load_datalist(o.dataset_json, key, dlo);
    if (o.limit > 0 && static_cast<std::size_t>(o.limit) < items.size())
      items.resize(static_cast<std::size_t>(o.limit));
    for (const auto& item : items)
      if (!item.files.count("image") || !item.files.count("label"))
        throw ConfigError(o.dataset_json, item.where.substr(item.where.find(':') + 1),
                          "each case needs an \"image\" and a \"label\"");
    const auto n_first = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::llround(o.split * static_cast<double>(items.size()))));
    for (std::size_t v = 0; v < items.size(); ++v) {
      const auto list_key = o.split < 1 ? (v < n_first ? "training" : "validation") : key;
      if (!lists.contains(list_key)) lists[list_key] = nlohmann::json::array();
      for (auto& e : prepare_volume(items[v], chain, o.dimensions, report.volumes, out, report))
        lists[list_key].push_back(e);
      ++report.volumes;
    }
  }
  if (lists.contains("training")) report.training = static_cast<int>(lists["training"].size());
  if (lists.contains("validation"))
    report.validation = static_cast<int>(lists["validation"].size());
  nlohmann::json doc = {
      {"description", fmt::format("DeepGrow {}-D dataset prepared by Barton from {} ({} volumes)",
                                  o.dimensions, o.dataset_json, report.volumes)},
      {"dimensions", o.dimensions},
      {"pixdim", pixdim}};
  for (const auto& [k, v] : lists.items()) doc[k] = v;
  report.datalist = (out / "dataset.json").string();
  write_file_atomic(report.datalist, doc.dump(2) + "\n");
  return report;
}
}  // namespace barton::mmar
