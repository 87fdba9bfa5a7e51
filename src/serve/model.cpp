#include "serve/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "core/config.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/autocast.h"
#include "engine/decollate.h"
#include "export/plan.h"
#include "mmar/config_resolver.h"
#include "mmar/run.h"
#include "transforms/spatial/functional.h"

namespace barton::serve {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// A file model (a plan); folders are MMARs.
bool is_file_model(const std::string& source) {
  return fs::is_regular_file(source);
}

/// Label names from channel_def {"0": "background", "1": "spleen"}: every channel but 0.
std::vector<std::string> labels_from_channel_def(const ConfigNode& def) {
  std::vector<std::pair<int, std::string>> named;
  for (const auto& k : def.keys()) {
    const int c = std::stoi(k);
    if (c > 0) named.emplace_back(c, def.at(k).as<std::string>());
  }
  std::sort(named.begin(), named.end());
  std::vector<std::string> out;
  for (auto& [c, n] : named) out.push_back(n);
  return out;
}

/// Fills labels, description, version and type from config_aiaa.json / metadata.json.
void read_model_docs(const fs::path& config_dir, ModelInfo& info) {
  const auto aiaa = config_dir / "config_aiaa.json";
  if (fs::exists(aiaa)) {
    const auto doc = ConfigNode::load(aiaa.string());
    if (auto t = doc.get_optional<std::string>("type")) info.type = *t;
    if (auto d = doc.get_optional<std::string>("description")) info.description = *d;
    if (doc.has("version"))
      info.version = doc.at("version").is_string() ? doc.at("version").as<std::string>()
                                                   : doc.at("version").dump();
    if (doc.has("labels")) {
      const auto l = doc.at("labels");
      for (std::size_t i = 0; i < l.size(); ++i) info.labels.push_back(l.at(i).as<std::string>());
    }
  }
  const auto meta = config_dir / "metadata.json";
  if (!fs::exists(meta)) return;
  const auto doc = ConfigNode::load(meta.string());
  if (info.description.empty())
    if (auto d = doc.get_optional<std::string>("description")) info.description = *d;
  if (auto v = doc.get_optional<std::string>("version")) info.version = *v;
  if (info.labels.empty() && doc.has("network_data_format")) {
    const auto ndf = doc.at("network_data_format");
    if (ndf.has("outputs") && ndf.at("outputs").has("pred") &&
        ndf.at("outputs").at("pred").has("channel_def"))
      info.labels = labels_from_channel_def(ndf.at("outputs").at("pred").at("channel_def"));
  }
}

}  // namespace

nlohmann::json ModelInfo::aiaa_json() const {
  nlohmann::json j;
  j["name"] = name;
  j["type"] = type;
  j["description"] = description;
  j["labels"] = labels;
  j["version"] = version;
  j["internal name"] = name;
  j["dimension"] = dimension;
  if (!roi.empty()) j["roi"] = roi;
  return j;
}

nlohmann::json StageTimes::to_json() const {
  return {{"read", read},
          {"pre_process", pre},
          {"network", network},
          {"post_process", post},
          {"write", write}};
}

ModelInfo describe_model(const std::string& source,
                         const std::string& name,
                         const std::vector<std::string>& sets) {
  if (!fs::exists(source)) throw IoError(source, "no such MMAR folder or plan");
  ModelInfo info;
  info.sets = sets;
  info.source = fs::absolute(source).lexically_normal().string();
  std::string stem = fs::path(info.source).filename().string();
  if (is_file_model(source)) {
    stem = fs::path(info.source).stem().string();
    if (stem == "model") stem = fs::path(info.source).parent_path().filename().string();
    const auto plan = exporter::load_plan(source);
    if (!plan.meta.contains("config_inference"))
      throw IoError(source, "the plan carries no config_inference.json, so it cannot be served");
    const auto cfg = ConfigNode::parse(plan.meta["config_inference"].get<std::string>(),
                                       source + ":config_inference.json");
    if (cfg.has("inferer") && cfg.at("inferer").has("args") &&
        cfg.at("inferer").at("args").has("roi_size"))
      info.roi = cfg.at("inferer").at("args").at("roi_size").as<std::vector<int64_t>>();
    info.model_file = info.source;
  } else {
    const auto files = mmar::locate_config(source, "", "", "config_inference.json");
    mmar::ResolveOptions ro;
    ro.sets = sets;
    const auto cfg = mmar::resolve_config(files, ro);
    if (cfg.doc.has("inferer") && cfg.doc.at("inferer").has("args") &&
        cfg.doc.at("inferer").at("args").has("roi_size"))
      info.roi = cfg.doc.at("inferer").at("args").at("roi_size").as<std::vector<int64_t>>();
    read_model_docs(fs::path(info.source) / "config", info);
  }
  info.name = name.empty() ? stem : name;
  if (info.description.empty()) info.description = "Barton model from " + info.source;
  if (info.roi.size() == 2) info.dimension = 2;
  return info;
}

