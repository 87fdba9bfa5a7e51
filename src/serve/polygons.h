#pragma once
/// AIAA's polygon tools (`/v1/mask2polygon`, `/v1/fixpolygon`): the outlines of a mask's regions
/// as polygons, a vertex moved with its neighbours, and polygons filled back into a mask.
/// Plain arrays, no tensors. A point is [u, v] for a grid indexed m[u][v] (the server maps a
/// 2-D PNG to [x, y] and a NIfTI slice to [j, i], as the clients read them).

#include <array>
#include <cstdint>
#include <vector>

namespace barton::serve {

/// A 2-D binary grid, u-major: at(u, v) = m[u * V + v].
struct Grid {
  int U = 0, V = 0;
  std::vector<uint8_t> m;
  Grid() = default;
  Grid(int u, int v)
      : U(u), V(v), m(static_cast<std::size_t>(u) * static_cast<std::size_t>(v), 0) {}
  uint8_t at(int u, int v) const { return m[static_cast<std::size_t>(u) * V + v]; }
  uint8_t& at(int u, int v) { return m[static_cast<std::size_t>(u) * V + v]; }
};

using Point = std::array<int, 2>;
using Polygon = std::vector<Point>;

/// The outer boundary of each 8-connected region of non-zero cells, traced clockwise from its
/// first cell in u-then-v order, keeping every `point_ratio`-th boundary cell (1 or less: all).
std::vector<Polygon> mask_to_polygons(const Grid& mask, int point_ratio);

/// Moves vertex `vertex` of `polygons[polygon]` by `offset`, and the `neighbours` vertices on
/// each side along the polygon by linearly less (the k-th by (1 - k / (neighbours + 1))).
/// Points stay inside [0, U) x [0, V). REQUIRES: valid indices.
void move_vertex(std::vector<Polygon>& polygons,
                 int polygon,
                 int vertex,
                 std::array<double, 2> offset,
                 int neighbours,
                 int U,
                 int V);

/// The polygons filled (even-odd, cell centres) with their edges drawn, as a U x V grid of 0/1.
Grid polygons_to_mask(const std::vector<Polygon>& polygons, int U, int V);

}  // namespace barton::serve
