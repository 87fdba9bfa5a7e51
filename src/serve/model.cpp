#include "serve/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "core/atomic_file.h"
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
#include "transforms/deepgrow/functional.h"
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
std::string click_type(const ConfigNode& cfg, nlohmann::ordered_json* labels, int* slice_axis) {
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
      if (is(n, "AddGuidanceFromPoints")) {
        clicks = true;
        // MONAI's default rank is 2; the slice axis is `axis` (default 0).
        const auto arg = [&](const char* k, int64_t def) {
          return t.has("args") && t.at("args").has(k) && t.at("args").at(k).is_number()
                     ? t.at("args").at(k).as<int64_t>()
                     : def;
        };
        const auto dims = arg("dimensions", arg("spatial_dims", 2));
        if (dims == 2) *slice_axis = static_cast<int>(arg("axis", 0));
      }
      extreme = extreme || is(n, "AddExtremePointsChannel");
      if (is(n, "AddGuidanceFromPointsDeepEdit")) {
        deepedit = true;
        if (t.has("args") && t.at("args").has("label_names") &&
            t.at("args").at("label_names").is_object())
          *labels = t.at("args").at("label_names").json();
      }
    }
  }
  if (deepedit || extreme) *slice_axis = -1;
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
  if (type == "pipeline") {  // clicked in 3-D: Slicer then sends every point
    j["deepgrow"] = "3D";
    j["models"] = pipeline;
  }
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

std::optional<std::string> set_model(const std::string& set) {
  const auto eq = set.find('=');
  const auto colon = set.find(':');
  if (colon == std::string::npos || (eq != std::string::npos && colon > eq) || colon == 0)
    return std::nullopt;
  return set.substr(0, colon);
}

std::vector<std::string> sets_for_model(const std::vector<std::string>& sets,
                                        const std::string& name) {
  std::vector<std::string> out;
  for (const auto& set : sets) {
    const auto model = set_model(set);
    if (!model)
      out.push_back(set);
    else if (*model == name)
      out.push_back(set.substr(model->size() + 1));
  }
  return out;
}

bool is_pipeline_folder(const std::string& folder) {
  const auto aiaa = fs::path(folder) / "config" / "config_aiaa.json";
  if (!fs::is_regular_file(aiaa) ||
      fs::exists(fs::path(folder) / "config" / "config_inference.json"))
    return false;
  try {
    const auto doc = nlohmann::json::parse(read_file(aiaa));
    return doc.is_object() && doc.value("type", "") == "pipeline";
  } catch (const std::exception&) {
    return false;  // describe_model names the problem
  }
}

namespace {

/// A pipeline folder's config_aiaa.json: `models` (and `batch_size`, `min_point_density`) from
/// the first of inference.args, inference, pipeline.args, pipeline and the top level that holds
/// `models` (Clara's DeepgrowInferencePipeline arguments).
void read_pipeline(const std::string& file, ModelInfo& info) {
  const auto doc = ConfigNode::load(file);
  info.type = "pipeline";
  if (auto d = doc.get_optional<std::string>("description")) info.description = *d;
  if (doc.has("version"))
    info.version = doc.at("version").is_string() ? doc.at("version").as<std::string>()
                                                 : doc.at("version").dump();
  if (doc.has("labels"))
    for (std::size_t i = 0; i < doc.at("labels").size(); ++i)
      info.labels.push_back(doc.at("labels").at(i).as<std::string>());
  std::optional<ConfigNode> args;
  for (const auto* outer : {"inference", "pipeline"}) {
    if (args || !doc.has(outer)) continue;
    const auto o = doc.at(outer);
    if (o.has("args") && o.at("args").has("models"))
      args = o.at("args");
    else if (o.has("models"))
      args = o;
  }
  if (!args && doc.has("models")) args = doc;
  if (!args)
    throw ConfigError(file, "",
                      "a pipeline model needs \"models\" (in inference.args, e.g. "
                      "[\"deepgrow_2d\", \"deepgrow_3d\"]): the served models it chains");
  const auto models = args->at("models");
  if (!models.is_array() || models.size() != 2)
    throw models.error("a pipeline chains two models: a 2-D DeepGrow model and a 3-D model");
  for (std::size_t i = 0; i < models.size(); ++i)
    info.pipeline.push_back(models.at(i).as<std::string>());
  if (args->has("batch_size")) {
    const auto b = args->at("batch_size").as<int64_t>();
    if (b < 1) throw args->at("batch_size").error("batch_size must be at least 1");
    info.pipeline_batch_size = static_cast<std::size_t>(b);
  }
  if (args->has("min_point_density"))
    info.pipeline_min_point_density = args->at("min_point_density").as<int64_t>();
  if (doc.has("inference") && doc.at("inference").has("meta_data"))
    info.meta_data = nlohmann::json::parse(doc.at("inference").at("meta_data").dump());
}

}  // namespace

