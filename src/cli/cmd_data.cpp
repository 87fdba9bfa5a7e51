// barton data synth OUT [--cases N] [--size I,J,K] [--spacing X,Y,Z] [--seed S]
// [--lookalike-contrast HU] barton data sample brain OUT
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/errors.h"
#include "data/synth.h"

namespace barton::cli {

void setup_data(CLI::App& app, Runner& runner) {
  struct Args {
    std::string out;
    int cases = 8;
    std::vector<int64_t> size = {112, 112, 40};
    std::vector<double> spacing = {1.5, 1.5, 4.0};
    uint64_t seed = 0;
    double contrast = 10.0;
    std::string sample;
  };
  auto a = std::make_shared<Args>();
  app.require_subcommand(1);
  auto* synth =
      app.add_subcommand("synth", "Write synthetic CT-like volumes, labels and dataset.json");
  synth->add_option("OUT", a->out, "Output folder")->required();
  synth->add_option("--cases", a->cases, "Number of cases (default 8)");
  synth->add_option("--size", a->size, "Voxels I,J,K (default 112,112,40)")
      ->delimiter(',')
      ->expected(3);
  synth->add_option("--spacing", a->spacing, "Voxel size in mm (default 1.5,1.5,4.0)")
      ->delimiter(',')
      ->expected(3);
  synth->add_option("--seed", a->seed, "Seed (default 0)");
  synth->add_option(
      "--lookalike-contrast", a->contrast,
      "How much darker (HU) the unlabelled look-alike organ is than the labelled one (default 10)");
  auto* sample =
      app.add_subcommand("sample", "Build a datalist from real images shipped by Debian packages");
  sample->add_option("NAME", a->sample, "Sample set: brain")
      ->required()
      ->check(CLI::IsMember({"brain"}));
  sample->add_option("OUT", a->out, "Output folder")->required();
  runner = [a, synth]() {
    if (synth->parsed()) {
      data::SynthOptions o;
      o.size = {a->size[0], a->size[1], a->size[2]};
      o.spacing = {a->spacing[0], a->spacing[1], a->spacing[2]};
      o.seed = a->seed;
      o.lookalike_contrast_hu = a->contrast;
      const auto path = data::write_synthetic_dataset(a->out, a->cases, o);
      std::cout << fmt::format("wrote {} cases ({} voxels, {} mm) and {}\n", a->cases,
                               fmt::join(a->size, "x"), fmt::join(a->spacing, "x"), path);
      return 0;
    }
    const auto path = data::write_brain_sample(a->out);
    std::cout << "wrote " << path << "\n";
    return 0;
  };
}

}  // namespace barton::cli
