#pragma once
/// 4x4 affines (voxel index -> RAS world, millimetres) and the geometry helpers every domain uses.
/// Pure functions on small arrays; no tensors.

#include <array>
#include <string>
#include <vector>

namespace barton {

/// Row-major 4x4 matrix mapping voxel indices (i, j, k, 1) to RAS millimetres.
using Affine = std::array<double, 16>;

/// The identity affine.
Affine identity_affine();
/// Voxel sizes: the norms of the affine's first `dims` columns.
std::vector<double> voxel_spacing(const Affine& affine, int dims = 3);
/// nibabel's aff2axcodes: for each voxel axis, the world axis it mostly points along ("RAS").
std::string orientation_code(const Affine& affine, int dims = 3);
/// Matrix product a * b.
Affine matmul(const Affine& a, const Affine& b);
/// Inverse; throws Error for a singular matrix.
Affine inverse(const Affine& a);

}  // namespace barton
