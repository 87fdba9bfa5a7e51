#include "export/onnx.h"

#include <map>

#include <torch/csrc/jit/ir/constants.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "export/graph.h"
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

namespace barton::exporter {

namespace {

using torch::jit::Node;
using torch::jit::Value;

class Writer {
 public:
  // The graph is only read; torch's IR hands out mutable pointers from a non-const graph.
  Writer(const torch::jit::Graph& g, const OnnxOptions& o)
      : g_(const_cast<torch::jit::Graph&>(g)), o_(o) {
    model_.set_ir_version(8);
    model_.set_producer_name("barton");
    model_.set_producer_version(o.producer_version);
    model_.set_doc_string(o.doc);
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(o.opset);
    graph_ = model_.mutable_graph();
    graph_->set_name(o.graph_name);
  }

  onnx::ModelProto run(OnnxSignature* sig) {
    BARTON_CHECK(g_.inputs().size() == 1 && g_.outputs().size() == 1,
                 "the graph must have one input and one output");
    auto* in = g_.inputs()[0];
    const auto in_sizes = sizes_of(in);
    names_[in] = o_.input_name;
    add_io(graph_->add_input(), o_.input_name, in_sizes, true);
    if (o_.half) {
      auto cast = make("Cast", {o_.input_name}, {});
      attr(cast, "to", static_cast<int64_t>(onnx::TensorProto::FLOAT16));
      names_[in] = emit(cast, nullptr, "input_half");
    }
    for (auto* n : g_.nodes()) translate(n);
    auto* out = g_.outputs()[0];
    const auto out_sizes = sizes_of(out);
    std::string last = name(out);
    if (o_.half) {
      auto cast = make("Cast", {last}, {});
      attr(cast, "to", static_cast<int64_t>(onnx::TensorProto::FLOAT));
      last = emit(cast, nullptr, "output_float");
    }
    graph_->add_node()->CopyFrom(make("Identity", {last}, {o_.output_name}));
    add_io(graph_->add_output(), o_.output_name, out_sizes, false);
    if (sig) {
      sig->input_name = o_.input_name;
      sig->output_name = o_.output_name;
      sig->input_dims = symbolic(in_sizes, true);
      sig->output_dims = symbolic(out_sizes, false);
    }
    return model_;
  }

 private:
  std::vector<int64_t> symbolic(std::vector<int64_t> d, bool /*input*/) const {
    if (o_.dynamic_batch && !d.empty()) d[0] = -1;
    if (o_.dynamic_spatial) {
      for (std::size_t i = 2; i < d.size(); ++i) d[i] = -1;
    }
    return d;
  }

  void add_io(onnx::ValueInfoProto* v,
              const std::string& nm,
              const std::vector<int64_t>& sizes,
              bool input) {
    v->set_name(nm);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = t->mutable_shape();
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto* d = shape->add_dim();
      if (i == 0 && o_.dynamic_batch)
        d->set_dim_param("batch");
      else if (i >= 2 && o_.dynamic_spatial)
        d->set_dim_param(input ? fmt::format("dim_{}", i - 2) : fmt::format("out_dim_{}", i - 2));
      else
        d->set_dim_value(sizes[i]);
    }
  }

  static std::vector<int64_t> sizes_of(const Value* v) {
    const auto t = v->type()->cast<c10::TensorType>();
    if (!t) throw NotSupported(fmt::format("graph value %{} is not a tensor", v->debugName()));
    const auto s = t->sizes().concrete_sizes();
    if (!s)
      throw NotSupported(fmt::format("graph value %{} has no recorded shape", v->debugName()));
    return *s;
  }

