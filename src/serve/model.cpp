#include "serve/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>
#include <fmt/format.h>
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
#include "transforms/croppad/functional.h"
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
    if (doc.has("inference") && doc.at("inference").has("meta_data")) {
      const auto md = doc.at("inference").at("meta_data");
      if (!md.is_object()) throw md.error("meta_data must be an object");
      info.meta_data = nlohmann::json::parse(md.dump());
      if (info.meta_data.contains("roi") && info.roi.empty())
        info.roi = md.at("roi").as<std::vector<int64_t>>();
    }
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

/// The AIAA type an inference config's pre_transforms make of a model: "annotation" when clicks
/// become an extreme-points channel (DEXTR3D), "deepedit" when they are given per label name,
/// "deepgrow" when they become guidance, else "". A DeepEdit step's label names go to `labels`.
std::string click_type(const ConfigNode& cfg, nlohmann::ordered_json* labels) {
  if (!cfg.has("pre_transforms") || !cfg.at("pre_transforms").is_array()) return "";
  const auto pre = cfg.at("pre_transforms");
  bool clicks = false, extreme = false, deepedit = false;
  const auto is = [](const std::string& n, const std::string& base) {
    return n == base + "d" || n == base + "D" || n == base + "Dict";
  };
  for (std::size_t i = 0; i < pre.size(); ++i) {
    const auto t = pre.at(i);
    if (t.is_object() && t.has("name") && t.at("name").is_string()) {
      const auto n = t.at("name").as<std::string>();
      clicks = clicks || is(n, "AddGuidanceFromPoints");
      extreme = extreme || is(n, "AddExtremePointsChannel");
      if (is(n, "AddGuidanceFromPointsDeepEdit")) {
        deepedit = true;
        if (t.has("args") && t.at("args").has("label_names") &&
            t.at("args").at("label_names").is_object())
          *labels = t.at("args").at("label_names").json();
      }
    }
  }
  if (deepedit) return "deepedit";
  return !clicks ? "" : extreme ? "annotation" : "deepgrow";
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
  if (type == "deepgrow") j["deepgrow"] = dimension == 2 ? "2D" : "3D";  // Slicer reads it
  for (const auto& [k, v] : meta_data.items())
    if (!j.contains(k)) j[k] = v;
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
    if (const auto t = click_type(cfg, &info.click_labels); !t.empty()) info.type = t;
    info.model_file = info.source;
  } else {
    const auto files = mmar::locate_config(source, "", "", "config_inference.json");
    mmar::ResolveOptions ro;
    ro.sets = sets;
    const auto cfg = mmar::resolve_config(files, ro);
    if (cfg.doc.has("inferer") && cfg.doc.at("inferer").has("args") &&
        cfg.doc.at("inferer").at("args").has("roi_size"))
      info.roi = cfg.doc.at("inferer").at("args").at("roi_size").as<std::vector<int64_t>>();
    if (const auto t = click_type(cfg.doc, &info.click_labels); !t.empty()) info.type = t;
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
  pre_size_ = click_step_ = pipeline_.pre->size();
  for (std::size_t i = 0; i < pre_size_; ++i) {
    const auto n = pipeline_.pre->step(i).name();
    if (n == "AddGuidanceFromPointsd" || n == "AddGuidanceFromPointsDeepEditd") {
      click_step_ = i;
      break;
    }
  }
  restore_step_ = pipeline_.post ? pipeline_.post->size() : 0;
  for (std::size_t i = 0; i < restore_step_; ++i) {
    if (pipeline_.post->step(i).name() == "RestoreLabeld") {
      restore_step_ = i;
      break;
    }
  }
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
  v = pre.run(std::move(v), rng, first, click_step_);
  out->pre_seconds = since(t0);
  if (v.size() != 1)
    throw Error(image_path + ": the model's pre_transforms made " + std::to_string(v.size()) +
                " samples of one image; serving needs exactly one");
  out->samples = std::move(v);
  return out;
}