ServedModel::ServedModel(ModelInfo info, const std::string& device) : info_(std::move(info)) {
  mmar::EvalOptions o;
  o.run.device = device;
  o.run.sets = info_.sets;
  if (is_file_model(info_.source)) {
    pipeline_ = mmar::load_inference_pipeline(o, info_.source);
  } else {
    o.run.mmar = info_.source;
    pipeline_ = mmar::load_inference_pipeline(o);
  }
  info_.model_file = pipeline_.workflow.model_source;
  std::error_code ec;
  const auto bytes = fs::file_size(info_.model_file, ec);
  weight_bytes_ = ec ? 0 : static_cast<std::size_t>(bytes);
  if (pipeline_.set_mode) pipeline_.set_mode(false);
}

std::shared_ptr<const PreparedImage> ServedModel::prepare(const std::string& image_path) const {
  auto out = std::make_shared<PreparedImage>();
  data::DataItem item;
  item.files["image"] = image_path;
  item.where = image_path;
  transforms::Rng rng(0);
  const auto& pre = *pipeline_.pre;
  std::size_t first = 0;
  auto t0 = Clock::now();
  std::vector<transforms::Sample> v{data::initial_sample(item)};
  if (pre.size() > 0 && pre.step(0).name() == "LoadImaged") {
    v = pre.run(std::move(v), rng, 0, 1);
    first = 1;
  }
  out->read_seconds = since(t0);
  t0 = Clock::now();
  v = pre.run(std::move(v), rng, first, pre.size());
  out->pre_seconds = since(t0);
  if (v.size() != 1)
    throw Error(image_path + ": the model's pre_transforms made " + std::to_string(v.size()) +
                " samples of one image; serving needs exactly one");
  out->samples = std::move(v);
  return out;
}

InferResult ServedModel::infer(const PreparedImage& image) {
  InferResult r;
  r.times.read = image.read_seconds;
  r.times.pre = image.pre_seconds;
  auto batch = data::collate(image.samples);
  const auto& device = pipeline_.workflow.device;
  auto t0 = Clock::now();
  at::Tensor pred;
  {
    torch::NoGradGuard no_grad;
    engine::AutocastGuard ac(pipeline_.amp, pipeline_.cpu_bf16, device);
    pred = pipeline_.inferer->infer(batch.tensors.at("image").to(device), pipeline_.predictor);
    pred = pred.to(torch::kCPU, torch::kFloat);
  }
  r.times.network = since(t0);
  t0 = Clock::now();
  transforms::Rng rng(0);
  auto samples = engine::decollate(batch, pred, pipeline_.post.get(), rng);
  const auto& item = samples.at(0).image("pred");
  at::Tensor labels = item.data;
  if (labels.size(0) > 1) {
    labels = labels.argmax(0, true);
  } else if (labels.is_floating_point()) {
    labels = labels.round();
  }
  transforms::spatial::Spatial out{labels.to(at::kFloat), item.affine};
  // Back on the image's own grid when the config had no Invertd.
  const auto& src = image.samples.front().image("image");
  double affine_diff = 0;
  for (std::size_t i = 0; i < 16; ++i)
    affine_diff = std::max(affine_diff, std::abs(out.affine[i] - src.original_affine[i]));
  if (!src.original_shape.empty() &&
      (out.data.sizes().slice(1).vec() != src.original_shape || affine_diff > 1e-4))
    out = transforms::spatial::spatial_resample(out, src.original_affine, src.original_shape,
                                                "nearest", "zeros", false, at::kDouble);
  r.label.data = out.data.round().clamp(0, 255).to(at::kByte).contiguous();
  r.label.affine = out.affine;
  r.label.file_dtype = "uint8";
  r.times.post = since(t0);
  return r;
}

double ServedModel::tta_uncertainty(const PreparedImage& image) {
  auto batch = data::collate(image.samples);
  const auto& device = pipeline_.workflow.device;
  const at::Tensor x = batch.tensors.at("image").to(device);
  std::vector<at::Tensor> probs;
  torch::NoGradGuard no_grad;
  engine::AutocastGuard ac(pipeline_.amp, pipeline_.cpu_bf16, device);
  for (int64_t axis = 1; axis < x.dim(); ++axis) {  // 1 = no flip; then each spatial axis
    const bool flip = axis >= 2;
    auto in = flip ? x.flip({axis}) : x;
    auto pred = pipeline_.inferer->infer(in, pipeline_.predictor).to(torch::kFloat);
    if (flip) pred = pred.flip({axis});
    pred = pred.size(1) > 1 ? pred.softmax(1) : pred.sigmoid();
    probs.push_back(pred.to(torch::kCPU));
  }
  const auto stacked = at::stack(probs);  // [A, B, C, ...]
  return stacked.var(0, /*unbiased=*/false).sum(1).mean().item<double>();
}

}  // namespace barton::serve