  static c10::IValue ivalue(const Value* v) {
    const auto iv = torch::jit::toIValue(v);
    if (!iv)
      throw NotSupported(fmt::format("node input %{} ({}) is not a constant", v->debugName(),
                                     v->node()->kind().toQualString()));
    return *iv;
  }
  static std::vector<int64_t> ints(const Value* v) {
    if (auto xs = const_ints(v)) return *xs;
    throw NotSupported(
        fmt::format("node input %{} is not a constant integer list", v->debugName()));
  }
  static bool is_none(const Value* v) {
    return v->type()->kind() == c10::TypeKind::NoneType || v->mustBeNone();
  }

  std::string fresh(const std::string& base) { return fmt::format("{}_{}", base, counter_++); }

  /// The ONNX name of a graph value; tensor constants become initializers on first use.
  std::string name(Value* v) {
    if (const auto it = names_.find(v); it != names_.end()) return it->second;
    if (v->node()->kind() == c10::prim::Constant) {
      const auto iv = torch::jit::toIValue(v);
      if (iv && iv->isTensor()) return names_[v] = initializer(iv->toTensor(), "w");
    }
    throw NotSupported(fmt::format("graph value %{} comes from an untranslated node {}",
                                   v->debugName(), v->node()->kind().toQualString()));
  }

  /// `compute`: a float tensor that meets the data (stored in float16 with OnnxOptions::half);
  /// otherwise float32 (Resize scales).
  std::string initializer(const torch::Tensor& t_in, const std::string& base, bool compute = true) {
    auto* init = graph_->add_initializer();
    const auto nm = fresh(base);
    init->set_name(nm);
    for (auto s : t_in.sizes()) init->add_dims(s);
    torch::Tensor t = t_in.contiguous().cpu();
    if (t.is_floating_point()) t = t.to(o_.half && compute ? torch::kHalf : torch::kFloat);
    switch (t.scalar_type()) {
      case torch::kFloat:
        init->set_data_type(onnx::TensorProto::FLOAT);
        break;
      case torch::kDouble:
        t = t.to(torch::kFloat);
        init->set_data_type(onnx::TensorProto::FLOAT);
        break;
      case torch::kHalf:
        init->set_data_type(onnx::TensorProto::FLOAT16);
        break;
      case torch::kBFloat16:
        init->set_data_type(onnx::TensorProto::BFLOAT16);
        break;
      case torch::kLong:
        init->set_data_type(onnx::TensorProto::INT64);
        break;
      default:
        throw NotSupported(fmt::format("weights of type {} cannot be written to ONNX",
                                       c10::toString(t.scalar_type())));
    }
    init->set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
    return nm;
  }
  std::string ints_init(const std::vector<int64_t>& v, const std::string& base) {
    return initializer(torch::tensor(v, torch::kLong), base);
  }
  std::string floats_init(const std::vector<float>& v,
                          const std::string& base,
                          bool compute = true) {
    return initializer(torch::tensor(v, torch::kFloat), base, compute);
  }

  static onnx::NodeProto make(const std::string& op,
                              const std::vector<std::string>& in,
                              const std::vector<std::string>& out) {
    onnx::NodeProto n;
    n.set_op_type(op);
    for (const auto& i : in) n.add_input(i);
    for (const auto& o : out) n.add_output(o);
    return n;
  }
  static void attr(onnx::NodeProto& n, const std::string& k, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& k, double v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(static_cast<float>(v));
  }
  static void attr(onnx::NodeProto& n, const std::string& k, const std::string& v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& k, const std::vector<int64_t>& v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }

  /// Adds a node whose output is the ONNX value for `out` (or a fresh temporary when null).
  std::string emit(onnx::NodeProto n, Value* out, const std::string& base = "t") {
    const auto nm = out ? fresh(out->debugName().empty() ? base : "v") : fresh(base);
    n.add_output(nm);
    n.set_name(fresh(n.op_type()));
    graph_->add_node()->CopyFrom(n);
    if (out) names_[out] = nm;
    return nm;
  }

  /// Per-channel vector reshaped to [C, 1, ..., 1] for broadcasting over [B, C, *spatial].
  std::string channel_param(const torch::Tensor& t, int spatial, const std::string& base) {
    std::vector<int64_t> shape = {t.numel()};
    for (int i = 0; i < spatial; ++i) shape.push_back(1);
    return initializer(t.reshape(shape), base);
  }

