#include "export/export.h"

#include <chrono>
#include <ctime>

#include <torch/torch.h>
#include <torch/version.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"
#include "core/version.h"
#include "export/graph.h"
#include "export/manifest.h"
#include "export/plan.h"
#include "export/triton.h"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

namespace barton::exporter {

namespace fs = std::filesystem;

namespace {

nlohmann::ordered_json tensor_spec(const std::string& name,
                                   const std::vector<int64_t>& dims,
                                   const std::string& dtype) {
  return {{"name", name}, {"dims", dims}, {"dtype", dtype}};
}

// Puts the assembled folder `tmp` at `out_dir`. With an earlier export there, the two are
// exchanged in one step (renameat2 RENAME_EXCHANGE), so a kill at any moment leaves either the
// old export or the new one at `out_dir`, never neither; the old one is then removed. Where the
// file system cannot exchange, the old folder is moved aside first.
void swap_into_place(const fs::path& tmp, const fs::path& out_dir) {
  if (!fs::exists(out_dir)) {
    fs::rename(tmp, out_dir);
    return;
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, out_dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp);  // now the old export
    return;
  }
  const auto old =
      out_dir.parent_path() / fmt::format(".{}.old-{}", out_dir.filename().string(), getpid());
  fs::rename(out_dir, old);
  fs::rename(tmp, out_dir);
  fs::remove_all(old);
}

// Removes ".NAME.tmp-PID" and ".NAME.old-PID" folders beside the export that a killed export
// left behind (PID no longer running).
void remove_abandoned_siblings(const fs::path& parent, const std::string& name) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const auto f = e.path().filename().string();
    for (const char* kind : {".tmp-", ".old-"}) {
      const auto prefix = "." + name + kind;
      if (f.rfind(prefix, 0) != 0) continue;
      const auto pid = f.substr(prefix.size());
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (!fs::exists("/proc/" + pid, ec)) fs::remove_all(e.path(), ec);
    }
  }
}

}  // namespace

ExportResult export_network(nets::Network& net, const fs::path& out_dir, const ExportOptions& o) {
  BARTON_CHECK(!o.input_shape.empty(), "export needs an input shape");
  for (const auto& f : o.formats) {
    if (f != "onnx" && f != "triton" && f != "barton")
      throw Error("unknown export format '" + f + "' (onnx, triton, barton)");
  }
  if (o.input_shape.size() != static_cast<std::size_t>(net.spatial_dims()) + 2) {
    throw ShapeError(
        fmt::format("--input-shape [{}] needs {} values (batch, channels and {} spatial sizes) for "
                    "this {}D network",
                    fmt::join(o.input_shape, ","), net.spatial_dims() + 2, net.spatial_dims(),
                    net.spatial_dims()));
  }
  c10::ScalarType dtype = torch::kFloat;
  if (o.precision == "fp16")
    dtype = torch::kHalf;
  else if (o.precision == "bf16")
    dtype = torch::kBFloat16;
  else if (!o.precision.empty())
    throw Error("unknown precision '" + o.precision + "' (fp16, bf16)");

  const auto example = torch::randn(o.input_shape);
  const auto graph = trace_network(net, example);
  auto has = [&](const char* f) {
    return std::find(o.formats.begin(), o.formats.end(), f) != o.formats.end();
  };

  // Assemble beside the destination, then swap.
  const auto parent = fs::absolute(out_dir).parent_path();
  fs::create_directories(parent);
  remove_abandoned_siblings(parent, out_dir.filename().string());
  const auto tmp = parent / fmt::format(".{}.tmp-{}", out_dir.filename().string(), getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  ExportResult r;
  try {
    OnnxOptions oo;
    oo.dynamic_batch = true;
    oo.dynamic_spatial = o.dynamic_spatial;
    oo.graph_name = o.name;
    oo.producer_version = BARTON_VERSION;
    oo.doc = o.network.dump();
    if (has("onnx") || has("triton")) {
      if (dtype == torch::kBFloat16)
        throw NotSupported(
            "ONNX export in bfloat16 is not supported (use --half, or --format barton)");
      oo.half = dtype == torch::kHalf;
      const auto bytes = graph_to_onnx(*graph, oo, &r.signature);
      if (has("onnx")) write_file_atomic(tmp / "model.onnx", bytes);
      if (has("triton")) {
        write_file_atomic(tmp / "triton" / o.name / "1" / "model.onnx", bytes);
        write_file_atomic(tmp / "triton" / o.name / "config.pbtxt",
                          triton_config(o.name, r.signature, o.max_batch_size));
      }
    }
    nlohmann::ordered_json plan_meta;
    if (has("barton")) {
      auto g = graph->copy();
      r.folded_batchnorms = fold_batchnorm(*g);
      canonicalize_convolutions(*g);
      std::vector<std::string> timing;
      r.phase_convtransposes = choose_convtranspose_kernels(*g, &timing);
      if (dtype != torch::kFloat) cast_weights(*g, dtype);
      const int slabs = use_slab_convolutions(*g);
      plan_meta["format"] = "barton-plan";
      plan_meta["format_version"] = 1;
      plan_meta["network"] = o.network;
      plan_meta["input_shape"] = o.input_shape;
      plan_meta["precision"] = o.precision.empty() ? "fp32" : o.precision;
      plan_meta["folded_batchnorms"] = r.folded_batchnorms;
      plan_meta["convtranspose_kernels"] = timing;
      plan_meta["slab_convolutions"] = slabs;
      plan_meta["barton_version"] = BARTON_VERSION;
      plan_meta["libtorch_version"] = TORCH_VERSION;
      if (!o.inference_config.empty()) plan_meta["config_inference"] = o.inference_config;
      if (!o.environment.empty()) plan_meta["environment"] = o.environment;
      write_plan((tmp / "model.plan").string(), g, plan_meta);
    }
    if (r.signature.input_dims.empty()) {
      r.signature.input_dims = o.input_shape;
      torch::NoGradGuard ng;
      net.eval();
      r.signature.output_dims = net.forward(example).sizes().vec();
      r.signature.input_name = "INPUT__0";
      r.signature.output_name = "OUTPUT__0";
    }
    nlohmann::ordered_json m;
    m["format"] = "barton-export";
    m["format_version"] = 1;
    m["created"] = utc_now();
    m["barton_version"] = BARTON_VERSION;
    m["libtorch_version"] = TORCH_VERSION;
    m["network"] = o.network;
    m["precision"] = o.precision.empty() ? "fp32" : o.precision;
    m["input"] = tensor_spec(r.signature.input_name, r.signature.input_dims, "float32");
    m["output"] = tensor_spec(r.signature.output_name, r.signature.output_dims, "float32");
    m["traced_input_shape"] = o.input_shape;
    m["formats"] = o.formats;
    for (const auto& [k, v] : o.provenance.items()) m[k] = v;
    write_manifest(tmp, m);
    for (const auto& e : fs::recursive_directory_iterator(tmp)) {
      if (e.is_regular_file()) r.files.push_back(fs::relative(e.path(), tmp).generic_string());
    }
    std::sort(r.files.begin(), r.files.end());
    swap_into_place(tmp, out_dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  return r;
}

}  // namespace barton::exporter