ModelInfo describe_model(const std::string& source,
                         const std::string& name,
                         const std::vector<std::string>& sets) {
  if (!fs::exists(source)) throw IoError(source, "no such MMAR folder or plan");
  ModelInfo info;
  info.source = fs::absolute(source).lexically_normal().string();
  std::string stem = fs::path(info.source).filename().string();
  const bool pipeline = is_pipeline_folder(source);
  if (!pipeline && is_file_model(source)) {
    stem = fs::path(info.source).stem().string();
    if (stem == "model") stem = fs::path(info.source).parent_path().filename().string();
  }
  info.name = name.empty() ? stem : name;
  info.sets = sets_for_model(sets, info.name);
  if (pipeline) {
    read_pipeline((fs::path(info.source) / "config" / "config_aiaa.json").string(), info);
  } else if (is_file_model(source)) {
    const auto plan = exporter::load_plan(source);
    if (!plan.meta.contains("config_inference"))
      throw IoError(source, "the plan carries no config_inference.json, so it cannot be served");
    const auto cfg = ConfigNode::parse(plan.meta["config_inference"].get<std::string>(),
                                       source + ":config_inference.json");
    if (cfg.has("inferer") && cfg.at("inferer").has("args") &&
        cfg.at("inferer").at("args").has("roi_size"))
      info.roi = cfg.at("inferer").at("args").at("roi_size").as<std::vector<int64_t>>();
    if (const auto t = click_type(cfg, &info.click_labels, &info.slice_axis); !t.empty())
      info.type = t;
    info.model_file = info.source;
  } else {
    const auto files = mmar::locate_config(source, "", "", "config_inference.json");
    mmar::ResolveOptions ro;
    ro.sets = info.sets;
    const auto cfg = mmar::resolve_config(files, ro);
    if (cfg.doc.has("inferer") && cfg.doc.at("inferer").has("args") &&
        cfg.doc.at("inferer").at("args").has("roi_size"))
      info.roi = cfg.doc.at("inferer").at("args").at("roi_size").as<std::vector<int64_t>>();
    if (const auto t = click_type(cfg.doc, &info.click_labels, &info.slice_axis); !t.empty())
      info.type = t;
    read_model_docs(fs::path(info.source) / "config", info);
  }
  if (info.description.empty()) info.description = "Barton model from " + info.source;
  if (info.roi.size() == 2 || info.slice_axis >= 0) info.dimension = 2;
  if (info.meta_data.contains("deepgrow") && info.meta_data["deepgrow"] == "2D" &&
      info.slice_axis < 0)
    throw IoError(info.source,
                  "config_aiaa.json says deepgrow \"2D\" but config_inference.json's "
                  "AddGuidanceFromPointsd is not 2-D (spatial_dims 2)");
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

/// The extent, through `a`, of the voxel box whose corners are `first` and `last` (inclusive):
/// the smallest and largest mapped coordinate per axis over its 8 corners.
std::pair<std::array<double, 3>, std::array<double, 3>> mapped_box(
    const Affine& a, const std::array<double, 3>& first, const std::array<double, 3>& last) {
  std::array<double, 3> lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (int corner = 0; corner < 8; ++corner) {
    std::array<double, 3> c{};
    for (int d = 0; d < 3; ++d) c[d] = (corner >> d) & 1 ? last[d] : first[d];
    const auto w = apply_affine(a, c);
    for (int d = 0; d < 3; ++d) lo[d] = std::min(lo[d], w[d]), hi[d] = std::max(hi[d], w[d]);
  }
  return {lo, hi};
}

/// The clicks (voxel indices of the input image, checked to lie in it) carried through `to_base`
/// onto the prepared grid of `shape`, as the guidance value: [[fg...], [bg...]], or for DeepEdit
/// {name: [[h, w, d], ...]} in the model's label order.
std::string click_guidance(const Clicks& clicks,
                           bool deepedit,
                           const std::vector<int64_t>& in_shape,
                           const Affine& to_base,
                           const std::vector<int64_t>& shape,
                           int slice_axis,
                           int64_t* slice) {
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
  if (slice_axis >= 0) {
    // 2-D DeepGrow, as AddGuidanceFromPointsd with spatial_dims 2: the smallest clicked slice
    // along the axis; the clicks on it, without that coordinate; [fg, bg, slice].
    const auto ax = static_cast<std::size_t>(slice_axis);
    *slice = std::numeric_limits<int64_t>::max();
    for (const auto& group : guidance)
      for (const auto& p : group) *slice = std::min(*slice, p[ax].get<int64_t>());
    nlohmann::json flat = nlohmann::json::array();
    for (const auto& group : guidance) {
      nlohmann::json g2 = nlohmann::json::array();
      for (const auto& p : group) {
        if (p[ax].get<int64_t>() != *slice) continue;
        nlohmann::json q = nlohmann::json::array();
        for (std::size_t d = 0; d < 3; ++d)
          if (d != ax) q.push_back(p[d]);
        g2.push_back(q);
      }
      flat.push_back(g2);
    }
    flat.push_back(*slice);
    return flat.dump();
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

namespace {

/// The prepared image's geometry and the input's (what a mask goes back to).
struct Geometry {
  Affine base, input;
  std::vector<int64_t> shape, in_shape;
  static Geometry of(const transforms::Sample& s) {
    const auto& img = s.image("image");
    Geometry g;
    g.base = img.affine;
    g.shape = img.spatial_shape();
    if (g.shape.size() != 3) throw Error("interactive serving needs a 3-D image");
    g.in_shape = img.original_shape.empty() ? g.shape : img.original_shape;
    g.input = img.original_shape.empty() ? img.affine : img.original_affine;
    return g;
  }
  /// Input voxel indices -> prepared voxel indices.
  Affine to_base() const { return matmul(inverse(base), input); }
};

}  // namespace

std::vector<ServedModel::Region> ServedModel::run_click_steps(
    const transforms::Sample& prepared,
    const std::vector<std::pair<std::string, int64_t>>& guidances,
    std::size_t batch_size,
    InferResult& r) {
  const auto shape = prepared.image("image").spatial_shape();
  const int axis = info_.slice_axis;
  const auto nd = static_cast<std::size_t>(axis >= 0 ? 2 : 3);
  std::vector<Region> out;
  transforms::Rng rng(0);
  for (std::size_t first = 0; first < guidances.size(); first += batch_size) {
    const auto last = std::min(guidances.size(), first + batch_size);
    auto t0 = Clock::now();
    std::vector<transforms::Sample> v;
    for (std::size_t i = first; i < last; ++i) {
      // A shallow copy: the steps from the crop on make new tensors; the cached ones stay.
      transforms::Sample s = prepared;
      s.set("guidance", guidances[i].first);
      auto one = pipeline_.pre->run({std::move(s)}, rng, click_step_ + 1, pre_size_);
      if (one.size() != 1)
        throw Error("the click steps of the pre_transforms made several samples");
      v.push_back(std::move(one[0]));
    }
    r.click_pre += since(t0);
    auto batch = data::collate(std::move(v));
    t0 = Clock::now();
    const at::Tensor pred = predict(batch);
    r.times.network += since(t0);
    t0 = Clock::now();
    auto samples = engine::decollate(batch, pred, nullptr, rng);
    if (pipeline_.post) samples = pipeline_.post->run(std::move(samples), rng, 0, restore_step_);
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const auto& o = samples[i];
      at::Tensor mask = o.image("pred").data.to(at::kFloat);
      mask = mask.size(0) > 1 ? mask.argmax(0, true).to(at::kFloat) : mask.round();
      // Back to the crop's size, at the crop's place (a 2-D model's mask: in its slice).
      std::vector<int64_t> start(nd, 0), size = shape;
      if (axis >= 0) size.erase(size.begin() + axis);
      if (o.has("foreground_start_coord") && o.has("foreground_cropped_shape")) {
        start = std::get<std::vector<int64_t>>(o.get("foreground_start_coord"));
        const auto cs = std::get<std::vector<int64_t>>(o.get("foreground_cropped_shape"));
        if (start.size() != nd || cs.size() < nd)
          throw Error(fmt::format("model '{}': its crop has {} axes, the model {}", info_.name,
                                  start.size(), nd));
        size.assign(cs.end() - static_cast<std::ptrdiff_t>(nd), cs.end());
      }
      if (static_cast<std::size_t>(mask.dim()) != nd + 1)
        throw Error(fmt::format("model '{}': its mask has {} spatial axes, not {}", info_.name,
                                mask.dim() - 1, nd));
      if (mask.sizes().slice(1).vec() != size)
        mask = transforms::spatial::interpolate(mask, size, "nearest", std::nullopt);
      if (axis >= 0) {
        mask = mask.unsqueeze(axis + 1);
        start.insert(start.begin() + axis, guidances[first + i].second);
        size.insert(size.begin() + axis, 1);
      }
      // The mask as a region of the prepared grid (the crop's box, clipped to the image).
      Region reg;
      reg.mask = mask;
      for (int64_t d = 0; d < 3; ++d) {
        const auto a = std::clamp<int64_t>(start[d], 0, shape[d]);
        const auto b = std::clamp<int64_t>(start[d] + size[d], a, shape[d]);
        reg.mask = reg.mask.slice(d + 1, a - start[d], b - start[d]);
        reg.start.push_back(a);
        reg.end.push_back(b);
      }
      out.push_back(std::move(reg));
    }
    r.times.post += since(t0);
  }
  return out;
}

namespace {

/// Regions of the prepared grid pasted together (the larger value wins) and resampled onto the
/// input's grid: r.label, and r.crop = their box in input voxel indices.
void paste_to_input(const std::vector<ServedModel::Region>& regions,
                    const Geometry& g,
                    InferResult& r) {
  std::vector<int64_t> a(3, std::numeric_limits<int64_t>::max()), b(3, 0);
  for (const auto& reg : regions)
    for (std::size_t d = 0; d < 3; ++d)
      a[d] = std::min(a[d], reg.start[d]), b[d] = std::max(b[d], reg.end[d]);
  auto label = at::zeros({1, g.in_shape[0], g.in_shape[1], g.in_shape[2]}, at::kByte);
  r.label.affine = g.input;
  r.label.file_dtype = "uint8";
  if (regions.empty()) {
    r.label.data = label;
    return;
  }
  for (std::size_t d = 0; d < 3; ++d) b[d] = std::max(b[d], a[d]);
  auto canvas = at::zeros({1, b[0] - a[0], b[1] - a[1], b[2] - a[2]}, at::kFloat);
  for (const auto& reg : regions) {
    auto view = canvas;
    for (std::size_t d = 0; d < 3; ++d)
      view = view.slice(static_cast<int64_t>(d) + 1, reg.start[d] - a[d], reg.end[d] - a[d]);
    view.copy_(at::maximum(view, reg.mask.to(at::kFloat)));
  }
  // The box in the input's voxel indices (the reply's "crop"), and one voxel more for the
  // resampling, which then covers only that box instead of the whole volume.
  std::array<double, 3> first{}, last{};
  for (int d = 0; d < 3; ++d) {
    first[d] = static_cast<double>(a[d]);
    last[d] = static_cast<double>(std::max(b[d] - 1, a[d]));
  }
  const auto [lo, hi] = mapped_box(matmul(inverse(g.input), g.base), first, last);
  std::vector<int64_t> sub_start(3), sub_size(3);
  for (int d = 0; d < 3; ++d) {
    const auto n = g.in_shape[static_cast<std::size_t>(d)] - 1;
    r.crop.emplace_back(std::clamp<int64_t>(std::llround(lo[d]), 0, n),
                        std::clamp<int64_t>(std::llround(hi[d]), 0, n));
    sub_start[d] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(lo[d])) - 1, 0, n);
    sub_size[d] =
        std::clamp<int64_t>(static_cast<int64_t>(std::ceil(hi[d])) + 1, 0, n) - sub_start[d] + 1;
  }
  const transforms::spatial::Spatial src{canvas, transforms::croppad::translate_affine(g.base, a)};
  const auto sub = transforms::spatial::spatial_resample(
      src, transforms::croppad::translate_affine(g.input, sub_start), sub_size, "nearest", "zeros",
      false, at::kFloat);
  label.slice(1, sub_start[0], sub_start[0] + sub_size[0])
      .slice(2, sub_start[1], sub_start[1] + sub_size[1])
      .slice(3, sub_start[2], sub_start[2] + sub_size[2])
      .copy_(sub.data.round().clamp(0, 255).to(at::kByte));
  r.label.data = label;
}

}  // namespace

