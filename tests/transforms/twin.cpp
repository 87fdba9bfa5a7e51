#include "transforms/twin.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "data/synth.h"
#include "support/test_support.h"

namespace barton::test {

namespace fs = std::filesystem;
using transforms::ImageItem;
using transforms::Sample;

namespace {

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kShort:
      return "int16";
    case at::kInt:
      return "int32";
    case at::kLong:
      return "int64";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    case at::kHalf:
      return "float16";
    default:
      return "float32";
  }
}

}  // namespace

nlohmann::json value_json(const transforms::Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* l = std::get_if<std::vector<int64_t>>(&v)) return *l;
  if (const auto* str = std::get_if<std::string>(&v)) {
    if (!str->empty() && ((*str)[0] == '[' || (*str)[0] == '{')) {
      try {
        return nlohmann::json::parse(*str);
      } catch (const nlohmann::json::exception&) {
      }
    }
    return *str;
  }
  return nullptr;
}

std::vector<TwinSample> run_twin(const std::string& name,
                                 const std::string& args_json,
                                 const std::string& params_json,
                                 const Sample& in) {
  return run_twin(name, args_json, params_json, in, nullptr);
}

std::vector<TwinSample> run_twin(const std::string& name,
                                 const std::string& args_json,
                                 const std::string& params_json,
                                 const Sample& in,
                                 std::vector<nlohmann::json>* values) {
  TempDir tmp;
  nlohmann::json inputs = nlohmann::json::object();
  for (const auto& key : in.keys()) {
    if (in.is_image(key)) {
      const auto& img = in.image(key);
      const auto raw = tmp.file(key + ".f64");
      const auto d = img.data.to(at::kDouble).contiguous();
      std::ofstream(raw, std::ios::binary)
          .write(static_cast<const char*>(d.data_ptr()), d.numel() * 8);
      nlohmann::json aff = nlohmann::json::array();
      for (int r = 0; r < 4; ++r)
        aff.push_back({img.affine[r * 4], img.affine[r * 4 + 1], img.affine[r * 4 + 2],
                       img.affine[r * 4 + 3]});
      inputs[key] = {{"raw", raw},
                     {"shape", d.sizes().vec()},
                     {"affine", aff},
                     {"dtype", dtype_name(img.data.scalar_type())}};
    } else if (values) {
      inputs[key] = {{"value", value_json(in.get(key))}};
    }
  }
  nlohmann::json req = {{"transform", name},
                        {"args", nlohmann::json::parse(args_json)},
                        {"params", nlohmann::json::parse(params_json)},
                        {"inputs", inputs},
                        {"output_dir", tmp.file("out")}};
  write_text(tmp.file("req.json"), req.dump());
  std::string out;
  const int rc = run_command("/usr/bin/python3 " + source_dir() +
                                 "/tests/golden/monai_twin/run.py " + tmp.file("req.json"),
                             &out, false);
  std::vector<TwinSample> result;
  EXPECT_EQ(rc, 0) << "twin failed for " << name << ": " << out;
  if (rc != 0) return result;
  const auto j = nlohmann::json::parse(out);
  int n = 0;
  for (const auto& s : j["outputs"]) {
    TwinSample ts;
    nlohmann::json vals = nlohmann::json::object();
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (!it.value().contains("shape")) {
        if (!it.value().contains("value")) continue;
        const auto& v = it.value()["value"];
        vals[it.key()] = v.is_string() ? value_json(v.get<std::string>()) : v;
        continue;
      }
      TwinItem t;
      t.shape = it.value()["shape"].get<std::vector<int64_t>>();
      for (const auto& row : it.value()["affine"])
        for (const auto& v : row) t.affine.push_back(v.get<double>());
      t.dtype = it.value()["dtype"];
      t.data = at::empty(t.shape, at::kDouble);
      std::ifstream f(tmp.file("out/" + std::to_string(n) + "_" + it.key() + ".f64"),
                      std::ios::binary);
      f.read(static_cast<char*>(t.data.data_ptr()), t.data.numel() * 8);
      ts[it.key()] = t;
    }
    result.push_back(ts);
    if (values) values->push_back(vals);
    ++n;
  }
  return result;
}

std::unique_ptr<transforms::Transform> make_transform(const std::string& name,
                                                      const std::string& args_json) {
  const auto spec =
      ConfigNode::parse("{\"name\": \"" + name + "\", \"args\": " + args_json + "}", "test.json");
  return builtin_registries().transforms.create(spec);
}

Sample apply(const transforms::Transform& t, const Sample& in, uint64_t seed) {
  Sample s = in.deep_copy();
  transforms::Rng rng(seed);
  t.apply(s, rng);
  return s;
}

void expect_same(
    const ImageItem& ours, const TwinItem& ref, double tol, double affine_tol, bool check_dtype) {
  ASSERT_EQ(ours.data.sizes().vec(), ref.shape);
  if (check_dtype) {
    EXPECT_EQ(dtype_name(ours.data.scalar_type()), ref.dtype == "bool" ? "bool" : ref.dtype);
  }
  for (int i = 0; i < 16; ++i)
    EXPECT_NEAR(ours.affine[i], ref.affine[i], affine_tol) << "affine[" << i << "]";
  if (ref.data.numel() == 0) return;
  const double scale = ref.data.abs().max().item<double>();
  const double diff = (ours.data.to(at::kDouble) - ref.data).abs().max().item<double>();
  const auto bad = ((ours.data.to(at::kDouble) - ref.data).abs() > tol * std::max(1.0, scale));
  EXPECT_LE(diff, tol * std::max(1.0, scale))
      << "max |barton - twin| (max |twin| = " << scale << "), " << bad.sum().item<int64_t>()
      << " of " << ref.data.numel() << " values differ, first at flat index "
      << (bad.any().item<bool>() ? bad.reshape(-1).nonzero()[0].item<int64_t>() : -1);
}

ImageItem item(const at::Tensor& data, const Affine& affine) {
  ImageItem it;
  it.data = data;
  it.affine = affine;
  return it;
}

Sample ct_case(std::vector<int64_t> size, uint64_t seed) {
  data::SynthOptions o;
  o.size = {size[0], size[1], size[2]};
  o.seed = seed;
  const auto c = data::synthesize_case(o);
  Sample s;
  s.set("image", item(c.image.data.to(at::kFloat), c.image.affine));
  s.set("label", item(c.label.data.to(at::kFloat), c.label.affine));
  return s;
}

}  // namespace barton::test
