// barton export MMAR: ONNX, a Triton model repository and Barton's inference plan, with a
// provenance manifest; barton verify DIR: checks an export against its manifest.
#include <filesystem>
#include <iostream>
#include <memory>

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"
#include "engine/handlers.h"
#include "export/export.h"
#include "export/manifest.h"
#include "io/torch_file.h"
#include "mmar/builder.h"
#include "mmar/workflow.h"

namespace barton::cli {

namespace fs = std::filesystem;

namespace {

struct ExportArgs {
  std::string mmar, config, env, ckpt, formats = "onnx,triton,barton", shape, out, name;
  std::vector<std::string> sets;
  bool dynamic_spatial = false, half = false, bf16 = false;
  int max_batch = 4;
};

std::vector<int64_t> parse_shape(const std::string& s) {
  std::vector<int64_t> out;
  for (const auto& part : split(s, ',')) {
    try {
      std::size_t used = 0;
      const auto v = std::stoll(trim(part), &used);
      if (used != trim(part).size() || v <= 0) throw std::invalid_argument("");
      out.push_back(v);
    } catch (const std::exception&) {
      throw Error("--input-shape: '" + s +
                  "' is not a list of positive integers such as 1,1,96,96,96");
    }
  }
  return out;
}

/// The roi_size of config_inference.json's inferer, when the MMAR has one.
std::vector<int64_t> inference_roi(const mmar::ConfigFiles& train_files,
                                   const std::vector<std::string>& sets) {
  const auto path = fs::path(train_files.mmar_root) / "config" / "config_inference.json";
  if (!fs::exists(path)) return {};
  try {
    const auto c = mmar::resolve_config(
        mmar::locate_config(train_files.mmar_root, path.string(), train_files.env_path),
        {sets, false});
    if (c.doc.has("inferer") && c.doc.at("inferer").at_or_empty("args").has("roi_size")) {
      return c.doc.at("inferer").at("args").at("roi_size").as<std::vector<int64_t>>();
    }
  } catch (const Error&) {
  }
  return {};
}

int run_export(const ExportArgs& a) {
  const auto files = mmar::locate_config(a.mmar, a.config, a.env, "config_train.json");
  const auto cfg = mmar::resolve_config(files, {a.sets, false});
  const auto ckpt = a.ckpt.empty() ? mmar::mmar_path(cfg, mmar::variable(cfg, "MMAR_CKPT"))
                                   : fs::absolute(a.ckpt).string();
  if (ckpt.empty() || !fs::exists(ckpt))
    throw IoError(ckpt,
                  "the checkpoint to export does not exist (train first, or pass --ckpt FILE)");
  // The network: as the checkpoint records it, else as the training config defines it.
  ConfigNode spec = ConfigNode::parse("{}", "");
  if (const auto conf = engine::checkpoint_network_config(ckpt); !conf.empty()) {
    spec = ConfigNode::parse(conf, ckpt + ":train_conf");
  } else if (cfg.kind == mmar::ConfigKind::kTrain) {
    spec = mmar::node_at(cfg.doc, mmar::section_pointer(cfg, "train") + "/model");
  } else {
    throw ConfigError(files.config_path, "",
                      "export needs a training config (config_train.json) or a checkpoint that "
                      "records its network");
  }
  auto net = std::shared_ptr<nets::Network>(builtin_registries().networks.create(spec));
  nets::load_state_dict(*net, io::load_state_dict_file(ckpt), true);

  exporter::ExportOptions o;
  o.formats = split(a.formats, ',');
  for (auto& f : o.formats) f = to_lower(trim(f));
  o.dynamic_spatial = a.dynamic_spatial;
  if (a.half && a.bf16) throw Error("--half and --bf16 exclude each other");
  o.precision = a.half ? "fp16" : a.bf16 ? "bf16" : "";
  o.max_batch_size = a.max_batch;
  o.name = a.name.empty() ? fs::weakly_canonical(files.mmar_root).filename().string() : a.name;
  o.network = nlohmann::ordered_json::parse(spec.dump());
  const auto args = spec.at_or_empty("args");
  const int64_t in_ch = args.has("in_channels") ? args.at("in_channels").as<int64_t>() : 1;
  if (!a.shape.empty()) {
    o.input_shape = parse_shape(a.shape);
  } else {
    auto roi = inference_roi(files, a.sets);
    if (roi.empty()) roi.assign(net->spatial_dims(), net->spatial_dims() == 3 ? 96 : 256);
    o.input_shape = {1, in_ch};
    o.input_shape.insert(o.input_shape.end(), roi.begin(), roi.end());
  }
  const auto cfg_dir = fs::path(files.mmar_root) / "config";
  if (fs::exists(cfg_dir / "config_inference.json"))
    o.inference_config = read_file(cfg_dir / "config_inference.json");
  if (!files.env_path.empty() && fs::exists(files.env_path))
    o.environment = read_file(files.env_path);
  auto& p = o.provenance;
  p["source"] = {
      {"mmar", fs::absolute(files.mmar_root).lexically_normal().string()},
      {"config", fs::relative(files.config_path, files.mmar_root).string()},
      {"config_sha256", exporter::sha256_file(files.config_path)},
      {"environment_sha256", files.env_path.empty() ? "" : exporter::sha256_file(files.env_path)},
      {"checkpoint", fs::absolute(ckpt).lexically_normal().string()},
      {"checkpoint_sha256", exporter::sha256_file(ckpt)}};
  if (!a.sets.empty()) p["source"]["set"] = a.sets;
  const auto stats = fs::path(ckpt).parent_path() / "train_stats.json";
  if (fs::exists(stats)) {
    try {
      auto s = nlohmann::ordered_json::parse(read_file(stats));
      s.erase("epoch_times");
      p["training"] = s;
    } catch (const nlohmann::json::exception&) {
      throw IoError(stats.string(), "is not valid JSON");
    }
  }
  const fs::path out =
      a.out.empty() ? fs::path(files.mmar_root) / "models" / "export" : fs::path(a.out);
  const auto r = exporter::export_network(*net, out, o);
  std::cout << fmt::format("Exported {} ({}) from {}\n", spec.require<std::string>("name"),
                           o.precision.empty() ? "fp32" : o.precision, fs::relative(ckpt).string());
  std::cout << fmt::format("  input  {} [{}]\n  output {} [{}]   (-1: dynamic)\n",
                           r.signature.input_name, fmt::join(r.signature.input_dims, ", "),
                           r.signature.output_name, fmt::join(r.signature.output_dims, ", "));
  if (r.folded_batchnorms > 0)
    std::cout << fmt::format("  plan: {} BatchNorm layers folded into convolutions\n",
                             r.folded_batchnorms);
  for (const auto& f : r.files) std::cout << "  " << (out / f).string() << "\n";
  return 0;
}

}  // namespace

void setup_export(CLI::App& app, Runner& runner) {
  auto a = std::make_shared<ExportArgs>();
  app.add_option("MMAR", a->mmar, "MMAR folder or training config")->required();
  app.add_option("-c,--config", a->config, "Training config (default: config/config_train.json)");
  app.add_option("-e,--env", a->env, "Environment file (default: config/environment.json)");
  app.add_option("--set", a->sets, "Override: KEY=VALUE or /json/pointer=VALUE")->take_all();
  app.add_option("--ckpt", a->ckpt, "Checkpoint (default: MMAR_CKPT)");
  app.add_option("--format", a->formats, "Comma-separated: onnx, triton, barton (default: all)");
  app.add_option(
      "--input-shape", a->shape,
      "Traced input B,C,spatial... (default: 1, in_channels, config_inference's roi_size)");
  app.add_flag("--dynamic-spatial", a->dynamic_spatial, "Symbolic spatial axes in the ONNX model");
  app.add_flag("--half", a->half, "float16 weights and compute");
  app.add_flag("--bf16", a->bf16, "bfloat16 weights and compute");
  app.add_option("--max-batch-size", a->max_batch,
                 "Triton max_batch_size (default 4; 0 = no batching)");
  app.add_option("--name", a->name, "Triton model name (default: the MMAR folder's name)");
  app.add_option("--out", a->out, "Output folder (default: MMAR/models/export)");
  runner = [a]() { return run_export(*a); };
}

void setup_verify(CLI::App& app, Runner& runner) {
  auto dir = std::make_shared<std::string>();
  app.add_option("DIR", *dir, "An export folder (with manifest.json)")->required();
  runner = [dir]() {
    const auto r = exporter::verify(*dir);
    for (const auto& f : r.ok) std::cout << "  ok        " << f << "\n";
    for (const auto& f : r.modified) std::cout << "  MODIFIED  " << f << "\n";
    for (const auto& f : r.missing) std::cout << "  MISSING   " << f << "\n";
    for (const auto& f : r.unlisted) std::cout << "  UNLISTED  " << f << "\n";
    if (r.passed()) {
      std::cout << fmt::format("verify: {} files match {}/manifest.json\n", r.ok.size(), *dir);
      return 0;
    }
    std::cerr << fmt::format("error: {}: {} modified, {} missing, {} not in the manifest\n", *dir,
                             r.modified.size(), r.missing.size(), r.unlisted.size());
    return 1;
  };
}

}  // namespace barton::cli
