#include "export/plan.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/library.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "export/graph.h"
#include "nets/blocks/layers.h"
#include <caffe2/serialize/inline_container.h>

// Barton's phase-decomposed transposed convolution and slab-wise thin convolution as TorchScript
// operators, so that plans can call them (graph.h: choose_convtranspose_kernels,
// use_slab_convolutions).
TORCH_LIBRARY(barton, m) {
  m.def("conv_transpose_phase(Tensor x, Tensor weight, Tensor? bias) -> Tensor",
        [](const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b) {
          return barton::nets::conv_transpose_phase(x, w, b.value_or(at::Tensor()),
                                                    static_cast<int>(x.dim()) - 2);
        });
  m.def("slab_conv3d(Tensor x, Tensor weight, Tensor? bias, int[] stride, int[] padding) -> Tensor",
        [](const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b,
           c10::IntArrayRef stride, c10::IntArrayRef padding) {
          const std::vector<int64_t> one(stride.size(), 1);
          return barton::nets::slab_conv3d(x, w, b.value_or(at::Tensor()), stride, padding, one, 1);
        });
}

namespace barton::exporter {

void write_plan(const std::string& path,
                std::shared_ptr<torch::jit::Graph> graph,
                const nlohmann::ordered_json& meta) {
  torch::jit::Module m("__torch__.barton.InferencePlan");
  auto* self = graph->insertInput(0, "self");
  self->setType(m._ivalue()->type());
  // Weights become buffers of the module (as in a traced module), not inline graph constants.
  int i = 0;
  for (auto* n : tensor_constants(*graph)) {
    const auto name = fmt::format("w{}", i++);
    m.register_buffer(name, torch::jit::toIValue(n->output())->toTensor());
    torch::jit::WithInsertPoint guard(graph->nodes().front());
    n->output()->replaceAllUsesWith(graph->insertGetAttr(self, name));
    n->destroy();
  }
  auto cu = m._ivalue()->compilation_unit();
  auto* fn =
      cu->create_function(c10::QualifiedName(*m.type()->name(), "forward"), std::move(graph));
  m.type()->addMethod(fn);
  std::ostringstream os;
  torch::jit::ExtraFilesMap extra = {{kPlanRecord, meta.dump(2) + "\n"}};
  m.save(os, extra);
  write_file_atomic(path, os.str());
}

namespace {

bool has_record(const std::string& path, const char* record) {
  std::ifstream f(path, std::ios::binary);
  char magic[2] = {0, 0};
  if (!f.read(magic, 2) || magic[0] != 'P' || magic[1] != 'K') return false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return reader.hasRecord(record);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

bool is_torchscript(const std::string& path) {
  return has_record(path, "constants.pkl");
}

bool is_plan(const std::string& path) {
  return is_torchscript(path) && has_record(path, "extra/barton_plan.json");
}

Plan load_plan(const std::string& path, const torch::Device& device) {
  if (!is_torchscript(path))
    throw IoError(path, "is not a Barton inference plan (not a TorchScript archive)");
  torch::jit::ExtraFilesMap extra = {{kPlanRecord, ""}};
  Plan p;
  try {
    p.module = torch::jit::load(path, device, extra);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw IoError(path, "cannot be loaded: " + msg.substr(0, msg.find('\n')));
  }
  if (extra[kPlanRecord].empty())
    throw IoError(path,
                  "is a TorchScript model, not a Barton inference plan (no barton_plan.json)");
  try {
    p.meta = nlohmann::ordered_json::parse(extra[kPlanRecord]);
  } catch (const std::exception& e) {
    throw IoError(path, std::string("has a corrupt barton_plan.json: ") + e.what());
  }
  p.module.eval();
  return p;
}

}  // namespace barton::exporter