  torch::Tensor tensor_or(const Value* v, int64_t n, float fill) {
    if (is_none(v)) return torch::full({n}, fill);
    return ivalue(v).toTensor();
  }

  void translate(Node* n) {
    const std::string k = n->kind().toQualString();
    if (k == "prim::Constant" || k == "prim::ListConstruct") return;  // read by their users
    if (translate_conv_norm(n, k) || translate_activation(n, k) || translate_elementwise(n, k) ||
        translate_resample(n, k))
      return;
    throw NotSupported(fmt::format("the graph node {} has no ONNX translation yet", k));
  }

  /// Convolutions and normalisations. Returns false when `n` is not one of them.
  bool translate_conv_norm(Node* n, const std::string& k) {
    auto in = [&](std::size_t i) { return name(n->input(i)); };
    auto* out = n->outputs().size() == 1 ? n->output() : nullptr;
    if (k == "aten::_convolution") {
      const bool transposed = ivalue(n->input(6)).toBool();
      const auto w = ivalue(n->input(1)).toTensor();
      const int spatial = static_cast<int>(w.dim()) - 2;
      const auto stride = ints(n->input(3)), pad = rep(ints(n->input(4)), spatial),
                 dil = ints(n->input(5));
      std::vector<std::string> inputs = {in(0), in(1)};
      if (!is_none(n->input(2))) inputs.push_back(in(2));
      auto node = make(transposed ? "ConvTranspose" : "Conv", inputs, {});
      std::vector<int64_t> kernel(w.sizes().begin() + 2, w.sizes().end());
      std::vector<int64_t> pads(pad);
      pads.insert(pads.end(), pad.begin(), pad.end());
      attr(node, "kernel_shape", kernel);
      attr(node, "strides", rep(stride, spatial));
      attr(node, "pads", pads);
      attr(node, "dilations", rep(dil, spatial));
      attr(node, "group", ivalue(n->input(8)).toInt());
      if (transposed) attr(node, "output_padding", rep(ints(n->input(7)), spatial));
      emit(node, out);
      return true;
    }
    if (k == "aten::batch_norm") {
      const int64_t c = sizes_of(n->input(0)).at(1);
      auto node = make("BatchNormalization",
                       {in(0), initializer(tensor_or(n->input(1), c, 1), "bn_scale"),
                        initializer(tensor_or(n->input(2), c, 0), "bn_bias"), in(3), in(4)},
                       {});
      attr(node, "epsilon", ivalue(n->input(7)).toDouble());
      emit(node, out);
      return true;
    }
    if (k == "aten::instance_norm") {
      if (!ivalue(n->input(5)).toBool())
        throw NotSupported(
            "instance norm with running statistics (track_running_stats) is not exported");
      const int64_t c = sizes_of(n->input(0)).at(1);
      auto node = make("InstanceNormalization",
                       {in(0), initializer(tensor_or(n->input(1), c, 1), "in_scale"),
                        initializer(tensor_or(n->input(2), c, 0), "in_bias")},
                       {});
      attr(node, "epsilon", ivalue(n->input(7)).toDouble());
      emit(node, out);
      return true;
    }
    if (k == "aten::group_norm") {
      // [B, C, *S] -> [B, G, -1] -> instance norm over each group -> back -> per-channel affine.
      const auto s = sizes_of(n->input(0));
      const int64_t groups = ivalue(n->input(1)).toInt(), c = s.at(1);
      const int spatial = static_cast<int>(s.size()) - 2;
      const auto x = in(0);
      const auto grouped =
          emit(make("Reshape", {x, ints_init({0, groups, -1}, "gn_shape")}, {}), nullptr, "gn");
      auto norm = make("InstanceNormalization",
                       {grouped, initializer(torch::ones({groups}), "gn_one"),
                        initializer(torch::zeros({groups}), "gn_zero")},
                       {});
      attr(norm, "epsilon", ivalue(n->input(4)).toDouble());
      const auto normed = emit(norm, nullptr, "gn");
      const auto shape = emit(make("Shape", {x}, {}), nullptr, "gn");
      auto y = emit(make("Reshape", {normed, shape}, {}), nullptr, "gn");
      if (!is_none(n->input(2)))
        y = emit(
            make("Mul", {y, channel_param(ivalue(n->input(2)).toTensor(), spatial, "gn_w")}, {}),
            nullptr, "gn");
      const auto bias = tensor_or(n->input(3), c, 0);
      emit(make("Add", {y, channel_param(bias, spatial, "gn_b")}, {}), out);
      return true;
    }
    return false;
  }

