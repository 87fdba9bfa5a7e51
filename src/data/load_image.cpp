// LoadImaged: reads the files a datalist names into channel-first images with a RAS affine. It
// lives in data/ because it needs io/ (transforms/ may not include io/).
#include <ATen/ATen.h>

#include "core/errors.h"
#include "data/register.h"
#include "io/image.h"
#include "transforms/common.h"
#include "transforms/register.h"

namespace barton::data {

namespace {

using A = ArgType;

using transforms::ImageItem;
using transforms::KeySelection;
using transforms::MapTransform;
using transforms::Rng;
using transforms::Sample;

class LoadImaged final : public MapTransform {
 public:
  LoadImaged(KeySelection k, std::optional<at::ScalarType> dtype)
      : MapTransform(std::move(k)), dtype_(dtype) {}
  std::string name() const override { return "LoadImaged"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      if (s.is_image(key)) return;  // already loaded (e.g. a cached sample)
      const auto& v = s.get(key);
      const auto* path = std::get_if<std::string>(&v);
      if (!path) throw Error("LoadImaged: '" + key + "' is not a file path");
      auto img = io::read_image(*path);
      ImageItem item;
      item.data = dtype_ ? img.data.to(*dtype_) : img.data;
      item.affine = img.affine;
      item.filename = *path;
      item.original_shape = img.spatial_shape();
      item.original_affine = img.affine;
      s.set(key, std::move(item));
    });
  }

 private:
  std::optional<at::ScalarType> dtype_;
};

ComponentSpec load_imaged_spec() {
  return dict_spec(
      "LoadImaged",
      "Reads images (NIfTI, DICOM series, NRRD, MetaImage) into [C, I, J, K] tensors with a RAS "
      "affine.",
      {transforms::keys_spec(),
       opt("reader", A::kString, "null", "Reader name; null picks by file."),
       transforms::dtype_spec(), transforms::meta_keys_spec(), transforms::meta_postfix_spec(),
       opt("overwriting", A::kBool, "false", "Overwrite existing metadata."),
       opt("image_only", A::kBool, "true", "Return only the image (metadata travels with it)."),
       opt("ensure_channel_first", A::kBool, "false", "Add or move the channel axis first."),
       opt("simple_keys", A::kBool, "false", "MONAI compatibility."),
       opt("prune_meta_pattern", A::kString, "null", "MONAI compatibility."),
       opt("prune_meta_sep", A::kString, "\".\"", "MONAI compatibility."),
       transforms::allow_missing_spec(),
       opt("expanduser", A::kBool, "true", "Expand ~ in paths.")});
}

}  // namespace

void register_data_transforms(transforms::TransformRegistry& r) {
  r.add(load_imaged_spec(), [](const ConfigNode& a, const BuildContext&) {
    if (a.given("reader")) {
      const auto reader = a.at("reader").as<std::string>();
      static const std::vector<std::string> kKnown = {"NibabelReader", "ITKReader", "PydicomReader",
                                                      "NrrdReader"};
      if (std::find(kKnown.begin(), kKnown.end(), reader) == kKnown.end()) {
        throw ConfigError(a.at("reader").source(), a.at("reader").pointer(),
                          "unsupported reader '" + reader +
                              "'; Barton reads NIfTI, NRRD, MetaImage and DICOM series "
                              "(readers: NibabelReader, ITKReader, PydicomReader, NrrdReader, or "
                              "null to choose by file)");
      }
    }
    return std::make_unique<LoadImaged>(KeySelection::from_config(a),
                                        transforms::dtype_arg(a, "dtype"));
  });
  register_save_image(r);
}

}  // namespace barton::data
