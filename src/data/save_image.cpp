// SaveImaged: writes images (NIfTI by default) with their affine; lives in data/ because it needs io/.
#include <ATen/ATen.h>

#include <filesystem>

#include "core/errors.h"
#include "core/logging.h"
#include "core/strings.h"
#include "data/register.h"
#include "io/image.h"
#include "transforms/common.h"
#include "transforms/spatial/functional.h"

namespace barton::data {

namespace fs = std::filesystem;

namespace {

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
      const auto path = (dir / (stem + (o_.postfix.empty() ? "" : "_" + o_.postfix) + o_.ext)).string();
      transforms::spatial::Spatial out{img.data, img.affine};
      if (o_.resample && !img.original_shape.empty() && img.original_affine != img.affine) {
        out = transforms::spatial::spatial_resample(out, img.original_affine, img.original_shape, o_.mode, o_.padding,
                                                    false, at::kDouble);
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

}  // namespace

void register_save_image(transforms::TransformRegistry& r) {
  r.implement("SaveImaged", [](const ConfigNode& a, const BuildContext& ctx) {
    SaveOptions o;
    o.output_dir = a.get_or<std::string>("output_dir", o.output_dir);
    if (!fs::path(o.output_dir).is_absolute()) o.output_dir = (fs::path(ctx.mmar_root) / o.output_dir).lexically_normal().string();
    o.postfix = a.get_or<std::string>("output_postfix", o.postfix);
    o.ext = a.get_or<std::string>("output_ext", o.ext);
    if (!io::is_supported_image_path("x" + o.ext)) {
      throw ConfigError(a.at("output_ext").source(), a.at("output_ext").pointer(),
                        "unsupported output_ext '" + o.ext + "' (.nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr)");
    }
    o.resample = a.get_or("resample", true);
    o.mode = a.get_or<std::string>("mode", o.mode);
    o.padding = a.get_or<std::string>("padding_mode", o.padding);
    o.dtype = transforms::dtype_arg(a, "output_dtype", at::kFloat);
    o.separate_folder = a.get_or("separate_folder", true);
    o.print_log = a.get_or("print_log", true);
    return std::make_unique<SaveImaged>(KeySelection::from_config(a), o);
  });
}

}  // namespace barton::data
