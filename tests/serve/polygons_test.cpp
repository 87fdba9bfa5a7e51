// AIAA's polygon tools without a server: outlines traced from masks, vertices moved with their
// neighbours, polygons filled back, and the PNG the 2-D tool answers with.
#include "serve/polygons.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "io/png.h"

namespace barton {
namespace {

using serve::Grid;
using serve::Point;
using serve::Polygon;

Grid disk(int n, double cu, double cv, double r) {
  Grid g(n, n);
  for (int u = 0; u < n; ++u)
    for (int v = 0; v < n; ++v) g.at(u, v) = (u - cu) * (u - cu) + (v - cv) * (v - cv) <= r * r;
  return g;
}

/// A region cell with a background cell (or the grid's edge) among its 4 neighbours: the cells
/// an 8-connected outline passes through.
bool on_boundary(const Grid& g, Point p) {
  if (!g.at(p[0], p[1])) return false;
  for (const auto& [du, dv] :
       {std::pair{-1, 0}, std::pair{1, 0}, std::pair{0, -1}, std::pair{0, 1}}) {
    const int u = p[0] + du, v = p[1] + dv;
    if (u < 0 || v < 0 || u >= g.U || v >= g.V || !g.at(u, v)) return true;
  }
  return false;
}

TEST(Polygons, ARegionsOutlineIsItsBoundaryAndFillsBackToTheSameMask) {
  for (const auto& g : {disk(32, 15.5, 12.0, 9.3), disk(20, 4.0, 10.0, 2.2)}) {
    const auto polys = serve::mask_to_polygons(g, 1);
    ASSERT_EQ(polys.size(), 1u);
    for (const auto& p : polys[0]) EXPECT_TRUE(on_boundary(g, p)) << p[0] << "," << p[1];
    int boundary = 0;
    for (int u = 0; u < g.U; ++u)
      for (int v = 0; v < g.V; ++v) boundary += on_boundary(g, {u, v});
    EXPECT_GE(static_cast<int>(polys[0].size()), boundary) << "every boundary cell is visited";
    EXPECT_EQ(serve::polygons_to_mask(polys, g.U, g.V).m, g.m);
  }
}

TEST(Polygons, SeparateRegionsSinglePixelsAndThePointRatio) {
  Grid g(10, 12);
  for (int u = 1; u <= 3; ++u)
    for (int v = 1; v <= 4; ++v) g.at(u, v) = 1;
  g.at(7, 9) = 1;  // one cell
  const auto polys = serve::mask_to_polygons(g, 1);
  ASSERT_EQ(polys.size(), 2u);
  EXPECT_EQ(polys[0].size(), 10u) << "a 3x4 rectangle has 10 boundary cells";
  EXPECT_EQ(polys[0][0], (Point{1, 1})) << "traced from its first cell in u-then-v order";
  EXPECT_EQ(polys[1], (Polygon{{7, 9}}));
  EXPECT_EQ(serve::polygons_to_mask(polys, 10, 12).m, g.m);
  const auto sparse = serve::mask_to_polygons(g, 3);
  EXPECT_EQ(sparse[0].size(), 4u) << "every third of 10 points: 0, 3, 6, 9";
  EXPECT_EQ(sparse[0][1], polys[0][3]);
  EXPECT_TRUE(serve::mask_to_polygons(Grid(5, 5), 1).empty());
}

TEST(Polygons, AMovedVertexDragsItsNeighboursLinearlyLess) {
  std::vector<Polygon> polys{{{10, 10}, {10, 20}, {10, 30}, {20, 30}, {30, 30}, {30, 10}}};
  serve::move_vertex(polys, 0, 1, {-6, 3}, 2, 64, 64);
  EXPECT_EQ(polys[0][1], (Point{4, 23}));
  EXPECT_EQ(polys[0][0], (Point{6, 12})) << "2/3 of the offset";
  EXPECT_EQ(polys[0][2], (Point{6, 32}));
  EXPECT_EQ(polys[0][5], (Point{28, 11})) << "1/3 of the offset, wrapping around";
  EXPECT_EQ(polys[0][3], (Point{18, 31}));
  EXPECT_EQ(polys[0][4], (Point{30, 30})) << "beyond the neighbours: unchanged";
  serve::move_vertex(polys, 0, 1, {-100, 100}, 0, 64, 64);
  EXPECT_EQ(polys[0][1], (Point{0, 63})) << "kept inside the grid";
}

TEST(Png, TheGrayscaleWriterWritesAPngOfItsSize) {
  std::vector<uint8_t> px(40 * 30, 0);
  px[5 * 40 + 7] = 255;
  const auto png = io::encode_png_gray8(px.data(), 40, 30);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  EXPECT_EQ(io::png_size("m.png", png), (std::pair<int, int>{40, 30}));
  EXPECT_THROW(io::png_size("x.png", "not a png at all, not a png at all"), Error);
}

}  // namespace
}  // namespace barton
