// SaveImaged: writes images (NIfTI by default) with their affine; lives in data/ because it needs
// io/.
#include <filesystem>

#include <ATen/ATen.h>

#include "core/errors.h"
#include "core/logging.h"
#include "core/strings.h"
#include "data/register.h"
#include "io/image.h"
#include "transforms/common.h"
#include "transforms/register.h"
#include "transforms/spatial/functional.h"

namespace barton::data {

namespace fs = std::filesystem;

namespace {

using A = ArgType;

using transforms::KeySelection;
using transforms::MapTransform;
using transforms::Rng;
using transforms::Sample;

struct SaveOptions {
  std::string output_dir = "./";
  std::string postfix = "trans";
  std::string ext = ".nii.gz";
  bool resample = true;
  std::string mode = "nearest";
  std::string padding = "border";
  std::optional<at::ScalarType> dtype = at::kFloat;
  bool separate_folder = true;
  bool print_log = true;
  bool squeeze_end_dims = true;
};

class SaveImaged final : public MapTransform {
 public:
  SaveImaged(KeySelection k, SaveOptions o) : MapTransform(std::move(k)), o_(std::move(o)) {}
  std::string name() const override { return "SaveImaged"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      const auto& img = s.image(key);
      const std::string stem = img.filename.empty() ? key : io::image_stem(img.filename);
      fs::path dir(o_.output_dir);
      if (o_.separate_folder) dir /= stem;
      const auto path =
          (dir / (stem + (o_.postfix.empty() ? "" : "_" + o_.postfix) + o_.ext)).string();
      transforms::spatial::Spatial out{img.data, img.affine};
      if (o_.resample && !img.original_shape.empty() && img.original_affine != img.affine) {
        out = transforms::spatial::spatial_resample(out, img.original_affine, img.original_shape,
                                                    o_.mode, o_.padding, false, at::kDouble);
      }
      io::Image image;
      image.data = o_.dtype ? out.data.to(*o_.dtype) : out.data;
      image.affine = out.affine;
      io::write_image(image, path);
      if (o_.print_log) log::info("saved " + path);
    });
  }

 private:
  SaveOptions o_;
};

ComponentSpec save_imaged_spec() {
  return dict_spec(
      "SaveImaged", "Writes images (NIfTI by default) with their affine.",
      {transforms::keys_spec(),
       transforms::meta_keys_spec(),
       transforms::meta_postfix_spec(),
       opt("output_dir", A::kString, "\"./\"", "Output directory (relative to the MMAR root)."),
       opt("output_postfix", A::kString, "\"trans\"",
           "Appended to the file name stem after an underscore; empty: none."),
       opt("output_ext", A::kString, "\".nii.gz\"",
           "Extension, which selects the format: .nii.gz, .nii, .mha, .mhd, .nrrd or .nhdr."),
       opt("resample", A::kBool, "true",
           "Resample back to the original grid (shape and affine as loaded) before writing."),
       opt("mode", A::kString, "\"nearest\"", "Interpolation of that resampling."),
       opt("padding_mode", A::kString, "\"border\"", "Padding of that resampling."),
       opt("scale", A::kInt, "null", "Accepted for MONAI compatibility; ignored."),
       transforms::dtype_spec("\"float64\""),
       opt("output_dtype", A::kString, "\"float32\"",
           "Element type written; null keeps the data's type."),
       transforms::allow_missing_spec(),
       opt("squeeze_end_dims", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("data_root_dir", A::kString, "\"\"", "Accepted for MONAI compatibility; ignored."),
       opt("separate_folder", A::kBool, "true",
           "Write each image into a subfolder named after its file stem."),
       opt("print_log", A::kBool, "true", "Log the path of each saved file."),
       opt("output_format", A::kString, "\"\"",
           "Accepted for MONAI compatibility; ignored (output_ext selects the format)."),
       opt("writer", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("savepath_in_metadict", A::kBool, "false",
           "Accepted for MONAI compatibility; ignored.")});
}

}  // namespace

void register_save_image(transforms::TransformRegistry& r) {
  r.add(save_imaged_spec(), [](const ConfigNode& a, const BuildContext& ctx) {
    SaveOptions o;
    o.output_dir = a.require<std::string>("output_dir");
    if (!fs::path(o.output_dir).is_absolute())
      o.output_dir = (fs::path(ctx.mmar_root) / o.output_dir).lexically_normal().string();
    o.postfix = a.require<std::string>("output_postfix");
    o.ext = a.require<std::string>("output_ext");
    if (!io::is_supported_image_path("x" + o.ext)) {
      throw ConfigError(
          a.at("output_ext").source(), a.at("output_ext").pointer(),
          "unsupported output_ext '" + o.ext + "' (.nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr)");
    }
    o.resample = a.require<bool>("resample");
    o.mode = a.require<std::string>("mode");
    o.padding = a.require<std::string>("padding_mode");
    o.dtype = transforms::dtype_arg(a, "output_dtype");
    o.separate_folder = a.require<bool>("separate_folder");
    o.print_log = a.require<bool>("print_log");
    return std::make_unique<SaveImaged>(KeySelection::from_config(a), o);
  });
}

}  // namespace barton::data
