#include "mmar/workflow.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "core/build_args.h"
#include "core/errors.h"
#include "core/logging.h"
#include "data/register.h"
#include "engine/handlers.h"
#include "engine/interaction.h"
#include "export/plan.h"
#include "io/torch_file.h"
#include "mmar/builder.h"

namespace barton::mmar {

namespace fs = std::filesystem;
using engine::NamedMetric;

std::string variable(const ResolvedConfig& config, const std::string& name) {
  if (!config.variables.has(name)) return "";
  const auto v = config.variables.at(name);
  if (v.is_string()) return v.as<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

namespace {

using A = ArgType;

bool truthy(const ResolvedConfig& c, const std::string& name, bool fallback) {
  if (!c.variables.has(name)) return fallback;
  const auto v = c.variables.at(name);
  if (v.is_bool()) return v.as<bool>();
  if (v.is_string()) {
    const auto s = v.as<std::string>();
    return s == "true" || s == "True" || s == "1";
  }
  if (v.is_number()) return v.as<double>() != 0;
  return fallback;
}

torch::Device pick_device(const ResolvedConfig& c, const std::string& want) {
  if (want == "cpu") return torch::kCPU;
  if (want.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("--device " + want + ": this LibTorch build or machine has no CUDA device");
    return torch::Device(want);
  }
  if (truthy(c, "use_gpu", true) && torch::cuda::is_available())
    return torch::Device(torch::kCUDA, 0);
  return torch::kCPU;
}

class Builder {
 public:
  Builder(const ResolvedConfig& c, Workflow& wf, const Registries& reg)
      : c_(c), wf_(wf), reg_(reg) {}

  BuildContext ctx() {
    BuildContext b;
    b.mmar_root = c_.files.mmar_root;
    b.seed = wf_.seed;
    b.lookup = [this](const std::string& name) -> std::any {
      const auto n = strip_ref(name);
      if (auto it = objects_[current_].find(n); it != objects_[current_].end()) return it->second;
      if (auto it = wf_.shared.find(n); it != wf_.shared.end()) return it->second;
      for (auto& [sec, objs] : objects_) {
        if (auto it = objs.find(n); it != objs.end()) return it->second;
      }
      return {};
    };
    return b;
  }

  void set_section(const std::string& s) { current_ = s; }
  std::map<std::string, std::any>& objects() { return objects_[current_]; }

  /// model, loss, optimizer, lr_scheduler of a training section: shared by every section.
  void build_training_parts(const ConfigNode& sec) {
    torch::manual_seed(wf_.seed);
    auto net =
        std::shared_ptr<nets::Network>(reg_.networks.create(sec.at("model"), ctx(), {"rank"}));
    if (!net) throw ConfigError(sec.source(), sec.pointer() + "/model", "the model is disabled");
    net->to(wf_.device);
    set_network(net, sec.at("model"));
    if (sec.has("loss")) {
      wf_.shared["loss"] =
          std::shared_ptr<losses::Loss>(reg_.losses.create(sec.at("loss"), ctx(), {"rank"}));
    }
    if (sec.has("optimizer")) {
      auto opt = std::shared_ptr<optim::Optimizer>(
          reg_.optimizers.create(sec.at("optimizer"), ctx(), {"rank"}));
      wf_.shared["optimizer"] = opt.get();
      wf_.shared["optimizer!"] = opt;
    }
    if (sec.has("lr_scheduler")) {
      auto s = std::shared_ptr<optim::LrScheduler>(
          reg_.lr_schedulers.create(sec.at("lr_scheduler"), ctx(), {"rank"}));
      if (s) {
        wf_.shared["lr_scheduler"] = s.get();
        wf_.shared["lr_scheduler!"] = s;
      }
    }
  }

  void set_network(const std::shared_ptr<nets::Network>& net, const ConfigNode& spec) {
    wf_.network = net;
    nlohmann::ordered_json conf;
    conf["name"] = spec.require<std::string>("name");
    conf["args"] = spec.has("args") ? spec.at("args").json() : nlohmann::ordered_json::object();
    wf_.network_config = conf.dump();
    wf_.shared["model"] = net;
    wf_.shared["conf"] = wf_.network_config;
    std::vector<std::pair<std::string, torch::Tensor>> named;
    std::set<const void*> seen;
    for (const auto& p : net->named_parameters(true)) {
      if (seen.insert(p.value().unsafeGetTensorImpl()).second)
        named.emplace_back(p.key(), p.value());
    }
    wf_.shared["model.named_parameters()"] = named;
    wf_.shared["model.predictor"] =
        engine::Predictor([net](const torch::Tensor& x) { return net->forward(x); });
    wf_.shared["model.set_mode"] =
        std::function<void(bool)>([net](bool train) { net->train(train); });
  }

  /// Everything of a section but its trainer / evaluator; without the datalist, dataset and
  /// loader when `with_data` is false (serving one image at a time).
  void build_section(const ConfigNode& sec, bool with_data = true) {
    auto& o = objects();
    auto c = ctx();
    if (sec.has("pre_transforms"))
      o["pre_transforms"] = build_transforms(c_, sec.pointer() + "/pre_transforms", reg_, c);
    if (with_data && sec.has("dataset")) {
      auto items = section_datalist(c_, sec.pointer(), true);
      const auto ds = sec.at("dataset");
      if (items.empty()) {
        throw ConfigError(
            ds.source(), ds.pointer() + "/data_list_key",
            fmt::format("the datalist key '{}' of {} has no cases",
                        ds.get_or<std::string>("data_list_key", "training"),
                        mmar_path(c_, ds.require<std::string>("data_list_file_path"))));
      }
      o["datalist"] = std::move(items);
      o["dataset"] = std::shared_ptr<data::Dataset>(reg_.datasets.create(
          ds, c, {"data_list_file_path", "data_file_base_dir", "data_list_key", "rank"}));
    }
    if (with_data && sec.has("dataloader"))
      o["dataloader"] = std::shared_ptr<data::DataLoader>(
          reg_.dataloaders.create(sec.at("dataloader"), c, {"rank"}));
    if (sec.has("iteration")) {
      auto it = std::shared_ptr<engine::Interaction>(
          reg_.interactions.create(sec.at("iteration"), c, {"rank", "path"}));
      if (it) o["iteration"] = it;
    }
    if (sec.has("inferer"))
      o["inferer"] =
          std::shared_ptr<engine::Inferer>(reg_.inferers.create(sec.at("inferer"), c, {"rank"}));
    if (sec.has("post_transforms"))
      o["post_transforms"] = build_transforms(c_, sec.pointer() + "/post_transforms", reg_, c);
    if (sec.has("key_metric")) o["key_metric"] = metric(sec.at("key_metric"));
    if (sec.has("additional_metrics")) {
      std::vector<NamedMetric> list;
      const auto m = sec.at("additional_metrics");
      for (std::size_t i = 0; i < m.size(); ++i) {
        auto nm = metric(m.at(i));
        if (nm.metric) list.push_back(nm);
      }
      o["additional_metrics"] = list;
    }
  }

  void build_handlers(const ConfigNode& sec) {
    std::vector<std::shared_ptr<engine::Handler>> hs;
    if (sec.has("handlers")) {
      const auto h = sec.at("handlers");
      for (std::size_t i = 0; i < h.size(); ++i) {
        auto x = std::shared_ptr<engine::Handler>(reg_.handlers.create(h.at(i), ctx(), {"rank"}));
        if (x) hs.push_back(x);
      }
    }
    objects()["handlers"] = hs;
  }

  NamedMetric metric(const ConfigNode& spec) {
    auto m = std::shared_ptr<engine::Metric>(
        reg_.metrics.create(spec, ctx(), {"log_label", "is_key_metric", "rank"}));
    if (!m) return {};
    return {spec.has("log_label") ? spec.at("log_label").as<std::string>()
                                  : spec.require<std::string>("name"),
            m};
  }

 private:
  const ResolvedConfig& c_;
  Workflow& wf_;
  const Registries& reg_;
  std::string current_;
  std::map<std::string, std::map<std::string, std::any>> objects_;
};

void common_setup(const ResolvedConfig& c, const WorkflowOptions& options, Workflow& wf) {
  wf.config = c;
  wf.device = pick_device(c, options.device);
  if (c.doc.has("determinism") && c.doc.at("determinism").has("random_seed")) {
    wf.seed = static_cast<uint64_t>(c.doc.at("determinism").at("random_seed").as<int64_t>());
    wf.deterministic = true;
  }
  if (wf.device.is_cuda()) {
    at::globalContext().setBenchmarkCuDNN(truthy(c, "cudnn_benchmark", false));
    const bool tf32 = truthy(c, "tf32", false);
    at::globalContext().setAllowTF32CuBLAS(tf32);
    at::globalContext().setAllowTF32CuDNN(tf32);
  }
  auto dir = [&](const std::string& var, const std::string& fallback) {
    auto v = variable(c, var);
    if (v.empty()) v = fallback;
    return mmar_path(c, v);
  };
  wf.ckpt_dir = dir("MMAR_CKPT_DIR", "models");
  wf.eval_dir = dir("MMAR_EVAL_OUTPUT_PATH", "eval");
}

template <typename T>
T get_ref(const BuildContext& ctx, const ConfigNode& args, std::string_view key, bool required) {
  if (!args.has(key) || args.at(key).is_null()) {
    if (required)
      throw ConfigError(args.source(), args.pointer() + "/" + std::string(key), "is required");
    return T{};
  }
  const auto node = args.at(key);
  return lookup_as<T>(ctx, strip_ref(node.as<std::string>()), node);
}

std::vector<NamedMetric> collect_metrics(const BuildContext& ctx,
                                         const ConfigNode& a,
                                         std::string_view key_arg,
                                         bool& has_key) {
  std::vector<NamedMetric> out;
  has_key = false;
  if (a.given(key_arg)) {
    auto k = get_ref<NamedMetric>(ctx, a, key_arg, false);
    if (k.metric) {
      out.push_back(k);
      has_key = true;
    }
  }
  if (a.given("additional_metrics")) {
    for (auto& m : get_ref<std::vector<NamedMetric>>(ctx, a, "additional_metrics", false))
      out.push_back(m);
  }
  return out;
}

void load_model_entry(Workflow& wf,
                      Builder& b,
                      const ResolvedConfig& c,
                      const ConfigNode& model,
                      const std::string& ckpt_override) {
  // The candidate model files, in config order.
  struct Entry {
    std::string kind, path;
  };
  std::vector<Entry> entries;
  std::optional<ConfigNode> network_spec;
  auto add = [&](const ConfigNode& e) {
    if (e.has("disabled") && e.at("disabled").as<bool>()) return;
    if (e.has("ts_path"))
      entries.push_back({"ts", mmar_path(c, e.at("ts_path").as<std::string>())});
    else if (e.has("ckpt_path"))
      entries.push_back({"ckpt", mmar_path(c, e.at("ckpt_path").as<std::string>())});
    else if (e.has("name"))
      network_spec = e;
  };
  if (model.is_array()) {
    for (std::size_t i = 0; i < model.size(); ++i) add(model.at(i));
  } else {
    add(model);
  }
  // --ckpt / --model: a TorchScript archive (a plan, a MONAI bundle's model.ts) or a state dict.
  if (!ckpt_override.empty())
    entries = {{exporter::is_torchscript(ckpt_override) ? "ts" : "ckpt", ckpt_override}};
  std::vector<std::string> tried;
  const Entry* use = nullptr;
  for (const auto& e : entries) {
    if (fs::exists(e.path)) {
      use = &e;
      break;
    }
    tried.push_back(e.path);
  }
  // Clara's inference config names only the TorchScript file; when it is absent, use the MMAR's
  // checkpoint ({MMAR_CKPT}).
  Entry fallback;
  if (!use && !network_spec) {
    const auto ck = variable(c, "MMAR_CKPT");
    if (!ck.empty() && fs::exists(mmar_path(c, ck))) {
      fallback = {"ckpt", mmar_path(c, ck)};
      use = &fallback;
      if (!tried.empty())
        log::info(fmt::format("{} does not exist; using the checkpoint {}", tried.front(),
                              fallback.path));
    }
  }
  if (network_spec) {
    auto net = std::shared_ptr<nets::Network>(
        builtin_registries().networks.create(*network_spec, b.ctx()));
    net->to(wf.device);
    b.set_network(net, *network_spec);
    wf.model_source = "config network " + network_spec->require<std::string>("name");
    if (use && use->kind == "ckpt") {
      nets::load_state_dict(*net, io::load_state_dict_file(use->path), true);
      wf.model_source = use->path;
    }
    return;
  }
  if (!use) {
    throw ConfigError(
        model.source(), model.pointer(),
        tried.empty() ? std::string("no enabled model entry (ts_path / ckpt_path) and no "
                                    "checkpoint; pass --ckpt FILE")
                      : fmt::format("no model file found: {} (train first, or pass --ckpt FILE)",
                                    fmt::join(tried, ", ")));
  }
  wf.model_source = use->path;
  if (use->kind == "ts") {
    auto module = std::make_shared<torch::jit::Module>(torch::jit::load(use->path, wf.device));
    module->eval();
    wf.shared["model.predictor"] = engine::Predictor([module](const torch::Tensor& x) {
      // The plain interpreter: no profiling runs, no re-optimisation of an already optimised graph.
      torch::jit::GraphOptimizerEnabledGuard plain(false);
      return module->forward({x}).toTensor();
    });
    wf.shared["model.set_mode"] =
        std::function<void(bool)>([module](bool train) { module->train(train); });
    return;
  }
  // A checkpoint: Barton's record the network; MONAI's and Clara's do not, so fall back to the
  // MMAR's training config.
  auto conf_text = engine::checkpoint_network_config(use->path);
  ConfigNode spec = ConfigNode::parse("{}", "");
  if (!conf_text.empty()) {
    spec = ConfigNode::parse(conf_text, use->path + ":train_conf");
  } else {
    const auto train_cfg = fs::path(c.files.mmar_root) / "config" / "config_train.json";
    if (!fs::exists(train_cfg)) {
      throw IoError(use->path,
                    "does not record its network (train_conf) and the MMAR has no "
                    "config/config_train.json to "
                    "take it from");
    }
    const auto tc =
        resolve_config(locate_config(c.files.mmar_root, train_cfg.string(), c.files.env_path));
    spec = node_at(tc.doc, section_pointer(tc, "train") + "/model");
  }
  auto net = std::shared_ptr<nets::Network>(builtin_registries().networks.create(spec, b.ctx()));
  nets::load_state_dict(*net, io::load_state_dict_file(use->path), true);
  net->to(wf.device);
  b.set_network(net, spec);
}

/// `iteration_update: "@iteration"` names the section's ClickInteraction; other values (MONAI's
/// Python callables) are accepted and ignored.
std::shared_ptr<engine::Interaction> interaction_ref(const BuildContext& ctx, const ConfigNode& a) {
  if (!a.given("iteration_update") || !a.at("iteration_update").is_string()) return nullptr;
  const auto v = a.at("iteration_update").as<std::string>();
  if (v.empty() || v[0] != '@') return nullptr;
  return get_ref<std::shared_ptr<engine::Interaction>>(ctx, a, "iteration_update", false);
}

/// A section's "iteration" (Clara's ClickInteraction) drives its loop even when the loop's
/// arguments do not name it.
void section_interaction(Builder& b, std::shared_ptr<engine::Interaction>& slot) {
  if (slot) return;
  const auto& o = b.objects();
  if (auto it = o.find("iteration"); it != o.end())
    slot = std::any_cast<std::shared_ptr<engine::Interaction>>(it->second);
}

std::shared_ptr<engine::Evaluator> make_evaluator(const ConfigNode& a, const BuildContext& ctx) {
  auto e = std::make_shared<engine::Evaluator>();
  e->loader = get_ref<std::shared_ptr<data::DataLoader>>(ctx, a, "val_data_loader", true);
  e->predictor = std::any_cast<engine::Predictor>(ctx.lookup("model.predictor"));
  e->set_mode = std::any_cast<std::function<void(bool)>>(ctx.lookup("model.set_mode"));
  e->inferer = get_ref<std::shared_ptr<engine::Inferer>>(ctx, a, "inferer", false);
  if (!e->inferer)
    e->inferer = std::shared_ptr<engine::Inferer>(builtin_registries().inferers.create(
        ConfigNode::parse(R"({"name": "SimpleInferer"})", "default")));
  e->post = get_ref<std::shared_ptr<transforms::Compose>>(ctx, a, "postprocessing", false);
  e->interaction = interaction_ref(ctx, a);
  e->metrics = collect_metrics(ctx, a, "key_val_metric", e->has_key_metric);
  e->set_handlers(
      get_ref<std::vector<std::shared_ptr<engine::Handler>>>(ctx, a, "val_handlers", false));
  e->amp = a.given("amp") && a.at("amp").as<bool>();
  e->epoch_length = a.get_optional<int64_t>("epoch_length").value_or(0);
  if (auto d = ctx.lookup("device"); d.has_value()) e->device = std::any_cast<torch::Device>(d);
  return e;
}

std::shared_ptr<engine::Trainer> make_trainer(const ConfigNode& a, const BuildContext& ctx) {
  auto t = std::make_shared<engine::Trainer>();
  t->options.max_epochs = a.require<int64_t>("max_epochs");
  if (t->options.max_epochs < 1)
    throw ConfigError(a.source(), a.pointer() + "/max_epochs", "must be at least 1");
  if (auto v = a.get_optional<int64_t>("epoch_length")) t->options.epoch_length = *v;
  if (a.has("gradient_accumulation"))
    t->options.grad_accumulation =
        std::max<int64_t>(1, a.at("gradient_accumulation").as<int64_t>());
  if (auto v = a.get_optional<double>("clip_grad_norm")) t->options.grad_clip_norm = *v;
  t->loader = get_ref<std::shared_ptr<data::DataLoader>>(ctx, a, "train_data_loader", true);
  t->network = get_ref<std::shared_ptr<nets::Network>>(ctx, a, "network", true);
  t->loss = get_ref<std::shared_ptr<losses::Loss>>(ctx, a, "loss_function", true);
  {
    const auto name = strip_ref(a.require<std::string>("optimizer"));
    auto v = ctx.lookup(name + "!");
    if (!v.has_value())
      throw ConfigError(a.source(), a.pointer() + "/optimizer",
                        fmt::format("'@{}' is not defined", name));
    t->optimizer = std::any_cast<std::shared_ptr<optim::Optimizer>>(v);
  }
  if (auto s = ctx.lookup("lr_scheduler!"); s.has_value())
    t->scheduler = std::any_cast<std::shared_ptr<optim::LrScheduler>>(s);
  t->inferer = get_ref<std::shared_ptr<engine::Inferer>>(ctx, a, "inferer", false);
  t->post = get_ref<std::shared_ptr<transforms::Compose>>(ctx, a, "postprocessing", false);
  t->interaction = interaction_ref(ctx, a);
  t->metrics = collect_metrics(ctx, a, "key_train_metric", t->has_key_metric);
  t->set_handlers(
      get_ref<std::vector<std::shared_ptr<engine::Handler>>>(ctx, a, "train_handlers", false));
  t->amp = a.given("amp") && a.at("amp").as<bool>();
  if (auto d = ctx.lookup("device"); d.has_value()) t->device = std::any_cast<torch::Device>(d);
  if (auto c = ctx.lookup("conf"); c.has_value()) t->network_config = std::any_cast<std::string>(c);
  return t;
}

ComponentSpec supervised_trainer_spec() {
  return ComponentSpec{
      "SupervisedTrainer",
      "Supervised training loop.",
      {opt("device", A::kString, "null",
           "Accepted for MONAI compatibility; ignored (--device or use_gpu picks the device)."),
       req("max_epochs", A::kInt, "Number of training epochs."),
       req("train_data_loader", A::kReference, "The training data loader."),
       req("network", A::kReference, "The network to train."),
       req("optimizer", A::kReference, "The optimizer."),
       req("loss_function", A::kReference, "The loss."),
       opt("epoch_length", A::kInt, "null",
           "Iterations per epoch; null: one pass over the loader (longer values are capped)."),
       opt("non_blocking", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("prepare_batch", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("iteration_update", A::kAny, "null",
           "\"@iteration\": the section's ClickInteraction (simulated clicks before each "
           "iteration); other values are accepted for MONAI compatibility and ignored."),
       opt("inferer", A::kReference, "null",
           "Inferer of the training forward pass; null runs the network on the whole batch."),
       opt("postprocessing", A::kReference, "null",
           "Post transforms applied to each prediction before the training metrics."),
       opt("key_train_metric", A::kReference, "null",
           "Key metric computed on the training predictions."),
       opt("additional_metrics", A::kReference, "null",
           "Further metrics, computed alongside the key metric."),
       opt("metric_cmp_fn", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (a higher key metric is better)."),
       opt("train_handlers", A::kReference, "null", "Handlers attached to the training loop."),
       opt("amp", A::kBool, "false",
           "Mixed precision on CUDA (autocast forward, dynamic loss scaling); no effect on CPU."),
       opt("event_names", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("event_to_attr", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("decollate", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("optim_set_to_none", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("to_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored."),
       opt("amp_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored."),
       opt("gradient_accumulation", A::kInt, "1",
           "Barton: optimizer step every N iterations, on the mean of their gradients."),
       opt("clip_grad_norm", A::kFloat, "null",
           "Barton: clip the global gradient norm to this value.")}};
}

ComponentSpec supervised_evaluator_spec() {
  return ComponentSpec{
      "SupervisedEvaluator",
      "Validation / inference loop.",
      {opt("device", A::kString, "null",
           "Accepted for MONAI compatibility; ignored (--device or use_gpu picks the device)."),
       req("val_data_loader", A::kReference, "The validation data loader."),
       req("network", A::kReference, "The network to run; Barton always runs the section's model."),
       opt("epoch_length", A::kInt, "null",
           "Iterations per run; null: one pass over the loader (longer values are capped)."),
       opt("non_blocking", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("prepare_batch", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("iteration_update", A::kAny, "null",
           "\"@iteration\": the section's ClickInteraction (simulated clicks before each "
           "iteration); other values are accepted for MONAI compatibility and ignored."),
       opt("inferer", A::kReference, "null", "Inferer of the forward pass; null: SimpleInferer."),
       opt("postprocessing", A::kReference, "null",
           "Post transforms applied to each prediction before the metrics."),
       opt("key_val_metric", A::kReference, "null",
           "Key metric: decides the best model and early stopping."),
       opt("additional_metrics", A::kReference, "null",
           "Further metrics, computed alongside the key metric."),
       opt("metric_cmp_fn", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (a higher key metric is better)."),
       opt("val_handlers", A::kReference, "null", "Handlers attached to the evaluation loop."),
       opt("amp", A::kBool, "false",
           "Mixed precision (autocast) for the forward pass on CUDA; no effect on CPU."),
       opt("mode", A::kString, "\"eval\"",
           "Accepted for MONAI compatibility; ignored (the network always runs in eval mode)."),
       opt("event_names", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("event_to_attr", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("decollate", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("to_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored."),
       opt("amp_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored.")}};
}

}  // namespace

Workflow build_training(const ResolvedConfig& config, const WorkflowOptions& options) {
  if (config.kind != ConfigKind::kTrain)
    throw ConfigError(config.files.config_path, "",
                      "is not a training config (no \"train\" section)");
  Workflow wf;
  common_setup(config, options, wf);
  wf.shared["device"] = wf.device;
  const auto& reg = builtin_registries();
  Builder b(config, wf, reg);
  const auto train = node_at(config.doc, section_pointer(config, "train"));
  b.set_section(train.pointer());
  b.build_training_parts(train);
  // The validation section first: the training handlers refer to its evaluator.
  if (config.doc.has("validate")) {
    const auto val = node_at(config.doc, section_pointer(config, "validate"));
    b.set_section(val.pointer());
    b.build_section(val);
    b.build_handlers(val);
    if (val.has("evaluator")) {
      const auto ev = val.at("evaluator");
      reg.evaluators.validate_or_throw(ev, {"rank"});
      wf.evaluator = make_evaluator(ev.at_or_empty("args"), b.ctx());
      section_interaction(b, wf.evaluator->interaction);
      b.objects()["evaluator"] = wf.evaluator;
    }
  }
  b.set_section(train.pointer());
  b.build_section(train);
  b.build_handlers(train);
  const auto tr = train.at("trainer");
  reg.trainers.validate_or_throw(tr, {"rank"});
  wf.trainer = make_trainer(tr.at_or_empty("args"), b.ctx());
  section_interaction(b, wf.trainer->interaction);
  wf.trainer->options.seed = wf.seed;
  wf.trainer->options.deterministic = wf.deterministic;
  wf.trainer->cpu_bf16 = options.cpu_bf16;
  if (wf.evaluator) {
    wf.evaluator->parent = wf.trainer.get();
    wf.evaluator->cpu_bf16 = options.cpu_bf16;
  }
  return wf;
}

Workflow build_evaluation(const ResolvedConfig& config, const WorkflowOptions& options) {
  Workflow wf;
  common_setup(config, options, wf);
  wf.shared["device"] = wf.device;
  const auto& reg = builtin_registries();
  Builder b(config, wf, reg);
  const auto doc = node_at(
      config.doc, config.kind == ConfigKind::kTrain ? section_pointer(config, "validate") : "");
  b.set_section(doc.pointer());
  if (config.kind == ConfigKind::kTrain) {
    // Validating with a training config: its network, with the MMAR's checkpoint.
    const auto train = node_at(config.doc, section_pointer(config, "train"));
    auto net =
        std::shared_ptr<nets::Network>(reg.networks.create(train.at("model"), b.ctx(), {"rank"}));
    net->to(wf.device);
    b.set_network(net, train.at("model"));
    const auto ck =
        options.ckpt.empty() ? mmar_path(config, variable(config, "MMAR_CKPT")) : options.ckpt;
    if (!fs::exists(ck))
      throw IoError(ck,
                    "the checkpoint to validate does not exist (train first, or pass --ckpt FILE)");
    nets::load_state_dict(*net, io::load_state_dict_file(ck), true);
    wf.model_source = ck;
  } else {
    if (!doc.has("model"))
      throw ConfigError(doc.source(), "/model", "the config has no \"model\" entry");
    load_model_entry(wf, b, config, doc.at("model"), options.ckpt);
  }
  b.build_section(doc);
  b.build_handlers(doc);
  if (config.kind == ConfigKind::kTrain) {
    // Validating a checkpoint must not write checkpoints: the validate section's savers belong to
    // training.
    auto& hs =
        std::any_cast<std::vector<std::shared_ptr<engine::Handler>>&>(b.objects()["handlers"]);
    hs.erase(std::remove_if(hs.begin(), hs.end(),
                            [](const auto& h) { return h->name() == "CheckpointSaver"; }),
             hs.end());
  }
  if (!doc.has("evaluator"))
    throw ConfigError(doc.source(), doc.pointer() + "/evaluator",
                      "the config has no \"evaluator\"");
  const auto ev = doc.at("evaluator");
  reg.evaluators.validate_or_throw(ev, {"rank"});
  wf.evaluator = make_evaluator(ev.at_or_empty("args"), b.ctx());
  section_interaction(b, wf.evaluator->interaction);
  wf.evaluator->cpu_bf16 = options.cpu_bf16;
  return wf;
}

InferencePipeline build_inference_pipeline(const ResolvedConfig& config,
                                           const WorkflowOptions& options) {
  if (config.kind == ConfigKind::kTrain)
    throw ConfigError(config.files.config_path, "",
                      "serving needs an inference config (config_inference.json), not a training "
                      "config");
  InferencePipeline p;
  auto& wf = p.workflow;
  common_setup(config, options, wf);
  wf.shared["device"] = wf.device;
  const auto& reg = builtin_registries();
  Builder b(config, wf, reg);
  const auto doc = node_at(config.doc, "");
  b.set_section(doc.pointer());
  if (!doc.has("model"))
    throw ConfigError(doc.source(), "/model", "the config has no \"model\" entry");
  load_model_entry(wf, b, config, doc.at("model"), options.ckpt);
  if (!doc.has("pre_transforms"))
    throw ConfigError(
        doc.source(), "/pre_transforms",
        "serving needs the config's pre_transforms (they read and prepare the image)");
  b.build_section(doc, false);
  auto& o = b.objects();
  const auto ctx = b.ctx();
  p.pre = std::any_cast<std::shared_ptr<transforms::Compose>>(o.at("pre_transforms"));
  if (o.count("post_transforms"))
    p.post = std::any_cast<std::shared_ptr<transforms::Compose>>(o.at("post_transforms"));
  if (o.count("inferer"))
    p.inferer = std::any_cast<std::shared_ptr<engine::Inferer>>(o.at("inferer"));
  else
    p.inferer = std::shared_ptr<engine::Inferer>(
        reg.inferers.create(ConfigNode::parse(R"({"name": "SimpleInferer"})", "default")));
  p.predictor = std::any_cast<engine::Predictor>(ctx.lookup("model.predictor"));
  p.set_mode = std::any_cast<std::function<void(bool)>>(ctx.lookup("model.set_mode"));
  if (doc.has("evaluator") && doc.at("evaluator").has("args")) {
    const auto a = doc.at("evaluator").at("args");
    p.amp = a.given("amp") && a.at("amp").as<bool>();
  }
  p.cpu_bf16 = options.cpu_bf16;
  return p;
}

ComponentSpec click_interaction_spec() {
  return ComponentSpec{
      "ClickInteraction",
      "Simulated clicks for interactive models (MONAI's deepgrow Interaction): rounds of "
      "predict, find the discrepancy, add a click, before each training or validation iteration.",
      {opt("transforms", A::kAny, "[]",
           "Click transforms run on each item after each round's prediction (under \"pred\")."),
       opt("max_interactions", A::kInt, "15", "Click rounds per iteration."),
       opt("key_probability", A::kString, "\"probability\"",
           "Item key that receives each round's click probability."),
       opt("train", A::kBool, "true",
           "Training form: the click probability falls from 1 by 1/max_interactions a round "
           "(otherwise it stays 1).")}};
}

ComponentSpec deepedit_interaction_spec() {
  return ComponentSpec{
      "Interaction",
      "DeepEdit's simulated clicks (MONAI's apps.deepedit Interaction): with deepgrow_probability "
      "rounds of predict, find the discrepancy per label, add clicks; otherwise the click "
      "channels are zeroed (automatic mode).",
      {opt("deepgrow_probability", A::kFloat, "0.5", "Chance of an iteration with clicks."),
       opt("transforms", A::kAny, "[]",
           "Click transforms run on each item after each round's prediction (under \"pred\")."),
       opt("train", A::kBool, "true",
           "Training form: the click probability falls from 1 by 1/max_interactions a round."),
       opt("label_names", A::kAny, "null", "The label names (accepted; the transforms use them)."),
       opt("click_probability_key", A::kString, "\"probability\"",
           "Item key that receives each round's click probability."),
       opt("max_interactions", A::kInt, "1", "Click rounds per iteration.")}};
}

/// The click transforms of an interaction config.
std::shared_ptr<transforms::Compose> click_transforms(const ConfigNode& a,
                                                      const BuildContext& ctx) {
  std::vector<std::shared_ptr<const transforms::Transform>> steps;
  std::vector<std::string> where;
  const auto list = a.at("transforms");
  if (!list.is_null() && !list.is_array()) throw list.error("expected a list of transforms");
  for (std::size_t i = 0; !list.is_null() && i < list.size(); ++i) {
    auto t = builtin_registries().transforms.create(list.at(i), ctx, {"rank"});
    if (!t) continue;
    where.push_back(list.at(i).where());
    steps.push_back(std::shared_ptr<const transforms::Transform>(std::move(t)));
  }
  return std::make_shared<transforms::Compose>(std::move(steps), std::move(where));
}

void register_engines(Registries& r) {
  r.interactions.add(deepedit_interaction_spec(), [](const ConfigNode& a, const BuildContext& ctx) {
    auto it = std::make_unique<engine::Interaction>();
    it->max_interactions = a.require<int64_t>("max_interactions");
    if (it->max_interactions < 0) throw a.at("max_interactions").error("must not be negative");
    it->key_probability = a.require<std::string>("click_probability_key");
    it->train = a.require<bool>("train");
    it->deepgrow_probability = a.require<double>("deepgrow_probability");
    if (it->deepgrow_probability < 0 || it->deepgrow_probability > 1)
      throw a.at("deepgrow_probability").error("must be in [0, 1]");
    it->transforms = click_transforms(a, ctx);
    return it;
  });
  r.interactions.add(click_interaction_spec(), [](const ConfigNode& a, const BuildContext& ctx) {
    auto it = std::make_unique<engine::Interaction>();
    it->max_interactions = a.require<int64_t>("max_interactions");
    if (it->max_interactions < 0) throw a.at("max_interactions").error("must not be negative");
    it->key_probability = a.require<std::string>("key_probability");
    it->train = a.require<bool>("train");
    it->transforms = click_transforms(a, ctx);
    return it;
  });
  // The factories are for completeness (list-components shows them available); the workflow
  // builder assembles loops with make_trainer / make_evaluator, which need the section context.
  r.trainers.add(supervised_trainer_spec(), [](const ConfigNode& a, const BuildContext& ctx) {
    auto t = make_trainer(a, ctx);
    return std::make_unique<engine::Trainer>(std::move(*t));
  });
  r.evaluators.add(supervised_evaluator_spec(), [](const ConfigNode& a, const BuildContext& ctx) {
    auto e = make_evaluator(a, ctx);
    return std::make_unique<engine::Evaluator>(std::move(*e));
  });
}

}  // namespace barton::mmar
