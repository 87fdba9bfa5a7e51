#include "serve/polygons.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace barton::serve {

namespace {

// The 8 neighbours clockwise (in a u-down, v-right picture) starting west.
constexpr int kDu[8] = {0, -1, -1, -1, 0, 1, 1, 1};
constexpr int kDv[8] = {-1, -1, 0, 1, 1, 1, 0, -1};

bool fg(const Grid& g, int u, int v) {
  return u >= 0 && v >= 0 && u < g.U && v < g.V && g.at(u, v);
}

int direction_of(int du, int dv) {
  for (int d = 0; d < 8; ++d)
    if (kDu[d] == du && kDv[d] == dv) return d;
  return 0;
}

/// Moore-neighbour tracing of the region whose first cell (in u-then-v order) is `start`.
Polygon trace(const Grid& g, Point start) {
  Polygon out{start};
  // Enter from the west: the cell before `start` in scan order is background.
  Point cur = start;
  int back = 0;  // direction from cur to the background cell we came from
  const std::size_t limit = 4 * g.m.size() + 8;
  Point first_next{-1, -1};
  for (std::size_t step = 0; step < limit; ++step) {
    int found = -1;
    for (int k = 1; k <= 8; ++k) {
      const int d = (back + k) % 8;
      if (fg(g, cur[0] + kDu[d], cur[1] + kDv[d])) {
        found = d;
        break;
      }
    }
    if (found < 0) break;  // an isolated cell
    const Point next{cur[0] + kDu[found], cur[1] + kDv[found]};
    // The background cell checked just before `next`, seen from `next`.
    const int prev_d = (found + 7) % 8;
    const Point bg{cur[0] + kDu[prev_d], cur[1] + kDv[prev_d]};
    back = direction_of(bg[0] - next[0], bg[1] - next[1]);
    if (cur == start && next == first_next) break;  // Jacob's stopping criterion
    if (first_next[0] < 0) first_next = next;
    if (next == start && out.size() > 1) {
      cur = next;
      continue;  // back at the start: stop once we would leave it the same way
    }
    out.push_back(next);
    cur = next;
  }
  return out;
}

}  // namespace

std::vector<Polygon> mask_to_polygons(const Grid& mask, int point_ratio) {
  std::vector<Polygon> out;
  std::vector<uint8_t> seen(mask.m.size(), 0);
  for (int u = 0; u < mask.U; ++u)
    for (int v = 0; v < mask.V; ++v) {
      const std::size_t i = static_cast<std::size_t>(u) * mask.V + v;
      if (!mask.m[i] || seen[i]) continue;
      // Mark the whole 8-connected region, then trace its outline from this first cell.
      std::deque<Point> q{{u, v}};
      seen[i] = 1;
      while (!q.empty()) {
        const auto [a, b] = q.front();
        q.pop_front();
        for (int d = 0; d < 8; ++d) {
          const int na = a + kDu[d], nb = b + kDv[d];
          if (!fg(mask, na, nb)) continue;
          const std::size_t j = static_cast<std::size_t>(na) * mask.V + nb;
          if (!seen[j]) {
            seen[j] = 1;
            q.push_back({na, nb});
          }
        }
      }
      Polygon full = trace(mask, {u, v});
      if (point_ratio <= 1) {
        out.push_back(std::move(full));
        continue;
      }
      Polygon kept;
      for (std::size_t k = 0; k < full.size(); k += static_cast<std::size_t>(point_ratio))
        kept.push_back(full[k]);
      out.push_back(std::move(kept));
    }
  return out;
}

void move_vertex(std::vector<Polygon>& polygons,
                 int polygon,
                 int vertex,
                 std::array<double, 2> offset,
                 int neighbours,
                 int U,
                 int V) {
  auto& poly = polygons.at(static_cast<std::size_t>(polygon));
  const int n = static_cast<int>(poly.size());
  if (n == 0) return;
  neighbours = std::clamp(neighbours, 0, (n - 1) / 2);
  auto shift = [&](int idx, double w) {
    auto& p = poly[static_cast<std::size_t>(((idx % n) + n) % n)];
    p[0] = std::clamp(static_cast<int>(std::lround(p[0] + w * offset[0])), 0, U - 1);
    p[1] = std::clamp(static_cast<int>(std::lround(p[1] + w * offset[1])), 0, V - 1);
  };
  shift(vertex, 1.0);
  for (int k = 1; k <= neighbours; ++k) {
    const double w = 1.0 - static_cast<double>(k) / (neighbours + 1);
    shift(vertex - k, w);
    shift(vertex + k, w);
  }
}

Grid polygons_to_mask(const std::vector<Polygon>& polygons, int U, int V) {
  Grid g(U, V);
  auto put = [&](int u, int v) {
    if (u >= 0 && v >= 0 && u < U && v < V) g.at(u, v) = 1;
  };
  for (const auto& poly : polygons) {
    const std::size_t n = poly.size();
    if (n == 0) continue;
    // Edges (Bresenham), so that outline cells are in the mask as mask_to_polygons found them.
    for (std::size_t k = 0; k < n; ++k) {
      int u0 = poly[k][0], v0 = poly[k][1];
      const int u1 = poly[(k + 1) % n][0], v1 = poly[(k + 1) % n][1];
      const int du = std::abs(u1 - u0), dv = -std::abs(v1 - v0);
      const int su = u0 < u1 ? 1 : -1, sv = v0 < v1 ? 1 : -1;
      int err = du + dv;
      for (;;) {
        put(u0, v0);
        if (u0 == u1 && v0 == v1) break;
        const int e2 = 2 * err;
        if (e2 >= dv) {
          err += dv;
          u0 += su;
        }
        if (e2 <= du) {
          err += du;
          v0 += sv;
        }
      }
    }
    if (n < 3) continue;
    // Interior: even-odd scanlines through cell centres along u.
    int umin = U, umax = -1;
    for (const auto& p : poly) umin = std::min(umin, p[0]), umax = std::max(umax, p[0]);
    std::vector<double> xs;
    for (int u = std::max(umin, 0); u <= std::min(umax, U - 1); ++u) {
      xs.clear();
      for (std::size_t k = 0; k < n; ++k) {
        const auto& a = poly[k];
        const auto& b = poly[(k + 1) % n];
        if ((a[0] <= u && b[0] > u) || (b[0] <= u && a[0] > u))
          xs.push_back(a[1] + static_cast<double>(u - a[0]) * (b[1] - a[1]) / (b[0] - a[0]));
      }
      std::sort(xs.begin(), xs.end());
      for (std::size_t k = 0; k + 1 < xs.size(); k += 2)
        for (int v = static_cast<int>(std::ceil(xs[k]));
             v <= static_cast<int>(std::floor(xs[k + 1])); ++v)
          put(u, v);
    }
  }
  return g;
}

}  // namespace barton::serve
