#include "export/graph.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/remove_dropout.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "nets/blocks/layers.h"

namespace barton::exporter {

namespace {

/// Restores what tracing changes on a network: training mode, requires_grad, fast ConvTranspose.
class TraceScope {
 public:
  explicit TraceScope(nets::Network& net) : net_(net), training_(net.is_training()) {
    for (auto& p : net.parameters()) {
      grads_.emplace_back(p, p.requires_grad());
      p.set_requires_grad(false);
    }
    for (auto& m : net.modules(false)) {
      if (auto* ct = dynamic_cast<nets::ConvTransposeImpl*>(m.get())) {
        fast_.emplace_back(ct, ct->fast());
        ct->set_fast(false);
      }
    }
    net.eval();
  }
  ~TraceScope() {
    for (auto& [p, g] : grads_) p.set_requires_grad(g);
    for (auto& [ct, f] : fast_) ct->set_fast(f);
    net_.train(training_);
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  nets::Network& net_;
  bool training_;
  std::vector<std::pair<torch::Tensor, bool>> grads_;
  std::vector<std::pair<nets::ConvTransposeImpl*, bool>> fast_;
};

c10::optional<torch::Tensor> const_tensor(torch::jit::Value* v) {
  const auto iv = torch::jit::toIValue(v);
  if (!iv || !iv->isTensor()) return c10::nullopt;
  return iv->toTensor();
}

}  // namespace

c10::optional<std::vector<int64_t>> const_ints(const torch::jit::Value* v) {
  if (v->node()->kind() == c10::prim::ListConstruct) {
    std::vector<int64_t> out;
    for (const auto* e : v->node()->inputs()) {
      const auto iv = torch::jit::toIValue(e);
      if (!iv || !iv->isInt()) return c10::nullopt;
      out.push_back(iv->toInt());
    }
    return out;
  }
  const auto iv = torch::jit::toIValue(v);
  if (iv && iv->isIntList()) return iv->toIntVector();
  if (iv && iv->isInt()) return std::vector<int64_t>{iv->toInt()};
  return c10::nullopt;
}

std::vector<torch::jit::Node*> nodes_of_kind(torch::jit::Graph& graph, c10::Symbol kind) {
  std::vector<torch::jit::Node*> out;
  for (auto* n : graph.nodes()) {
    if (n->kind() == kind) out.push_back(n);
  }
  return out;
}

std::vector<torch::jit::Node*> tensor_constants(torch::jit::Graph& graph) {
  std::vector<torch::jit::Node*> out;
  for (auto* n : graph.nodes()) {
    if (n->kind() == c10::prim::Constant &&
        n->output()->type()->kind() == c10::TypeKind::TensorType)
      out.push_back(n);
  }
  return out;
}

std::shared_ptr<torch::jit::Graph> trace_network(nets::Network& net, const torch::Tensor& example) {
  TraceScope scope(net);
  torch::NoGradGuard no_grad;
  auto fn = [&net](torch::jit::Stack in) -> torch::jit::Stack {
    return {net.forward(in.at(0).toTensor())};
  };
  std::shared_ptr<torch::jit::Graph> graph;
  try {
    auto traced = torch::jit::tracer::trace(
        {example.detach()}, fn, [](const torch::autograd::Variable&) { return std::string(); },
        /*strict=*/false, /*force_outplace=*/false);
    graph = std::get<0>(traced)->graph;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (const auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
    throw ShapeError(fmt::format("{} does not run on an input of shape [{}]: {}", net.name(),
                                 fmt::join(example.sizes(), ", "), msg));
  }
  torch::jit::removeDropout(graph);
  // The weights are the network's live parameters: give the graph its own copies.
  for (auto* n : tensor_constants(*graph)) {
    const auto t = const_tensor(n->output());
    if (!t) continue;
    torch::jit::WithInsertPoint guard(n);
    n->output()->replaceAllUsesWith(graph->insertConstant(t->detach().clone()));
    n->destroy();
  }
  torch::jit::EliminateDeadCode(graph);
  return graph;
}

int fold_batchnorm(torch::jit::Graph& graph) {
  torch::NoGradGuard no_grad;
  static const auto kBatchNorm = c10::Symbol::fromQualString("aten::batch_norm");
  static const auto kConv = c10::Symbol::fromQualString("aten::_convolution");
  int folded = 0;
  for (auto* bn : nodes_of_kind(graph, kBatchNorm)) {
    auto* conv = bn->input(0)->node();
    if (conv->kind() != kConv || conv->output()->uses().size() != 1) continue;
    const auto training = torch::jit::toIValue(bn->input(5));
    const auto groups = torch::jit::toIValue(conv->input(8));
    const auto transposed = torch::jit::toIValue(conv->input(6));
    const auto eps = torch::jit::toIValue(bn->input(7));
    const auto w = const_tensor(conv->input(1));
    const auto mean = const_tensor(bn->input(3));
    const auto var = const_tensor(bn->input(4));
    if (!training || training->toBool() || !groups || groups->toInt() != 1 || !transposed || !eps ||
        !w || !mean || !var)
      continue;
    const auto opts = torch::TensorOptions().dtype(torch::kDouble);
    const auto c = mean->size(0);
    const auto gamma =
        const_tensor(bn->input(1)).value_or(torch::ones({c}, opts)).to(torch::kDouble);
    const auto beta =
        const_tensor(bn->input(2)).value_or(torch::zeros({c}, opts)).to(torch::kDouble);
    const auto b =
        const_tensor(conv->input(2)).value_or(torch::zeros({c}, opts)).to(torch::kDouble);
    const auto scale = gamma / (var->to(torch::kDouble) + eps->toDouble()).sqrt();
    std::vector<int64_t> view(w->dim(), 1);
    view[transposed->toBool() ? 1 : 0] = c;
    const auto new_w = (w->to(torch::kDouble) * scale.view(view)).to(w->scalar_type()).contiguous();
    const auto new_b =
        ((b - mean->to(torch::kDouble)) * scale + beta).to(w->scalar_type()).contiguous();
    torch::jit::WithInsertPoint guard(conv);
    conv->replaceInput(1, graph.insertConstant(new_w));
    conv->replaceInput(2, graph.insertConstant(new_b));
    bn->output()->replaceAllUsesWith(conv->output());
    bn->destroy();
    ++folded;
  }
  torch::jit::EliminateDeadCode(graph.block());
  return folded;
}

int canonicalize_convolutions(torch::jit::Graph& graph) {
  static const auto kConv = c10::Symbol::fromQualString("aten::_convolution");
  int done = 0;
  for (auto* n : nodes_of_kind(graph, kConv)) {
    const auto transposed = torch::jit::toIValue(n->input(6));
    const auto w = const_tensor(n->input(1));
    if (!transposed || !w || (w->dim() != 4 && w->dim() != 5)) continue;
    const bool three = w->dim() == 5;
    torch::jit::WithInsertPoint guard(n);
    torch::jit::Value* out = nullptr;
    if (transposed->toBool()) {
      out = graph.insert(three ? c10::aten::conv_transpose3d : c10::aten::conv_transpose2d,
                         {n->input(0), n->input(1), n->input(2), n->input(3), n->input(4),
                          n->input(7), n->input(8), n->input(5)});
    } else {
      out = graph.insert(three ? c10::aten::conv3d : c10::aten::conv2d,
                         {n->input(0), n->input(1), n->input(2), n->input(3), n->input(4),
                          n->input(5), n->input(8)});
    }
    out->setType(n->output()->type());
    n->output()->replaceAllUsesWith(out);
    n->destroy();
    ++done;
  }
  return done;
}

int choose_convtranspose_kernels(torch::jit::Graph& graph, std::vector<std::string>* report) {
  torch::NoGradGuard no_grad;
  static const auto kPhase = c10::Symbol::fromQualString("barton::conv_transpose_phase");
  std::vector<torch::jit::Node*> cands;
  for (auto* n : graph.nodes()) {
    if (n->kind() != c10::aten::conv_transpose3d && n->kind() != c10::aten::conv_transpose2d)
      continue;
    const auto w = const_tensor(n->input(1));
    auto all = [&](std::size_t i, int64_t v) {
      const auto xs = const_ints(n->input(i));
      return xs && std::all_of(xs->begin(), xs->end(), [v](int64_t x) { return x == v; });
    };
    const auto groups = torch::jit::toIValue(n->input(6));
    if (!w || !groups || groups->toInt() != 1 || !all(3, 2) || !all(4, 1) || !all(5, 1) ||
        !all(7, 1))
      continue;
    bool k3 = true;
    for (int64_t d = 2; d < w->dim(); ++d) k3 = k3 && w->size(d) == 3;
    const auto t = n->input(0)->type()->cast<c10::TensorType>();
    if (!k3 || !t || !t->sizes().concrete_sizes()) continue;
    cands.push_back(n);
  }
  int replaced = 0;
  for (auto* n : cands) {
    const auto w = *const_tensor(n->input(1));
    const auto b = const_tensor(n->input(2)).value_or(torch::Tensor());
    const auto x =
        torch::randn(*n->input(0)->type()->cast<c10::TensorType>()->sizes().concrete_sizes());
    const int dims = static_cast<int>(w.dim()) - 2;
    const std::vector<int64_t> two(dims, 2), one(dims, 1);
    auto native = [&] {
      return dims == 3 ? torch::conv_transpose3d(x, w, b, two, one, one, 1, one)
                       : torch::conv_transpose2d(x, w, b, two, one, one, 1, one);
    };
    auto phase = [&] { return nets::conv_transpose_phase(x, w, b, dims); };
    auto time = [](const std::function<torch::Tensor()>& f) {
      f();  // warm-up (kernel selection, allocations)
      f();
      double best = 1e30;
      for (int i = 0; i < 3; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return best;
    };
    const double tn = time(native), tp = time(phase);
    if (report) {
      report->push_back(
          fmt::format("ConvTranspose {}->{} on [{}]: native {:.1f} ms, phase {:.1f} ms", w.size(0),
                      w.size(1), fmt::join(x.sizes(), ","), 1e3 * tn, 1e3 * tp));
    }
    // The phase decomposition unless LibTorch's kernel is clearly faster (timings of one small
    // batch are noisy; the eager network always uses the decomposition).
    if (tn < 0.8 * tp) continue;
    auto* p = graph.create(kPhase, {n->input(0), n->input(1), n->input(2)}, 1);
    p->insertBefore(n);
    p->output()->setType(n->output()->type());
    n->output()->replaceAllUsesWith(p->output());
    n->destroy();
    ++replaced;
  }
  return replaced;
}

int use_slab_convolutions(torch::jit::Graph& graph) {
  static const auto kSlab = c10::Symbol::fromQualString("barton::slab_conv3d");
  std::vector<torch::jit::Node*> cands;
  for (auto* n : graph.nodes()) {
    if (n->kind() != c10::aten::conv3d) continue;
    const auto w = const_tensor(n->input(1));
    const auto dilation = const_ints(n->input(5));
    const auto groups = torch::jit::toIValue(n->input(6));
    if (!w || w->dim() != 5 || !nets::is_thin_conv(w->size(1), w->size(0)) || !groups ||
        groups->toInt() != 1 || !dilation)
      continue;
    if (!std::all_of(dilation->begin(), dilation->end(), [](int64_t d) { return d == 1; }))
      continue;
    if (!const_ints(n->input(3)) || !const_ints(n->input(4))) continue;
    cands.push_back(n);
  }
  for (auto* n : cands) {
    auto* p =
        graph.create(kSlab, {n->input(0), n->input(1), n->input(2), n->input(3), n->input(4)}, 1);
    p->insertBefore(n);
    p->output()->setType(n->output()->type());
    n->output()->replaceAllUsesWith(p->output());
    n->destroy();
  }
  return static_cast<int>(cands.size());
}

void cast_weights(torch::jit::Graph& graph, c10::ScalarType dtype) {
  BARTON_CHECK(dtype == torch::kHalf || dtype == torch::kBFloat16,
               "weights can be cast to float16 or bfloat16 only");
  torch::NoGradGuard no_grad;
  for (auto* n : tensor_constants(graph)) {
    const auto t = const_tensor(n->output());
    if (!t || !t->is_floating_point()) continue;
    torch::jit::WithInsertPoint guard(n);
    n->output()->replaceAllUsesWith(graph.insertConstant(t->to(dtype)));
    n->destroy();
  }
  // LibTorch's CPU kernels cannot run reduced-precision transposed convolutions: those stay in
  // float32 between two casts.
  static const auto kConv = c10::Symbol::fromQualString("aten::_convolution");
  std::vector<torch::jit::Node*> transposed;
  for (auto* n : graph.nodes()) {
    const auto t = n->kind() == kConv ? torch::jit::toIValue(n->input(6)) : c10::nullopt;
    if ((t && t->toBool()) ||
        n->kind().toQualString() == std::string("barton::conv_transpose_phase") ||
        n->kind() == c10::aten::conv_transpose3d || n->kind() == c10::aten::conv_transpose2d)
      transposed.push_back(n);
  }
  for (auto* n : transposed) {
    torch::jit::WithInsertPoint guard(n);
    auto* in_f = graph.insert(c10::aten::to,
                              {n->input(0), static_cast<int64_t>(torch::kFloat), false, false});
    if (auto t = n->input(0)->type()->cast<c10::TensorType>())
      in_f->setType(t->withScalarType(torch::kFloat));
    n->replaceInput(0, in_f);
    for (std::size_t i : {1, 2}) {
      if (const auto w = const_tensor(n->input(i)))
        n->replaceInput(i, graph.insertConstant(w->to(torch::kFloat)));
    }
    torch::jit::WithInsertPoint after(n->next());
    auto* back =
        graph.insert(c10::aten::to, {n->output(), static_cast<int64_t>(dtype), false, false});
    if (auto t = n->output()->type()->cast<c10::TensorType>())
      back->setType(t->withScalarType(dtype));
    n->output()->replaceAllUsesAfterNodeWith(back->node(), back);
  }
  auto* x = graph.inputs().at(0);
  {
    torch::jit::WithInsertPoint guard(graph.nodes().front());
    auto* cast = graph.insert(c10::aten::to, {x, static_cast<int64_t>(dtype), false, false});
    if (auto t = x->type()->cast<c10::TensorType>()) cast->setType(t->withScalarType(dtype));
    x->replaceAllUsesAfterNodeWith(cast->node(), cast);
  }
  torch::jit::WithInsertPoint guard(graph.return_node());
  auto* out = graph.insert(
      c10::aten::to, {graph.outputs().at(0), static_cast<int64_t>(torch::kFloat), false, false});
  if (auto t = graph.outputs().at(0)->type()->cast<c10::TensorType>())
    out->setType(t->withScalarType(torch::kFloat));
  graph.return_node()->replaceInput(0, out);
}

std::vector<std::pair<std::string, int>> node_histogram(const torch::jit::Graph& graph) {
  std::map<std::string, int> counts;
  for (const auto* n : graph.nodes()) {
    if (n->kind() == c10::prim::Constant || n->kind() == c10::prim::ListConstruct) continue;
    ++counts[n->kind().toQualString()];
  }
  return {counts.begin(), counts.end()};
}

}  // namespace barton::exporter