at::Tensor ServedModel::predict(const data::Batch& batch) const {
  const auto& device = pipeline_.workflow.device;
  torch::NoGradGuard no_grad;
  engine::AutocastGuard ac(pipeline_.amp, pipeline_.cpu_bf16, device);
  return pipeline_.inferer->infer(batch.tensors.at("image").to(device), pipeline_.predictor)
      .to(torch::kCPU, torch::kFloat);
}

InferResult ServedModel::infer(const PreparedImage& image) {
  if (interactive())
    throw Error("model '" + info_.name + "' is interactive: it needs foreground/background clicks");
  InferResult r;
  r.times.read = image.read_seconds;
  r.times.pre = image.pre_seconds;
  auto batch = data::collate(image.samples);
  auto t0 = Clock::now();
  const at::Tensor pred = predict(batch);
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

Clicks Clicks::from_params(const nlohmann::json& params, int dims) {
  Clicks c;
  for (const auto* key : {"foreground", "background"}) {
    if (!params.contains(key) || params[key].is_null()) continue;
    const auto& list = params[key];
    if (!list.is_array()) throw Error(std::string("params.") + key + " must be a list of points");
    auto& out = std::string(key) == "foreground" ? c.foreground : c.background;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto& p = list[i];
      if (!p.is_array() || static_cast<int>(p.size()) != dims)
        throw Error(fmt::format("params.{}[{}] must be a point of {} voxel indices", key, i, dims));
      std::vector<double> v;
      for (const auto& x : p) {
        if (!x.is_number())
          throw Error(fmt::format("params.{}[{}] holds a coordinate that is no number", key, i));
        v.push_back(x.get<double>());
      }
      out.push_back(v);
    }
  }
  return c;
}

Clicks Clicks::for_model(const nlohmann::json& params, const std::string& type, int dims) {
  if (type != "annotation") return from_params(params, dims);
  const char* key =
      params.contains("points") && !params["points"].is_null() ? "points" : "foreground";
  nlohmann::json as_clicks = nlohmann::json::object();
  if (params.contains(key)) as_clicks["foreground"] = params[key];
  Clicks c;
  try {
    c = from_params(as_clicks, dims);
  } catch (const Error& e) {
    std::string what = e.what();
    const auto at = what.find("params.foreground");
    if (at != std::string::npos) what.replace(at, 17, std::string("params.") + key);
    throw Error(what);
  }
  if (c.foreground.size() < 6)
    throw Error(
        fmt::format("an annotation (DEXTR3D) model needs at least 6 extreme points in "
                    "params.points as [[x, y, z], ...] voxel indices; got {}",
                    c.foreground.size()));
  return c;
}

Clicks Clicks::for_labels(const nlohmann::json& params,
                          const nlohmann::ordered_json& labels,
                          int dims) {
  Clicks c;
  std::string first;
  for (const auto& [name, value] : labels.items())
    if (name != "background" && first.empty()) first = name;
  const auto plain = from_params(params, dims);  // foreground / background
  for (const auto& [name, value] : labels.items()) {
    std::vector<std::vector<double>> pts;
    if (params.contains(name) && !params[name].is_null()) {
      nlohmann::json as_clicks = {{"foreground", params[name]}};
      try {
        pts = from_params(as_clicks, dims).foreground;
      } catch (const Error& e) {
        std::string what = e.what();
        const auto at = what.find("params.foreground");
        if (at != std::string::npos) what.replace(at, 17, "params[\"" + name + "\"]");
        throw Error(what);
      }
    }
    const auto& extra =
        name == "background" ? plain.background : (name == first ? plain.foreground : pts);
    if (&extra != &pts) pts.insert(pts.end(), extra.begin(), extra.end());
    c.by_label.emplace_back(name, std::move(pts));
  }
  return c;
}

