#include "core/affine.h"

#include <cmath>
#include <utility>

#include "core/errors.h"

namespace barton {

Affine identity_affine() {
  Affine a{};
  a[0] = a[5] = a[10] = a[15] = 1.0;
  return a;
}

std::vector<double> voxel_spacing(const Affine& a, int dims) {
  std::vector<double> out;
  for (int c = 0; c < dims; ++c) {
    double n = 0;
    for (int r = 0; r < 3; ++r) n += a[r * 4 + c] * a[r * 4 + c];
    out.push_back(std::sqrt(n));
  }
  return out;
}

std::string orientation_code(const Affine& a, int dims) {
  // nibabel.orientations.io_orientation + ornt2axcodes, without the SVD step (exact for affines
  // without shear).
  double m[3][3];
  const auto zooms = voxel_spacing(a, 3);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m[r][c] = zooms[c] > 0 ? a[r * 4 + c] / zooms[c] : 0.0;
  static const char kPos[3] = {'R', 'A', 'S'}, kNeg[3] = {'L', 'P', 'I'};
  std::string code;
  for (int c = 0; c < dims; ++c) {
    int best = -1;
    double best_v = 0;
    for (int r = 0; r < 3; ++r) {
      if (std::abs(m[r][c]) > std::abs(best_v) + 1e-12) {
        best = r;
        best_v = m[r][c];
      }
    }
    if (best < 0) {
      code += '?';
      continue;
    }
    code += best_v < 0 ? kNeg[best] : kPos[best];
    for (int k = 0; k < 3; ++k) m[best][k] = 0;
  }
  return code;
}

Affine matmul(const Affine& a, const Affine& b) {
  Affine out{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += a[r * 4 + k] * b[k * 4 + c];
      out[r * 4 + c] = s;
    }
  return out;
}

Affine inverse(const Affine& a) {
  // Gauss-Jordan with partial pivoting on a 4x8 block.
  double m[4][8];
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 8; ++c) m[r][c] = c < 4 ? a[r * 4 + c] : (c - 4 == r ? 1.0 : 0.0);
  for (int c = 0; c < 4; ++c) {
    int piv = c;
    for (int r = c + 1; r < 4; ++r)
      if (std::abs(m[r][c]) > std::abs(m[piv][c])) piv = r;
    if (std::abs(m[piv][c]) < 1e-12) throw Error("affine is singular and cannot be inverted");
    if (piv != c)
      for (int k = 0; k < 8; ++k) std::swap(m[c][k], m[piv][k]);
    const double d = m[c][c];
    for (int k = 0; k < 8; ++k) m[c][k] /= d;
    for (int r = 0; r < 4; ++r) {
      if (r == c) continue;
      const double f = m[r][c];
      for (int k = 0; k < 8; ++k) m[r][k] -= f * m[c][k];
    }
  }
  Affine out{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) out[r * 4 + c] = m[r][c + 4];
  return out;
}

}  // namespace barton
