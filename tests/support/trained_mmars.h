#pragma once
// MMARs trained in-process, for the programs that serve them without the barton binary: the serve
// fuzz target (fuzz/serve_fuzz.cpp) and the ThreadSanitizer server test (tests/tsan/).
#include <filesystem>
#include <string>
#include <vector>

#include "../engine/tiny_mmar.h"
#include "core/atomic_file.h"
#include "data/synth.h"
#include "mmar/run.h"

namespace barton::test {

/// The tiny MMAR of the engine tests under `root` (4 synthetic cases, 32x32x12 at 3x3x8 mm),
/// trained for one epoch on the CPU. Returns `root`.
inline std::string train_tiny_mmar(const std::string& root) {
  data::SynthOptions synth;
  synth.size = {32, 32, 12};
  synth.spacing = {3, 3, 8};
  synth.seed = 3;
  data::write_synthetic_dataset(root + "/data", 4, synth);
  std::filesystem::create_directories(root + "/config");
  write_file_atomic(root + "/config/config_train.json", kTrainConfig);
  write_file_atomic(root + "/config/environment.json", kEnv);
  write_file_atomic(root + "/config/config_inference.json", kInferConfig);
  write_file_atomic(root + "/config/metadata.json",
                    R"({"version": "0.1.0", "description": "tiny model",
                        "network_data_format": {"outputs": {"pred": {"channel_def":
                        {"0": "background", "1": "spleen"}}}}})");
  mmar::TrainOptions options;
  options.run.mmar = root;
  options.run.device = "cpu";
  options.run.sets = {"epochs=1"};
  options.write_stats = false;
  (void)mmar::run_training(options);
  return root;
}

/// mmars/deepgrow_3d small for a 2-core machine: 2 mm voxels, 48^3 crops resized to 32^3. The
/// `--set` lines of its training config and of its inference config (the serve tests, the serve
/// fuzz target and the TSan server test all use these).
inline const std::vector<std::string> kDeepgrow3dSmallTrainSets = {
    "/train/pre_transforms/2/args/pixdim=[2,2,2]",
    "/train/pre_transforms/4/args/spatial_size=[48,48,48]",
    "/train/pre_transforms/5/args/spatial_size=[32,32,32]"};
inline const std::vector<std::string> kDeepgrow3dServeSets = {
    "/pre_transforms/2/args/pixdim=[2,2,2]", "/pre_transforms/5/args/spatial_size=[48,48,48]",
    "/pre_transforms/6/args/spatial_size=[32,32,32]"};

/// `source_dir`/mmars/deepgrow_3d under `root`, trained for one epoch on 4 small synthetic cases
/// (kDeepgrow3dSmallTrainSets). Returns `root`.
inline std::string train_deepgrow3d_mmar(const std::string& root, const std::string& source_dir) {
  namespace fs = std::filesystem;
  data::SynthOptions synth;
  synth.size = {40, 40, 16};
  synth.spacing = {2, 2, 5};
  synth.seed = 5;
  data::write_synthetic_dataset(root + "/data", 4, synth);
  fs::create_directories(root + "/config");
  for (const auto& e : fs::directory_iterator(source_dir + "/mmars/deepgrow_3d/config"))
    fs::copy_file(e.path(), root + "/config/" + e.path().filename().string(),
                  fs::copy_options::overwrite_existing);
  mmar::TrainOptions options;
  options.run.mmar = root;
  options.run.device = "cpu";
  options.run.sets = {"epochs=1", "num_interval_per_valid=1", "max_train_interactions=1",
                      "max_val_interactions=1"};
  options.run.sets.insert(options.run.sets.end(), kDeepgrow3dSmallTrainSets.begin(),
                          kDeepgrow3dSmallTrainSets.end());
  options.write_stats = false;
  (void)mmar::run_training(options);
  return root;
}

/// kDeepgrow3dServeSets for the model served as `model` ("NAME:KEY=VALUE").
inline std::vector<std::string> deepgrow3d_serve_sets(const std::string& model) {
  std::vector<std::string> out;
  for (const auto& set : kDeepgrow3dServeSets) out.push_back(model + ":" + set);
  return out;
}

}  // namespace barton::test
