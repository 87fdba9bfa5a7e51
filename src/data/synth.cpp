#include "data/synth.h"

#include <cmath>
#include <filesystem>
#include <random>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"

namespace barton::data {

namespace fs = std::filesystem;

namespace {

// Smooth 0..1 mask of an ellipsoid (soft edge of about one voxel) from squared normalised radius.
at::Tensor soft_inside(const at::Tensor& r2, double edge) {
  return at::sigmoid((1.0 - r2) / edge);
}

}  // namespace

SynthCase synthesize_case(const SynthOptions& o) {
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + 12345);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const auto [ni, nj, nk] = o.size;
  const auto [si, sj, sk] = o.spacing;
  BARTON_CHECK(ni >= 8 && nj >= 8 && nk >= 4, "synthetic volumes need at least 8x8x4 voxels");
  // Patient coordinates in mm, centred: x to the patient's left, y posterior, z superior (LPS).
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto xi = (at::arange(ni, opts) - (ni - 1) / 2.0) * si;  // voxel i runs to patient left
  auto yj = (at::arange(nj, opts) - (nj - 1) / 2.0) * sj;  // voxel j runs posterior
  auto zk = (at::arange(nk, opts) - (nk - 1) / 2.0) * sk;  // voxel k runs superior
  auto x = xi.view({ni, 1, 1}).expand({ni, nj, nk});
  auto y = yj.view({1, nj, 1}).expand({ni, nj, nk});
  auto z = zk.view({1, 1, nk}).expand({ni, nj, nk});

  const double half_w = ni * si / 2.0, half_h = nj * sj / 2.0;
  // Body: elliptical cylinder filling ~85% of the field of view, with a fat layer.
  const double bx = half_w * (0.80 + 0.05 * u(rng)), by = half_h * (0.72 + 0.04 * u(rng));
  auto body_r2 = (x / bx).pow(2) + (y / by).pow(2);
  auto body = soft_inside(body_r2, 0.02);
  auto inner = soft_inside((x / (bx - 8)).pow(2) + (y / (by - 8)).pow(2), 0.03);
  auto hu = at::full({ni, nj, nk}, -1000.0, opts);
  hu = hu + body * (1000.0 - 100.0);  // fat  ~ -100 HU
  hu = hu + inner * (100.0 + 40.0);   // soft tissue ~ 40 HU
  // Spine: posterior cylinder of bone with a marrow core.
  const double sx = 0.0 + 3 * u(rng), sy = by * 0.55;
  auto spine_r2 = ((x - sx) / 14.0).pow(2) + ((y - sy) / 12.0).pow(2);
  auto blend = [&](const at::Tensor& w, const at::Tensor& value) { hu = hu * (1 - w) + w * value; };
  blend(soft_inside(spine_r2, 0.08), at::full_like(hu, 700.0));
  blend(soft_inside(spine_r2 * 3.0, 0.1), at::full_like(hu, 300.0));  // marrow
  // Organ (label 1): an ellipsoid on the patient's left, posterior (where a spleen sits).
  const double ox = bx * (0.45 + 0.08 * u(rng)), oy = by * (0.15 + 0.1 * u(rng)),
               oz = nk * sk * 0.08 * u(rng);
  const double ra = 22 + 5 * u(rng), rb = 15 + 4 * u(rng),
               rc = std::min(45.0, nk * sk * 0.25) * (1 + 0.15 * u(rng));
  const double ang = 0.5 + 0.3 * u(rng);
  auto xr = (x - ox) * std::cos(ang) + (y - oy) * std::sin(ang);
  auto yr = -(x - ox) * std::sin(ang) + (y - oy) * std::cos(ang);
  auto organ_r2 = (xr / ra).pow(2) + (yr / rb).pow(2) + ((z - oz) / rc).pow(2);
  const double organ_hu = 105 + 10 * u(rng);
  auto organ_soft = soft_inside(organ_r2, 0.05);
  blend(organ_soft, at::full_like(hu, organ_hu));
  // Distractor: a larger, rounder blob of similar density on the patient's right (liver-like).
  const double dx = -bx * (0.42 + 0.08 * u(rng)), dy = -by * (0.05 + 0.1 * u(rng));
  auto dis_r2 = ((x - dx) / (38 + 5 * u(rng))).pow(2) + ((y - dy) / (30 + 4 * u(rng))).pow(2) +
                (z / (std::min(70.0, nk * sk * 0.4))).pow(2);
  blend(soft_inside(dis_r2, 0.05) * (organ_r2 > 1.2).to(at::kFloat),
        at::full_like(hu, organ_hu - o.lookalike_contrast_hu - 5 + 10 * u(rng)));
  // Acquisition noise.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed + 7);
  hu = hu + at::normal(0.0, o.noise_hu, {ni, nj, nk}, gen) * body;
  hu = hu.clamp(-1024, 3071).round();

  SynthCase out;
  // LPS-oriented affine in RAS terms: i runs to L (-x in RAS), j runs to P (-y), k to S.
  io::Affine a = io::identity_affine();
  a[0] = -si;
  a[5] = -sj;
  a[10] = sk;
  a[3] = (ni - 1) / 2.0 * si;
  a[7] = (nj - 1) / 2.0 * sj;
  a[11] = -(nk - 1) / 2.0 * sk;
  out.image.data = hu.to(at::kShort).unsqueeze(0).contiguous();
  out.image.affine = a;
  out.image.file_dtype = "int16";
  out.label.data = (organ_r2 < 1.0).to(at::kByte).unsqueeze(0).contiguous();
  out.label.affine = a;
  out.label.file_dtype = "uint8";
  return out;
}

std::string write_synthetic_dataset(const std::string& out_dir,
                                    int cases,
                                    const SynthOptions& options) {
  BARTON_CHECK(cases >= 1, "--cases must be at least 1 (got {})", cases);
  const fs::path root(out_dir);
  nlohmann::ordered_json training = nlohmann::ordered_json::array(),
                         validation = nlohmann::ordered_json::array(),
                         test = nlohmann::ordered_json::array();
  const int n_val = cases >= 2 ? std::max(1, cases / 5) : 0;
  for (int k = 0; k < cases; ++k) {
    SynthOptions o = options;
    o.seed = options.seed * 1000 + static_cast<uint64_t>(k);
    const auto c = synthesize_case(o);
    const std::string name = "case_" + std::to_string(k) + ".nii.gz";
    io::write_image(c.image, (root / "imagesTr" / name).string());
    io::write_image(c.label, (root / "labelsTr" / name).string());
    nlohmann::ordered_json item = {{"image", "imagesTr/" + name}, {"label", "labelsTr/" + name}};
    if (k >= cases - n_val) {
      validation.push_back(item);
      test.push_back({{"image", item["image"]}});  // inference configs read the "test" list
    } else {
      training.push_back(item);
    }
  }
  nlohmann::ordered_json ds = {
      {"name", "BartonSynthCT"},
      {"description",
       "Synthetic CT-like volumes with a labelled organ and an unlabelled look-alike"},
      {"modality", {{"0", "CT"}}},
      {"labels", {{"0", "background"}, {"1", "organ"}}},
      {"tensorImageSize", "3D"},
      {"numTraining", cases},
      {"generator", {{"seed", options.seed}, {"size", options.size}, {"spacing", options.spacing}}},
      {"training", training},
      {"validation", validation},
      {"test", test},
  };
  const auto path = (root / "dataset.json").string();
  write_file_atomic(path, ds.dump(2) + "\n");
  return path;
}

}  // namespace barton::data
