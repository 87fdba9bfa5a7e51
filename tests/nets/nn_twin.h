#pragma once
// Runs the PyTorch twin of MONAI's networks, losses, metrics, optimizers and sliding window
// (tests/golden/monai_twin/run_nn.py) with /usr/bin/python3; tensors travel as raw float64 files.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "support/test_support.h"

namespace barton::test {

class NnTwin {
 public:
  using json = nlohmann::json;
  json spec(const torch::Tensor& t) {
    const auto path = tmp_.file("in" + std::to_string(n_++) + ".f64");
    const auto d = t.detach().to(torch::kDouble).contiguous();
    std::ofstream(path, std::ios::binary)
        .write(static_cast<const char*>(d.data_ptr()), d.numel() * 8);
    return {{"raw", path}, {"shape", d.sizes().vec()}};
  }
  static torch::Tensor load(const json& s) {
    auto t = torch::empty(s["shape"].get<std::vector<int64_t>>(), torch::kDouble);
    std::ifstream(s["raw"].get<std::string>(), std::ios::binary)
        .read(static_cast<char*>(t.data_ptr()), t.numel() * 8);
    return t;
  }
  json run(json req) {
    req["output_dir"] = tmp_.file("out" + std::to_string(n_++));
    const auto path = tmp_.file("req" + std::to_string(n_++) + ".json");
    write_text(path, req.dump());
    std::string out;
    const int rc = run_command(
        "/usr/bin/python3 " + source_dir() + "/tests/golden/monai_twin/run_nn.py " + path, &out,
        false);
    EXPECT_EQ(rc, 0) << out;
    return rc == 0 ? json::parse(out) : json::object();
  }
  const TempDir& dir() const { return tmp_; }

 private:
  TempDir tmp_;
  int n_ = 0;
};

/// Max |a - b|, with equal infinities and NaN in both counted as equal.
inline double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const auto fa = a.to(torch::kDouble), fb = b.to(torch::kDouble);
  const auto both_nan = torch::isnan(fa) & torch::isnan(fb);
  const auto both_inf = torch::isinf(fa) & torch::isinf(fb) & (fa == fb);
  return torch::where(both_nan | both_inf, torch::zeros_like(fa), (fa - fb).abs())
      .max()
      .item<double>();
}

}  // namespace barton::test
