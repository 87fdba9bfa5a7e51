// barton data synth OUT [--cases N] [--size I,J,K] [--spacing X,Y,Z] [--seed S]
// [--lookalike-contrast HU] barton data sample brain OUT
// barton data deepgrow --dataset_json J --output O [--dimensions 2|3] [--dataset_root R]
// [--datalist_key K] [--pixdim X,Y[,Z]] [--limit N] [--split F]
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/errors.h"
#include "data/synth.h"
#include "mmar/deepgrow_dataset.h"

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
  // Clara's prepare_dataset.sh options, with its underscore names and dashed ones alike.
  auto dg = std::make_shared<mmar::DeepgrowDatasetOptions>();
  auto* deepgrow = app.add_subcommand(
      "deepgrow",
      "Prepare DeepGrow training data: per-region 2-D slices or 3-D volumes and their datalist");
  deepgrow->add_option("--dataset_json,--dataset-json", dg->dataset_json, "Input datalist")
      ->required();
  deepgrow->add_option("--dataset_root,--dataset-root", dg->dataset_root,
                       "Base folder of its paths (default: the datalist's folder)");
  deepgrow->add_option("--datalist_key,--datalist-key", dg->datalist_key,
                       "Datalist key to read (default training)");
  deepgrow->add_option("--output", dg->output, "Output folder")->required();
  deepgrow->add_option("--dimensions", dg->dimensions, "2 (slices) or 3 (volumes); default 2")
      ->check(CLI::IsMember({2, 3}));
  deepgrow
      ->add_option("--pixdim", dg->pixdim,
                   "Voxel size in mm; <= 0 keeps the image's (default 1,1,0 for 2-D, 1,1,1 for "
                   "3-D)")
      ->delimiter(',');
  deepgrow->add_option("--limit", dg->limit, "At most N volumes (default 0: all)");
  deepgrow->add_option("--split", dg->split,
                       "Fraction of volumes for training, the rest validation (default 1)");
  runner = [a, synth, deepgrow, dg]() {
    if (deepgrow->parsed()) {
      const auto r = mmar::prepare_deepgrow_dataset(*dg);
      std::cout << fmt::format(
          "{} volumes -> {} {} and {} region labels; {} training and {} validation entries in {}\n",
          r.volumes, r.images, dg->dimensions == 2 ? "slices" : "volumes", r.labels, r.training,
          r.validation, r.datalist);
      return 0;
    }
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