namespace {

/// a @ [x, y, z, 1] for a 4x4 row-major affine.
std::array<double, 3> apply_affine(const Affine& a, const std::array<double, 3>& x) {
  std::array<double, 3> y{};
  for (int r = 0; r < 3; ++r)
    y[r] = a[r * 4] * x[0] + a[r * 4 + 1] * x[1] + a[r * 4 + 2] * x[2] + a[r * 4 + 3];
  return y;
}

/// The clicks (voxel indices of the input image, checked to lie in it) carried through `to_base`
/// onto the prepared grid of `shape`, as the guidance value: [[fg...], [bg...]], or for DeepEdit
/// {name: [[h, w, d], ...]} in the model's label order.
std::string click_guidance(const Clicks& clicks,
                           bool deepedit,
                           const std::vector<int64_t>& in_shape,
                           const Affine& to_base,
                           const std::vector<int64_t>& shape) {
  std::vector<const std::vector<std::vector<double>>*> lists{&clicks.foreground,
                                                             &clicks.background};
  if (deepedit) {
    lists.clear();
    for (const auto& [name, pts] : clicks.by_label) lists.push_back(&pts);
  }
  nlohmann::json guidance = nlohmann::json::array();
  for (std::size_t g = 0; g < lists.size(); ++g) guidance.push_back(nlohmann::json::array());
  int group = 0;
  for (const auto* list : lists) {
    for (const auto& p : *list) {
      for (std::size_t d = 0; d < 3; ++d) {
        if (p[d] < 0 || p[d] > static_cast<double>(in_shape[d] - 1))
          throw Error(fmt::format("click [{}, {}, {}] lies outside the image ({} x {} x {} voxels)",
                                  p[0], p[1], p[2], in_shape[0], in_shape[1], in_shape[2]));
      }
      const auto v = apply_affine(to_base, {p[0], p[1], p[2]});
      nlohmann::json q = nlohmann::json::array();
      for (std::size_t d = 0; d < 3; ++d)
        q.push_back(std::clamp<int64_t>(std::llround(v[d]), 0, shape[d] - 1));
      guidance[static_cast<std::size_t>(group)].push_back(q);
    }
    ++group;
  }
  if (deepedit) {  // {name: [[h, w, d], ...]} in the model's label order
    nlohmann::ordered_json named = nlohmann::ordered_json::object();
    for (std::size_t g = 0; g < clicks.by_label.size(); ++g)
      named[clicks.by_label[g].first] = nlohmann::ordered_json::parse(guidance[g].dump());
    return named.dump();
  }
  return guidance.dump();
}

}  // namespace

Clicks ServedModel::clicks_from(const nlohmann::json& params) const {
  if (info_.type == "deepedit") return Clicks::for_labels(params, info_.click_labels);
  return Clicks::for_model(params, info_.type);
}

