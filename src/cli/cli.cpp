#include "cli/cli.h"

#include <algorithm>
#include <iostream>
#include <thread>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/cpu_allocator.h"
#include "core/strings.h"
#include "core/version.h"

namespace barton::cli {

namespace {

const Command kCommands[] = {
    {"config", "Show or check an MMAR config (show | check)", setup_config},
    {"list-components", "List the registered components and their arguments",
     setup_list_components},
    {"convert", "Convert an image (NIfTI, NRRD, MetaImage, DICOM folder) to another format",
     setup_convert},
    {"info", "Print an image's shape, dtype, spacing, orientation, affine and intensity range",
     setup_info},
    {"data", "Sample data: synthesise CT-like volumes or build the real-MRI brain datalist",
     setup_data},
    {"metrics", "Dice, Hausdorff, surface distances and more between label images, in millimetres",
     setup_metrics},
    {"train", "Train from an MMAR (config_train.json); --resume continues an interrupted run",
     setup_train},
    {"finetune", "Train starting from a checkpoint (MMAR_CKPT or --ckpt)", setup_finetune},
    {"validate", "Validate a checkpoint (config_validation.json): metrics.csv and per-case reports",
     setup_validate},
    {"infer",
     "Sliding-window inference (config_inference.json): segmentations on the original grid",
     setup_infer},
    {"export",
     "Export a trained model: ONNX, a Triton model repository, Barton's inference plan, a manifest",
     setup_export},
    {"verify", "Check an export folder against its manifest (SHA-256 of every file)", setup_verify},
    {"preprocess", "Run a config's pre_transforms on its datalist and write what the network sees",
     setup_preprocess},
#ifdef BARTON_WITH_SERVE
    {"serve", "Annotation server: NVIDIA AIAA v1 and MONAI Label APIs over MMARs and plans",
     setup_serve},
    {"serve-user",
     "Add or replace a user of `barton serve --auth` (salted hash; password read from stdin)",
     setup_serve_user},
#endif
};

}  // namespace

namespace {
std::vector<std::string>& stored_command_line() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

const std::vector<std::string>& command_line() {
  return stored_command_line();
}

int run(int argc, char** argv) {
  stored_command_line().assign(argv, argv + argc);
  CLI::App app{
      "Barton: train, validate, export and serve 3D medical segmentation models from Clara MMARs",
      "barton"};
  app.set_version_flag("--version", std::string("barton ") + BARTON_VERSION);
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads,
                 "Intra-op threads (default: BARTON_THREADS, else every core)")
      ->envname("BARTON_THREADS");
  std::vector<Runner> runners(std::size(kCommands));
  for (std::size_t i = 0; i < std::size(kCommands); ++i) {
    auto* sub = app.add_subcommand(kCommands[i].name, kCommands[i].help);
    kCommands[i].setup(*sub, runners[i]);
  }
  // CLI11 reports an unknown first word as "A subcommand is required": name it instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const auto& c : kCommands) names.push_back(c.name);
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      std::cerr << fmt::format("error: unknown command '{}'{} (barton --help lists the commands)\n",
                               argv[1], did_you_mean(argv[1], names));
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  tune_allocator();
  at::set_num_threads(
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  for (std::size_t i = 0; i < std::size(kCommands); ++i) {
    if (app.got_subcommand(kCommands[i].name) && runners[i]) return runners[i]();
  }
  return 2;
}

}  // namespace barton::cli