  /// Activations and softmax. Returns false when `n` is not one of them.
  bool translate_activation(Node* n, const std::string& k) {
    auto in = [&](std::size_t i) { return name(n->input(i)); };
    auto* out = n->outputs().size() == 1 ? n->output() : nullptr;
    if (k == "aten::relu" || k == "aten::relu_") {
      emit(make("Relu", {in(0)}, {}), out);
      return true;
    }
    if (k == "aten::sigmoid") {
      emit(make("Sigmoid", {in(0)}, {}), out);
      return true;
    }
    if (k == "aten::tanh") {
      emit(make("Tanh", {in(0)}, {}), out);
      return true;
    }
    if (k == "aten::selu") {
      emit(make("Selu", {in(0)}, {}), out);
      return true;
    }
    if (k == "aten::leaky_relu" || k == "aten::leaky_relu_") {
      auto node = make("LeakyRelu", {in(0)}, {});
      attr(node, "alpha", ivalue(n->input(1)).toScalar().toDouble());
      emit(node, out);
      return true;
    }
    if (k == "aten::elu") {
      auto node = make("Elu", {in(0)}, {});
      attr(node, "alpha", ivalue(n->input(1)).toScalar().toDouble());
      emit(node, out);
      return true;
    }
    if (k == "aten::prelu") {
      const auto w = ivalue(n->input(1)).toTensor();
      const int spatial = static_cast<int>(sizes_of(n->input(0)).size()) - 2;
      const auto slope = w.numel() == 1 ? initializer(w.reshape({1}), "prelu")
                                        : channel_param(w, spatial, "prelu");
      emit(make("PRelu", {in(0), slope}, {}), out);
      return true;
    }
    if (k == "aten::gelu") {
      if (n->inputs().size() > 1 && ivalue(n->input(1)).toStringRef() != "none")
        throw NotSupported("GELU with the tanh approximation is not exported");
      // 0.5 * x * (1 + erf(x / sqrt(2)))
      const auto x = in(0);
      const auto a =
          emit(make("Div", {x, floats_init({1.4142135623730951f}, "gelu")}, {}), nullptr, "gelu");
      const auto e = emit(make("Erf", {a}, {}), nullptr, "gelu");
      const auto p = emit(make("Add", {e, floats_init({1.f}, "gelu")}, {}), nullptr, "gelu");
      const auto m = emit(make("Mul", {x, p}, {}), nullptr, "gelu");
      emit(make("Mul", {m, floats_init({0.5f}, "gelu")}, {}), out);
      return true;
    }
    if (k == "aten::softmax") {
      auto node = make("Softmax", {in(0)}, {});
      attr(node, "axis", ivalue(n->input(1)).toInt());
      emit(node, out);
      return true;
    }
    return false;
  }

