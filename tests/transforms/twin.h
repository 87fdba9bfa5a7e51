#pragma once
// Runs the Python twin of a MONAI transform (tests/golden/monai_twin) on the same inputs as Barton
// and compares the results.
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmar/registries.h"
#include "transforms/transform.h"

namespace barton::test {

struct TwinItem {
  std::vector<int64_t> shape;
  std::vector<double> affine;  // 16
  std::string dtype;
  at::Tensor data;  // float64
};
using TwinSample = std::map<std::string, TwinItem>;

/// Runs the twin transform `name` with MONAI `args_json` and `params_json` on the image keys of
/// `in`.
std::vector<TwinSample> run_twin(const std::string& name,
                                 const std::string& args_json,
                                 const std::string& params_json,
                                 const transforms::Sample& in);

/// As above, also passing the sample's non-image values (a string holding a JSON list or number is
/// passed parsed, as MONAI would hold it) and returning each output sample's non-image values in
/// `values`.
std::vector<TwinSample> run_twin(const std::string& name,
                                 const std::string& args_json,
                                 const std::string& params_json,
                                 const transforms::Sample& in,
                                 std::vector<nlohmann::json>* values);

/// A sample value as JSON (what run_twin passes): lists, numbers, parsed JSON strings.
nlohmann::json value_json(const transforms::Value& v);

/// Builds a Barton transform from {"name", "args"} through the registry.
std::unique_ptr<transforms::Transform> make_transform(const std::string& name,
                                                      const std::string& args_json);

/// Applies a deterministic Barton transform to a copy of `in`.
transforms::Sample apply(const transforms::Transform& t,
                         const transforms::Sample& in,
                         uint64_t seed = 0);

/// Compares one key: shape, affine (atol), values (atol + rtol * max|ref|) and, when `check_dtype`,
/// dtype.
void expect_same(const transforms::ImageItem& ours,
                 const TwinItem& ref,
                 double tol = 1e-4,
                 double affine_tol = 1e-5,
                 bool check_dtype = true);

/// An image item from a tensor (float32 unless given) with an affine.
transforms::ImageItem item(const at::Tensor& data, const Affine& affine = identity_affine());

/// A small CT-like case: LPS, anisotropic spacing, int16 HU image and uint8 label (as float32 after
/// LoadImaged would make them): keys "image" and "label".
transforms::Sample ct_case(std::vector<int64_t> size = {40, 36, 14}, uint64_t seed = 1);

}  // namespace barton::test
