#pragma once
// Comparison of a Barton image against the Python reference reader.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "io/image.h"
#include "support/test_support.h"

namespace barton::test {

inline void expect_matches_reference(const io::Image& img,
                                     const Reference& ref,
                                     double affine_tol = 1e-5,
                                     double data_tol = 1e-4) {
  ASSERT_EQ(std::vector<int64_t>(img.data.sizes().begin(), img.data.sizes().end()), ref.shape);
  for (int i = 0; i < 16; ++i)
    EXPECT_NEAR(img.affine[i], ref.affine[i], affine_tol) << "affine[" << i << "]";
  const auto expected = at::from_blob(const_cast<double*>(ref.data.data()), ref.shape, at::kDouble);
  const double diff = (img.data.to(at::kDouble) - expected).abs().max().item<double>();
  // float32 voxels (scaled files) carry ~1e-7 relative error against float64 references.
  const double tol =
      data_tol +
      (img.data.scalar_type() == at::kFloat ? 2e-7 * expected.abs().max().item<double>() : 0.0);
  EXPECT_LE(diff, tol) << "max |barton - reference| over " << expected.numel() << " voxels";
}

}  // namespace barton::test