  /// Arithmetic and concatenation. Returns false when `n` is not one of them.
  bool translate_elementwise(Node* n, const std::string& k) {
    auto* out = n->outputs().size() == 1 ? n->output() : nullptr;
    if (k == "aten::add" || k == "aten::sub" || k == "aten::add_") {
      if (n->inputs().size() > 2 && ivalue(n->input(2)).toScalar().toDouble() != 1.0)
        throw NotSupported(k + " with alpha != 1 is not exported");
      emit(make(k == "aten::sub" ? "Sub" : "Add", {operand(n->input(0)), operand(n->input(1))}, {}),
           out);
      return true;
    }
    if (k == "aten::mul" || k == "aten::div") {
      emit(make(k == "aten::mul" ? "Mul" : "Div", {operand(n->input(0)), operand(n->input(1))}, {}),
           out);
      return true;
    }
    if (k == "aten::cat") {
      auto* list = n->input(0)->node();
      if (list->kind() != c10::prim::ListConstruct)
        throw NotSupported("aten::cat of a list that is not built in the graph");
      std::vector<std::string> parts;
      for (auto* v : list->inputs()) parts.push_back(name(v));
      auto node = make("Concat", parts, {});
      attr(node, "axis", ivalue(n->input(1)).toInt());
      emit(node, out);
      return true;
    }
    return false;
  }

  /// Pooling, resizing, padding, casts and identities. Returns false when `n` is not one of them.
  bool translate_resample(Node* n, const std::string& k) {
    auto in = [&](std::size_t i) { return name(n->input(i)); };
    auto* out = n->outputs().size() == 1 ? n->output() : nullptr;
    if (k == "aten::max_pool2d" || k == "aten::max_pool3d") {
      const int spatial = k == "aten::max_pool3d" ? 3 : 2;
      const auto kernel = rep(ints(n->input(1)), spatial);
      auto stride = ints(n->input(2));
      if (stride.empty()) stride = kernel;
      const auto pad = rep(ints(n->input(3)), spatial);
      std::vector<int64_t> pads(pad);
      pads.insert(pads.end(), pad.begin(), pad.end());
      auto node = make("MaxPool", {in(0)}, {});
      attr(node, "kernel_shape", kernel);
      attr(node, "strides", rep(stride, spatial));
      attr(node, "pads", pads);
      attr(node, "dilations", rep(ints(n->input(4)), spatial));
      attr(node, "ceil_mode", static_cast<int64_t>(ivalue(n->input(5)).toBool()));
      emit(node, out);
      return true;
    }
    if (k == "aten::upsample_trilinear3d" || k == "aten::upsample_bilinear2d" ||
        k == "aten::upsample_nearest3d" || k == "aten::upsample_nearest2d" ||
        k == "aten::upsample_linear1d") {
      const bool nearest = k.find("nearest") != std::string::npos;
      const auto in_s = sizes_of(n->input(0)), out_s = sizes_of(out);
      std::vector<float> scales = {1.f, 1.f};
      const std::size_t first_scale = nearest ? 2 : 3;  // (x, size, [align_corners,] scales...)
      for (std::size_t d = 2; d < in_s.size(); ++d) {
        const std::size_t i = first_scale + d - 2;
        const auto sv = i < n->inputs().size() ? torch::jit::toIValue(n->input(i)) : c10::nullopt;
        if (sv && sv->isDouble())
          scales.push_back(static_cast<float>(sv->toDouble()));
        else if (o_.dynamic_spatial)
          throw NotSupported(k + " to a fixed size cannot have dynamic spatial axes");
        else
          scales.push_back(static_cast<float>(out_s[d]) / static_cast<float>(in_s[d]));
      }
      auto node = make("Resize", {in(0), "", floats_init(scales, "scales", false)}, {});
      if (nearest) {
        attr(node, "mode", std::string("nearest"));
        attr(node, "coordinate_transformation_mode", std::string("asymmetric"));
        attr(node, "nearest_mode", std::string("floor"));
      } else {
        attr(node, "mode", std::string("linear"));
        attr(node, "coordinate_transformation_mode",
             std::string(ivalue(n->input(2)).toBool() ? "align_corners" : "pytorch_half_pixel"));
      }
      emit(node, out);
      return true;
    }
    if (k == "aten::constant_pad_nd") {
      const auto pad = ints(n->input(1));  // last axis first: (begin, end) pairs
      const auto rank = sizes_of(n->input(0)).size();
      std::vector<int64_t> pads(2 * rank, 0);
      for (std::size_t i = 0; i + 1 < pad.size() && i / 2 < rank; i += 2) {
        const auto axis = rank - 1 - i / 2;
        pads[axis] = pad[i];
        pads[rank + axis] = pad[i + 1];
      }
      const double value = n->inputs().size() > 2 ? ivalue(n->input(2)).toScalar().toDouble() : 0.0;
      emit(make("Pad",
                {in(0), ints_init(pads, "pads"),
                 floats_init({static_cast<float>(value)}, "pad_value")},
                {}),
           out);
      return true;
    }
    if (k == "aten::to") {
      const auto dtype = static_cast<c10::ScalarType>(ivalue(n->input(1)).toInt());
      auto node = make("Cast", {in(0)}, {});
      int64_t to = onnx::TensorProto::FLOAT;
      if (dtype == torch::kHalf)
        to = onnx::TensorProto::FLOAT16;
      else if (dtype == torch::kBFloat16)
        to = onnx::TensorProto::BFLOAT16;
      else if (dtype != torch::kFloat)
        throw NotSupported("a cast to " + std::string(c10::toString(dtype)) + " is not exported");
      attr(node, "to", to);
      emit(node, out);
      return true;
    }
    if (k == "aten::contiguous" || k == "aten::clone" || k == "aten::detach" ||
        k == "aten::dropout" || k == "aten::feature_dropout") {
      emit(make("Identity", {in(0)}, {}), out);
      return true;
    }
    return false;
  }

