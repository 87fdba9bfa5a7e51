// Components that configs may name but Barton does not build yet ("planned"): their specs let
// `config check` validate such configs, and building one says "not yet available" with the issue
// that provides it. Implemented components keep their spec beside their factory (docs/adr/0002).

#include "engine/metric.h"
#include "mmar/registries.h"

namespace barton::mmar {

namespace {

using A = ArgType;

void add(RegistryBase& r,
         std::string name,
         std::string summary,
         const char* issue,
         std::vector<ArgSpec> args) {
  r.add_planned(ComponentSpec{std::move(name), std::move(summary), std::move(args), issue});
}

void handlers(RegistryBase& r) {
  const char* I = "issue #5 (engine, handlers and commands)";
  add(r, "SegmentationSaver", "Writes segmentations (older MONAI handler).", I,
      {opt("output_dir", A::kString, "\"./\"", "Directory to write the segmentations to."),
       opt("output_postfix", A::kString, "\"seg\"", "Postfix added to each output file name."),
       opt("output_ext", A::kString, "\".nii.gz\"", "Output file extension (format)."),
       opt("resample", A::kBool, "true", "Resample back to the original spatial shape and affine."),
       opt("mode", A::kString, "\"nearest\"", "Interpolation of that resampling."),
       opt("padding_mode", A::kString, "\"border\"", "Padding of that resampling."),
       opt("scale", A::kInt, "null",
           "Scale the values to [0, 255] or [0, 65535] (PNG output); null: unchanged."),
       opt("dtype", A::kString, "\"float64\"", "Precision of the resampling computation."),
       opt("batch_transform", A::kCallable, "null",
           "Selects the image metadata (file name, affine) from the batch."),
       engine::output_transform_spec(), opt("name", A::kString, "null", "Logger name."),
       opt("images", A::kAny, "null",
           "DeepGrow form: also write image, label and prediction side by side as a PNG.")});
}

}  // namespace

void register_planned_components(Registries& r) {
  handlers(r.handlers);
}

}  // namespace barton::mmar