InferResult ServedModel::infer_clicks(const PreparedImage& image, const Clicks& clicks) {
  if (!interactive())
    throw Error("model '" + info_.name + "' takes no clicks (it is a " + info_.type + " model)");
  const bool deepedit = info_.type == "deepedit";
  if (clicks.empty() && !deepedit)
    throw Error("no clicks: give params.foreground and/or params.background");
  InferResult r;
  r.times.read = image.read_seconds;
  r.times.pre = image.pre_seconds;
  auto t0 = Clock::now();
  // A shallow copy: the steps from the crop on make new tensors, the cached ones stay as they are.
  transforms::Sample s = image.samples.at(0);
  // The prepared image's geometry (copied: the sample moves into the pipeline below).
  struct Geometry {
    Affine affine, original_affine;
    std::vector<int64_t> original_shape;
  };
  const Geometry base{s.image("image").affine, s.image("image").original_affine,
                      s.image("image").original_shape};
  const auto shape = s.image("image").spatial_shape();
  if (shape.size() != 3) throw Error("interactive serving needs a 3-D image");
  const std::vector<int64_t> in_shape = base.original_shape.empty() ? shape : base.original_shape;
  const Affine in_affine = base.original_shape.empty() ? base.affine : base.original_affine;
  s.set("guidance",
        click_guidance(clicks, deepedit, in_shape, matmul(inverse(base.affine), in_affine), shape));
  transforms::Rng rng(0);
  auto v = pipeline_.pre->run({std::move(s)}, rng, click_step_ + 1, pre_size_);
  if (v.size() != 1) throw Error("the click steps of the pre_transforms made several samples");
  r.click_pre = since(t0);
  r.times.pre = image.pre_seconds + r.click_pre;
  auto batch = data::collate(std::move(v));
  t0 = Clock::now();
  const at::Tensor pred = predict(batch);
  r.times.network = since(t0);
  t0 = Clock::now();
  auto samples = engine::decollate(batch, pred, nullptr, rng);
  if (pipeline_.post) samples = pipeline_.post->run(std::move(samples), rng, 0, restore_step_);
  const auto& out = samples.at(0);
  at::Tensor mask = out.image("pred").data.to(at::kFloat);
  mask = mask.size(0) > 1 ? mask.argmax(0, true).to(at::kFloat) : mask.round();
  // Back to the crop's size, into the prepared grid at the crop's place.
  std::vector<int64_t> start(3, 0), size = shape;
  if (out.has("foreground_start_coord") && out.has("foreground_cropped_shape")) {
    start = std::get<std::vector<int64_t>>(out.get("foreground_start_coord"));
    const auto cs = std::get<std::vector<int64_t>>(out.get("foreground_cropped_shape"));
    size.assign(cs.end() - 3, cs.end());
  }
  if (mask.sizes().slice(1).vec() != size)
    mask = transforms::spatial::interpolate(mask, size, "nearest", std::nullopt);
  // The mask as a region of the prepared grid (the crop's box, clipped to the image).
  std::vector<int64_t> a(3), b(3);
  auto region = mask;
  for (int64_t d = 0; d < 3; ++d) {
    a[d] = std::clamp<int64_t>(start[d], 0, shape[d]);
    b[d] = std::clamp<int64_t>(start[d] + size[d], a[d], shape[d]);
    region = region.slice(d + 1, 0, b[d] - a[d]);
  }
  // Its box in the input's voxel indices (the reply's "crop"), and one voxel more for the
  // resampling, which then covers only that box instead of the whole volume.
  const Affine to_input = matmul(inverse(in_affine), base.affine);
  std::array<double, 3> lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (int corner = 0; corner < 8; ++corner) {
    std::array<double, 3> c{};
    for (int d = 0; d < 3; ++d)
      c[d] = static_cast<double>((corner >> d) & 1 ? std::max(b[d] - 1, a[d]) : a[d]);
    const auto w = apply_affine(to_input, c);
    for (int d = 0; d < 3; ++d) lo[d] = std::min(lo[d], w[d]), hi[d] = std::max(hi[d], w[d]);
  }
  std::vector<int64_t> sub_start(3), sub_size(3);
  for (int d = 0; d < 3; ++d) {
    const auto n = in_shape[static_cast<std::size_t>(d)] - 1;
    r.crop.emplace_back(std::clamp<int64_t>(std::llround(lo[d]), 0, n),
                        std::clamp<int64_t>(std::llround(hi[d]), 0, n));
    sub_start[d] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(lo[d])) - 1, 0, n);
    sub_size[d] =
        std::clamp<int64_t>(static_cast<int64_t>(std::ceil(hi[d])) + 1, 0, n) - sub_start[d] + 1;
  }
  const transforms::spatial::Spatial src{region,
                                         transforms::croppad::translate_affine(base.affine, a)};
  const auto sub = transforms::spatial::spatial_resample(
      src, transforms::croppad::translate_affine(in_affine, sub_start), sub_size, "nearest",
      "zeros", false, at::kFloat);
  auto label = at::zeros({1, in_shape[0], in_shape[1], in_shape[2]}, at::kByte);
  label.slice(1, sub_start[0], sub_start[0] + sub_size[0])
      .slice(2, sub_start[1], sub_start[1] + sub_size[1])
      .slice(3, sub_start[2], sub_start[2] + sub_size[2])
      .copy_(sub.data.round().clamp(0, 255).to(at::kByte));
  r.label.data = label;
  r.label.affine = in_affine;
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