  /// A tensor operand, or a scalar constant as a one-element initializer.
  std::string operand(Value* v) {
    if (v->node()->kind() == c10::prim::Constant) {
      const auto iv = torch::jit::toIValue(v);
      if (iv && (iv->isDouble() || iv->isInt()))
        return floats_init({static_cast<float>(iv->toScalar().toDouble())}, "scalar");
    }
    return name(v);
  }

  static std::vector<int64_t> rep(std::vector<int64_t> v, std::size_t n) {
    if (v.size() == 1 && n > 1) v.assign(n, v[0]);
    return v;
  }

  torch::jit::Graph& g_;
  const OnnxOptions& o_;
  onnx::ModelProto model_;
  onnx::GraphProto* graph_ = nullptr;
  std::map<const Value*, std::string> names_;
  int counter_ = 0;
};

std::vector<int64_t> dims_of(const onnx::ValueInfoProto& v) {
  std::vector<int64_t> out;
  for (const auto& d : v.type().tensor_type().shape().dim())
    out.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return out;
}

}  // namespace

std::vector<int64_t> check_onnx(const std::string& bytes, const std::string& what) {
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes))
    throw IoError(what, "is not an ONNX model (protobuf parse failed)");
  try {
    onnx::checker::check_model(m);
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: the ONNX model is invalid: {}", what, e.what()));
  }
  return dims_of(m.graph().output(0));
}

std::string graph_to_onnx(const torch::jit::Graph& graph,
                          const OnnxOptions& options,
                          OnnxSignature* signature) {
  Writer w(graph, options);
  auto model = w.run(signature);
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("the ONNX model could not be serialized");
  const auto out = check_onnx(bytes, options.graph_name);
  if (signature) {
    // Shape inference must agree with the traced output wherever an axis is fixed.
    for (std::size_t i = 0; i < out.size() && i < signature->output_dims.size(); ++i) {
      if (out[i] >= 0 && signature->output_dims[i] >= 0 && out[i] != signature->output_dims[i]) {
        throw Error(
            fmt::format("ONNX shape inference gives output dims [{}], the traced network [{}]",
                        fmt::join(out, ", "), fmt::join(signature->output_dims, ", ")));
      }
    }
  }
  return bytes;
}

}  // namespace barton::exporter
