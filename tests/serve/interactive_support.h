#pragma once
// Shared by the interactive-model serve tests (DeepGrow, DEXTR3D, DeepEdit): a sample MMAR trained
// small into a temporary folder, a server over it, and the AIAA/MONAI Label multipart reply.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/image.h"
#include "serve/multipart.h"
#include "serve/raw_http.h"
#include "serve/server.h"
#include "support/test_support.h"
#include "support/trained_mmars.h"

namespace barton::test {

struct TrainedSample {
  std::string root, log;
};

/// mmars/<sample>'s configs copied under `dir`, synthetic data made with `synth_args`, then
/// `barton <prepare> ` when given (its output ahead of the log; "{root}" in it is the MMAR folder),
/// trained with `train_sets` (" --set ..."). Returns the MMAR folder and the log.
inline TrainedSample train_sample(const std::string& dir,
                                  const std::string& sample,
                                  const std::string& synth_args,
                                  const std::string& train_sets,
                                  std::string prepare = "") {
  namespace fs = std::filesystem;
  TrainedSample r;
  r.root = dir + "/" + sample;
  fs::create_directories(r.root + "/config");
  for (const auto* f : {"config_train.json", "config_validation.json", "config_inference.json",
                        "config_aiaa.json", "environment.json"})
    fs::copy_file(source_dir() + "/mmars/" + sample + "/config/" + f, r.root + "/config/" + f);
  sh(barton_bin() + " data synth " + r.root + "/data " + synth_args);
  for (auto at = prepare.find("{root}"); at != std::string::npos; at = prepare.find("{root}"))
    prepare.replace(at, 6, r.root);
  if (!prepare.empty()) r.log = sh(barton_bin() + " " + prepare + " 2>&1");
  r.log += sh("BARTON_THREADS=2 " + barton_bin() + " train " + r.root + train_sets + " 2>&1");
  return r;
}

// The DeepGrow 3D sample small for a 2-core CI (kDeepgrow3dSmallTrainSets), two click rounds.
// Shared by the DeepGrow 3D tests and the 2D + 3D pipeline test.
inline const std::string kDeepgrow3dTrainSets = [] {
  std::string sets =
      " --set epochs=3 num_interval_per_valid=1 max_train_interactions=2 max_val_interactions=2";
  for (const auto& set : kDeepgrow3dSmallTrainSets) sets += " " + set;
  return sets;
}();

/// mmars/deepgrow_3d trained small on synthetic data, once per test program.
inline const TrainedSample& deepgrow3d_sample() {
  static TempDir dir;
  static const auto t =
      train_sample(dir.path(), "deepgrow_3d", "--cases 4 --size 40 40 16 --spacing 2 2 5 --seed 5",
                   kDeepgrow3dTrainSets);
  return t;
}

/// A voxel [i, j, k] inside case 3's organ in the synthetic data of the MMAR at `root`: its
/// label's centre of mass.
inline std::vector<int64_t> organ_voxel(const std::string& root) {
  const auto label = io::read_image(root + "/data/labelsTr/case_3.nii.gz");
  const auto idx = (label.data[0] > 0).nonzero().to(at::kDouble);
  const auto c = idx.mean(0).round().to(at::kLong);
  return {c[0].item<int64_t>(), c[1].item<int64_t>(), c[2].item<int64_t>()};
}

/// A server on a free port over MMARs with `--set` overrides, for one test.
struct ServedSample {
  ServedSample(const std::string& mmar, const std::vector<std::string>& sets)
      : ServedSample(std::vector<std::string>{mmar}, sets) {}
  ServedSample(const std::vector<std::string>& mmars, const std::vector<std::string>& sets) {
    serve::ServerOptions o;
    o.models = mmars;
    o.sets = sets;
    o.http.port = 0;
    o.device = "cpu";
    server = std::make_unique<serve::AnnotationServer>(o);
    port = server->start();
  }
  ~ServedSample() { server->stop(); }
  std::unique_ptr<serve::AnnotationServer> server;
  int port = 0;
};

struct MaskReply {
  nlohmann::json params;
  io::Image mask;
};

/// The params and the mask of an image-returning multipart reply (fails the test otherwise).
inline MaskReply parse_mask_reply(const RawReply& r) {
  MaskReply out;
  const auto b = serve::multipart_boundary(r.header("content-type"));
  EXPECT_TRUE(b) << r.body.substr(0, 300);
  if (!b) return out;
  const auto parts = serve::parse_multipart(r.body, *b);
  out.params = nlohmann::json::parse(serve::find_part(parts, "params")->data);
  static TempDir tmp;
  static int n = 0;
  const auto path = tmp.file("mask" + std::to_string(n++) + ".nii.gz");
  write_file_atomic(path, serve::find_part(parts, "image")->data);
  out.mask = io::read_image(path);
  return out;
}

/// A Python-client POST with `params` and, when given, the image as the `datapoint` part.
inline RawReply post_params(int port,
                            const std::string& target,
                            const nlohmann::json& params,
                            const std::string& image = "") {
  std::vector<FormPart> parts{{"params", "", "", params.dump()}};
  if (!image.empty())
    parts.push_back({"datapoint", "/tmp/x/image.nii.gz", "application/octet-stream", image});
  return raw_http(port, python_request("POST", target, parts));
}

}  // namespace barton::test