InferResult ServedModel::infer_clicks(const PreparedImage& image, const Clicks& clicks) {
  if (!interactive())
    throw Error("model '" + info_.name + "' takes no clicks (it is a " + info_.type + " model)");
  const bool deepedit = info_.type == "deepedit";
  if (clicks.empty() && !deepedit)
    throw Error("no clicks: give params.foreground and/or params.background");
  InferResult r;
  r.times.read = image.read_seconds;
  const auto t0 = Clock::now();
  const auto& prepared = image.samples.at(0);
  const auto g = Geometry::of(prepared);
  int64_t slice = 0;
  const auto guidance =
      click_guidance(clicks, deepedit, g.in_shape, g.to_base(), g.shape, info_.slice_axis, &slice);
  r.click_pre = since(t0);
  const auto regions = run_click_steps(prepared, {{guidance, slice}}, 1, r);
  r.times.pre = image.pre_seconds + r.click_pre;
  const auto t1 = Clock::now();
  paste_to_input(regions, g, r);
  r.times.post += since(t1);
  return r;
}

InferResult ServedModel::refine_slices(const PreparedImage& image,
                                       const io::Image& coarse,
                                       const Clicks& clicks,
                                       const SliceOptions& o) {
  const int axis = info_.slice_axis;
  if (axis < 0)
    throw Error("model '" + info_.name + "' is no 2-D DeepGrow model, so it cannot refine slices");
  InferResult r;
  r.times.read = image.read_seconds;
  const auto t0 = Clock::now();
  const auto& prepared = image.samples.at(0);
  const auto g = Geometry::of(prepared);
  // The coarse mask on the prepared grid, resampled only inside the box of its labelled voxels
  // (with a margin), not over the whole volume: m covers prepared voxels [lo, lo + size).
  const auto fg = (coarse.data[0] > 0).nonzero();
  std::vector<int64_t> lo(3, 0), size(3, 0);
  at::Tensor m = at::zeros({0, 0, 0}, at::kFloat);
  if (fg.size(0) > 0) {
    const auto mn = std::get<0>(fg.min(0)), mx = std::get<0>(fg.max(0));
    const Affine to_base = g.to_base();
    std::array<double, 3> first{}, last{};
    for (int d = 0; d < 3; ++d) {
      first[d] = static_cast<double>(mn[d].item<int64_t>());
      last[d] = static_cast<double>(mx[d].item<int64_t>());
    }
    const auto [a, b] = mapped_box(to_base, first, last);
    for (std::size_t d = 0; d < 3; ++d) {
      // Half an input voxel, in prepared voxels along d, plus one: what nearest-neighbour
      // resampling can reach beyond the labelled voxels' centres.
      double half = 0;
      for (std::size_t j = 0; j < 3; ++j) half += 0.5 * std::abs(to_base[d * 4 + j]);
      const auto margin = static_cast<int64_t>(std::ceil(half)) + 1;
      lo[d] =
          std::clamp<int64_t>(static_cast<int64_t>(std::floor(a[d])) - margin, 0, g.shape[d] - 1);
      const auto hi =
          std::clamp<int64_t>(static_cast<int64_t>(std::ceil(b[d])) + margin, 0, g.shape[d] - 1);
      size[d] = hi - lo[d] + 1;
    }
    const transforms::spatial::Spatial src{coarse.data.to(at::kFloat), coarse.affine};
    m = transforms::spatial::spatial_resample(src,
                                              transforms::croppad::translate_affine(g.base, lo),
                                              size, "nearest", "zeros", false, at::kFloat)
            .data[0];
  }
  // The user's clicks on the prepared grid, 3-D: [[fg...], [bg...]].
  int64_t unused = 0;
  const auto user = nlohmann::json::parse(
      click_guidance(clicks, false, g.in_shape, g.to_base(), g.shape, -1, &unused));
  const auto on_slice = [&](const nlohmann::json& group, int64_t k) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : group) {
      if (p[static_cast<std::size_t>(axis)].get<int64_t>() != k) continue;
      nlohmann::json q = nlohmann::json::array();
      for (int d = 0; d < 3; ++d)
        if (d != axis) q.push_back(p[static_cast<std::size_t>(d)]);
      out.push_back(q);
    }
    return out;
  };
  std::vector<std::pair<std::string, int64_t>> guidances;
  const auto ax = static_cast<std::size_t>(axis);
  for (int64_t mk = 0; mk < size[ax]; ++mk) {
    const int64_t k = lo[ax] + mk;  // the prepared grid's slice
    const auto sl = m.select(axis, mk) > 0.5;
    if (!sl.any().item<bool>()) continue;
    const auto [comp, n] = transforms::deepgrow::label_components(sl);
    const auto counts = at::bincount(comp.flatten().to(at::kLong), {}, n + 1);
    const auto largest = counts.slice(0, 1).argmax().item<int64_t>() + 1;
    if (counts[largest].item<int64_t>() < o.min_point_density) continue;
    const auto region = comp == static_cast<int>(largest);
    const auto flat =
        transforms::deepgrow::chessboard_distance(region).flatten().argmax().item<int64_t>();
    // Back to the whole slice's indices: the in-plane axes' box starts.
    std::vector<int64_t> off;
    for (std::size_t d = 0; d < 3; ++d)
      if (d != ax) off.push_back(lo[d]);
    const auto w = sl.size(1);
    auto clicks2d = on_slice(user[0], k);
    clicks2d.insert(clicks2d.begin(),
                    nlohmann::json::array({flat / w + off[0], flat % w + off[1]}));
    guidances.emplace_back(nlohmann::json::array({clicks2d, on_slice(user[1], k), k}).dump(), k);
  }
  r.click_pre = since(t0);
  r.refined_slices = static_cast<int64_t>(guidances.size());
  const auto regions =
      run_click_steps(prepared, guidances, std::max<std::size_t>(1, o.batch_size), r);
  r.times.pre = image.pre_seconds + r.click_pre;
  const auto t1 = Clock::now();
  paste_to_input(regions, g, r);
  r.times.post += since(t1);
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
