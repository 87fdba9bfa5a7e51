// The MONAI / Clara 4.x component catalogue, with MONAI's argument names and defaults
// (../shared/reference/peers.md section 1, clara-train.md section 3.4). Each entry moves to its
// domain's register_<domain>() with a factory when the issue that implements it lands; until then
// configs that name it resolve and check, and building it says "not yet available".

#include "mmar/registries.h"

namespace barton::mmar {

namespace {

using A = ArgType;

const char* kPipeline = "issue #3 (data pipeline)";
const char* kModels = "issue #4 (networks, losses, optimizers, inferers, metrics)";
const char* kEngine = "issue #5 (engine, handlers and commands)";

ArgSpec keys() { return req("keys", A::kStrings, "Keys of the sample to transform."); }
ArgSpec allow_missing() {
  return opt("allow_missing_keys", A::kBool, "false", "Skip keys absent from the sample.");
}
ArgSpec meta_keys() { return opt("meta_keys", A::kStrings, "null", "Metadata keys (MONAI compatibility)."); }
ArgSpec meta_postfix() {
  return opt("meta_key_postfix", A::kString, "\"meta_dict\"", "Metadata key postfix (MONAI compatibility).");
}
ArgSpec prob(const char* def = "0.1") { return opt("prob", A::kFloat, def, "Probability of applying the transform."); }
ArgSpec dtype(const char* def = "\"float32\"") { return opt("dtype", A::kStrings, def, "Output element type."); }
ArgSpec output_transform() {
  return opt("output_transform", A::kCallable, "null",
             "Selects what the metric/handler reads from the engine output (Clara idiom or lambda).");
}

void add(RegistryBase& r, std::string name, std::string summary, const char* issue,
         std::vector<ArgSpec> args) {
  r.add_planned(ComponentSpec{std::move(name), std::move(summary), std::move(args), issue});
}

// MONAI registers every dictionary transform under three names: Xd, XD and XDict.
void add_dict(RegistryBase& r, const std::string& name, std::string summary, const char* issue,
              std::vector<ArgSpec> args) {
  add(r, name, std::move(summary), issue, std::move(args));
  const std::string stem = name.substr(0, name.size() - 1);
  r.add_alias(stem + "D", name);
  r.add_alias(stem + "Dict", name);
}

void transforms(RegistryBase& r) {
  const char* I = kPipeline;
  add_dict(r, "LoadImaged", "Reads images (NIfTI, DICOM series, NRRD, MetaImage) into [C, I, J, K] tensors with a RAS affine.", I,
           {keys(), opt("reader", A::kString, "null", "Reader name; null picks by file."),
            dtype(), meta_keys(), meta_postfix(), opt("overwriting", A::kBool, "false", "Overwrite existing metadata."),
            opt("image_only", A::kBool, "true", "Return only the image (metadata travels with it)."),
            opt("ensure_channel_first", A::kBool, "false", "Add or move the channel axis first."),
            opt("simple_keys", A::kBool, "false", "MONAI compatibility."),
            opt("prune_meta_pattern", A::kString, "null", "MONAI compatibility."),
            opt("prune_meta_sep", A::kString, "\".\"", "MONAI compatibility."), allow_missing(),
            opt("expanduser", A::kBool, "true", "Expand ~ in paths.")});
  add_dict(r, "EnsureChannelFirstd", "Makes the channel axis first, adding one if the image has none.", I,
           {keys(), meta_keys(), meta_postfix(), opt("strict_check", A::kBool, "true", "Refuse ambiguous layouts."),
            allow_missing(), opt("channel_dim", A::kInt, "null", "Channel axis of the input; null reads the metadata.")});
  add_dict(r, "AddChanneld", "Adds a leading channel axis (deprecated in MONAI; use EnsureChannelFirstd).", I,
           {keys(), allow_missing()});
  add_dict(r, "AsChannelFirstd", "Moves channel_dim to the front.", I,
           {keys(), opt("channel_dim", A::kInt, "-1", "Current channel axis."), allow_missing()});
  add_dict(r, "AsChannelLastd", "Moves channel_dim to the end.", I,
           {keys(), opt("channel_dim", A::kInt, "0", "Current channel axis."), allow_missing()});
  add_dict(r, "Orientationd", "Reorients to axcodes (e.g. RAS), updating the affine.", I,
           {keys(), opt("axcodes", A::kString, "null", "Target orientation, e.g. \"RAS\"."),
            opt("as_closest_canonical", A::kBool, "false", "Use the closest canonical orientation."),
            opt("labels", A::kAny, "[[\"L\",\"R\"],[\"P\",\"A\"],[\"I\",\"S\"]]", "Axis labels."), allow_missing()});
  add_dict(r, "Spacingd", "Resamples to pixdim millimetres, updating the affine exactly as MONAI does.", I,
           {keys(), req("pixdim", A::kFloats, "Output voxel size in mm."),
            opt("diagonal", A::kBool, "false", "Force a diagonal output affine."),
            opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
            opt("padding_mode", A::kStrings, "\"border\"", "Padding per key: zeros, border, reflection."),
            opt("align_corners", A::kBools, "false", "Grid alignment per key."), dtype("\"float64\""),
            opt("scale_extent", A::kBool, "false", "Scale by extent rather than by voxel centres."),
            opt("recompute_affine", A::kBool, "false", "Recompute the affine after resampling."),
            opt("min_pixdim", A::kFloats, "null", "Skip resampling above this size."),
            opt("max_pixdim", A::kFloats, "null", "Skip resampling below this size."),
            opt("ensure_same_shape", A::kBool, "true", "Give every key the same output shape."), meta_keys(),
            meta_postfix(), allow_missing()});
  add_dict(r, "Resized", "Resizes to spatial_size.", I,
           {keys(), req("spatial_size", A::kInts, "Output size; -1 keeps an axis."),
            opt("size_mode", A::kString, "\"all\"", "all or longest."),
            opt("mode", A::kStrings, "\"area\"", "Interpolation per key."),
            opt("align_corners", A::kBools, "null", "Grid alignment per key."),
            opt("anti_aliasing", A::kBools, "false", "Smooth before downsampling."),
            opt("anti_aliasing_sigma", A::kAny, "null", "Smoothing sigma."), dtype(), allow_missing()});
  add_dict(r, "SpatialPadd", "Pads to at least spatial_size.", I,
           {keys(), req("spatial_size", A::kInts, "Minimum output size."),
            opt("method", A::kString, "\"symmetric\"", "symmetric or end."),
            opt("mode", A::kStrings, "\"constant\"", "Padding mode per key."), allow_missing()});
  add_dict(r, "DivisiblePadd", "Pads so every spatial size is divisible by k.", I,
           {keys(), req("k", A::kInts, "Divisor per axis."), opt("mode", A::kStrings, "\"constant\"", "Padding mode per key."),
            opt("method", A::kString, "\"symmetric\"", "symmetric or end."), allow_missing()});
  add_dict(r, "CenterSpatialCropd", "Crops roi_size around the centre.", I,
           {keys(), req("roi_size", A::kInts, "Crop size; -1 keeps an axis."), allow_missing()});
  add_dict(r, "CropForegroundd", "Crops to the bounding box of source_key's foreground plus a margin.", I,
           {keys(), req("source_key", A::kString, "Key whose foreground defines the box."),
            opt("select_fn", A::kAny, "null", "Foreground test; default value > 0 (a number sets the threshold)."),
            opt("channel_indices", A::kInts, "null", "Channels to consider."),
            opt("margin", A::kInts, "0", "Margin in voxels per axis."),
            opt("allow_smaller", A::kBool, "true", "Allow a box smaller than the margin needs."),
            opt("k_divisible", A::kInts, "1", "Make the box size divisible by k."),
            opt("mode", A::kStrings, "\"constant\"", "Padding mode when the box leaves the image."),
            opt("start_coord_key", A::kString, "\"foreground_start_coord\"", "Where to store the box start."),
            opt("end_coord_key", A::kString, "\"foreground_end_coord\"", "Where to store the box end."),
            allow_missing()});
  add_dict(r, "SpatialCropForegroundd", "Clara: crops spatial_size around the foreground of source_key.", I,
           {keys(), req("source_key", A::kString, "Foreground key."), req("spatial_size", A::kInts, "Crop size."),
            opt("select_fn", A::kAny, "null", "Foreground test."), opt("channel_indices", A::kInts, "null", ""),
            opt("margin", A::kInts, "0", "Margin in voxels."), allow_missing()});
  add_dict(r, "ToTensord", "Converts values to tensors.", I,
           {keys(), dtype("null"), opt("device", A::kString, "null", "Target device."),
            opt("wrap_sequence", A::kBool, "true", "Wrap sequences into one tensor."),
            opt("track_meta", A::kBool, "null", "MONAI compatibility."), allow_missing()});
  add_dict(r, "EnsureTyped", "Ensures tensors of a given type and device.", I,
           {keys(), opt("data_type", A::kString, "\"tensor\"", "tensor or numpy."), dtype("null"),
            opt("device", A::kString, "null", "Target device."), opt("wrap_sequence", A::kBool, "false", ""),
            opt("track_meta", A::kBool, "null", "MONAI compatibility."), allow_missing()});
  add_dict(r, "ToNumpyd", "Converts to arrays (a no-op in Barton: tensors throughout).", I, {keys(), allow_missing()});
  add_dict(r, "CastToTyped", "Casts to dtype.", I, {keys(), dtype(), allow_missing()});
  add_dict(r, "ConcatItemsd", "Concatenates keys along dim into `name`.", I,
           {keys(), req("name", A::kString, "Output key."), opt("dim", A::kInt, "0", "Axis."), allow_missing()});
  add_dict(r, "CopyItemsd", "Copies keys to new names.", I,
           {keys(), opt("times", A::kInt, "1", "Copies per key."), opt("names", A::kStrings, "null", "New keys."),
            allow_missing()});
  add_dict(r, "DeleteItemsd", "Deletes keys.", I,
           {keys(), opt("sep", A::kString, "\".\"", "Nested key separator."), opt("use_re", A::kBools, "false", "Keys are regexes.")});
  add_dict(r, "SqueezeDimd", "Removes a size-1 axis.", I,
           {keys(), opt("dim", A::kInt, "0", "Axis."), opt("update_meta", A::kBool, "true", ""), allow_missing()});
  add_dict(r, "FgBgToIndicesd", "Precomputes foreground/background voxel indices for patch sampling.", I,
           {keys(), opt("fg_postfix", A::kString, "\"_fg_indices\"", ""), opt("bg_postfix", A::kString, "\"_bg_indices\"", ""),
            opt("image_key", A::kString, "null", ""), opt("image_threshold", A::kFloat, "0.0", ""),
            opt("output_shape", A::kInts, "null", ""), allow_missing()});
  // intensity
  add_dict(r, "ScaleIntensityRanged", "Maps [a_min, a_max] linearly to [b_min, b_max], optionally clipping.", I,
           {keys(), req("a_min", A::kFloat, "Input range start."), req("a_max", A::kFloat, "Input range end."),
            opt("b_min", A::kFloat, "null", "Output range start."), opt("b_max", A::kFloat, "null", "Output range end."),
            opt("clip", A::kBool, "false", "Clamp to [b_min, b_max]."), dtype(), allow_missing()});
  add_dict(r, "ScaleIntensityRangePercentilesd", "Like ScaleIntensityRanged with a_min/a_max taken as percentiles.", I,
           {keys(), req("lower", A::kFloat, "Lower percentile."), req("upper", A::kFloat, "Upper percentile."),
            req("b_min", A::kFloat, "Output start."), req("b_max", A::kFloat, "Output end."),
            opt("clip", A::kBool, "false", ""), opt("relative", A::kBool, "false", ""),
            opt("channel_wise", A::kBool, "false", ""), dtype(), allow_missing()});
  add_dict(r, "NormalizeIntensityd", "Subtracts the mean (or subtrahend) and divides by the std (or divisor).", I,
           {keys(), opt("subtrahend", A::kFloats, "null", ""), opt("divisor", A::kFloats, "null", ""),
            opt("nonzero", A::kBool, "false", "Use non-zero voxels only."), opt("channel_wise", A::kBool, "false", ""),
            dtype(), allow_missing()});
  add_dict(r, "ScaleIntensityd", "Rescales to [minv, maxv] or multiplies by 1 + factor.", I,
           {keys(), opt("minv", A::kFloat, "0.0", ""), opt("maxv", A::kFloat, "1.0", ""),
            opt("factor", A::kFloat, "null", ""), opt("channel_wise", A::kBool, "false", ""), dtype(), allow_missing()});
  add_dict(r, "ThresholdIntensityd", "Replaces values above/below threshold with cval.", I,
           {keys(), req("threshold", A::kFloat, ""), opt("above", A::kBool, "true", ""), opt("cval", A::kFloat, "0.0", ""),
            allow_missing()});
  add_dict(r, "ClipIntensityPercentilesd", "Clips to percentiles.", I,
           {keys(), req("lower", A::kFloat, ""), req("upper", A::kFloat, ""),
            opt("sharpness_factor", A::kFloat, "null", ""), opt("channel_wise", A::kBool, "false", ""), dtype(),
            allow_missing()});
  // random
  add_dict(r, "RandCropByPosNegLabeld", "Samples num_samples patches centred on foreground with probability pos/(pos+neg).", I,
           {keys(), req("label_key", A::kString, "Label key."), req("spatial_size", A::kInts, "Patch size."),
            opt("pos", A::kFloat, "1.0", ""), opt("neg", A::kFloat, "1.0", ""), opt("num_samples", A::kInt, "1", ""),
            opt("image_key", A::kString, "null", ""), opt("image_threshold", A::kFloat, "0.0", ""),
            opt("fg_indices_key", A::kString, "null", ""), opt("bg_indices_key", A::kString, "null", ""), meta_keys(),
            meta_postfix(), opt("allow_smaller", A::kBool, "false", ""), allow_missing(), opt("lazy", A::kBool, "false", "")});
  add_dict(r, "RandCropByLabelClassesd", "Samples patches centred on each class with given ratios.", I,
           {keys(), req("label_key", A::kString, ""), req("spatial_size", A::kInts, ""),
            opt("ratios", A::kFloats, "null", ""), opt("num_classes", A::kInt, "null", ""),
            opt("num_samples", A::kInt, "1", ""), opt("image_key", A::kString, "null", ""),
            opt("image_threshold", A::kFloat, "0.0", ""), opt("indices_key", A::kString, "null", ""),
            opt("allow_smaller", A::kBool, "false", ""), allow_missing(), opt("warn", A::kBool, "true", ""),
            opt("max_samples_per_class", A::kInt, "null", "")});
  add_dict(r, "RandSpatialCropd", "Crops a random region.", I,
           {keys(), req("roi_size", A::kInts, ""), opt("max_roi_size", A::kInts, "null", ""),
            opt("random_center", A::kBool, "true", ""), opt("random_size", A::kBool, "false", ""), allow_missing()});
  add_dict(r, "RandSpatialCropSamplesd", "Crops num_samples random regions.", I,
           {keys(), req("roi_size", A::kInts, ""), req("num_samples", A::kInt, ""),
            opt("max_roi_size", A::kInts, "null", ""), opt("random_center", A::kBool, "true", ""),
            opt("random_size", A::kBool, "false", ""), allow_missing()});
  add_dict(r, "RandFlipd", "Flips along spatial_axis with probability prob.", I,
           {keys(), prob(), opt("spatial_axis", A::kInts, "null", "Axes; null flips all."), allow_missing()});
  add_dict(r, "RandRotate90d", "Rotates by k*90 degrees in spatial_axes.", I,
           {keys(), prob(), opt("max_k", A::kInt, "3", ""), opt("spatial_axes", A::kInts, "[0, 1]", ""), allow_missing()});
  add_dict(r, "RandRotated", "Rotates by random angles.", I,
           {keys(), opt("range_x", A::kFloats, "0.0", ""), opt("range_y", A::kFloats, "0.0", ""),
            opt("range_z", A::kFloats, "0.0", ""), prob(), opt("keep_size", A::kBool, "true", ""),
            opt("mode", A::kStrings, "\"bilinear\"", ""), opt("padding_mode", A::kStrings, "\"border\"", ""),
            opt("align_corners", A::kBools, "false", ""), dtype(), allow_missing()});
  add_dict(r, "RandZoomd", "Zooms by a random factor.", I,
           {keys(), prob(), opt("min_zoom", A::kFloats, "0.9", ""), opt("max_zoom", A::kFloats, "1.1", ""),
            opt("mode", A::kStrings, "\"area\"", ""), opt("padding_mode", A::kStrings, "\"edge\"", ""),
            opt("align_corners", A::kBools, "null", ""), dtype(), opt("keep_size", A::kBool, "true", ""), allow_missing()});
  add_dict(r, "RandAffined", "Random affine transform.", I,
           {keys(), opt("spatial_size", A::kInts, "null", ""), prob(), opt("rotate_range", A::kAny, "null", ""),
            opt("shear_range", A::kAny, "null", ""), opt("translate_range", A::kAny, "null", ""),
            opt("scale_range", A::kAny, "null", ""), opt("mode", A::kStrings, "\"bilinear\"", ""),
            opt("padding_mode", A::kStrings, "\"reflection\"", ""), opt("cache_grid", A::kBool, "false", ""),
            opt("device", A::kString, "null", ""), allow_missing()});
  add_dict(r, "Rand3DElasticd", "Random elastic deformation.", I,
           {keys(), req("sigma_range", A::kFloats, ""), req("magnitude_range", A::kFloats, ""),
            opt("spatial_size", A::kInts, "null", ""), prob(), opt("rotate_range", A::kAny, "null", ""),
            opt("shear_range", A::kAny, "null", ""), opt("translate_range", A::kAny, "null", ""),
            opt("scale_range", A::kAny, "null", ""), opt("mode", A::kStrings, "\"bilinear\"", ""),
            opt("padding_mode", A::kStrings, "\"reflection\"", ""), opt("device", A::kString, "null", ""),
            allow_missing()});
  add_dict(r, "RandShiftIntensityd", "Adds a random offset in [-offsets, offsets].", I,
           {keys(), req("offsets", A::kFloats, ""), opt("safe", A::kBool, "false", ""),
            opt("factor_key", A::kString, "null", ""), meta_keys(), meta_postfix(), prob(),
            opt("channel_wise", A::kBool, "false", ""), allow_missing()});
  add_dict(r, "RandScaleIntensityd", "Multiplies by 1 + a random factor.", I,
           {keys(), req("factors", A::kFloats, ""), prob(), opt("channel_wise", A::kBool, "false", ""), dtype(),
            allow_missing()});
  add_dict(r, "RandGaussianNoised", "Adds Gaussian noise.", I,
           {keys(), prob(), opt("mean", A::kFloat, "0.0", ""), opt("std", A::kFloat, "0.1", ""), dtype(),
            allow_missing(), opt("sample_std", A::kBool, "true", "")});
  add_dict(r, "RandGaussianSmoothd", "Gaussian smoothing with random sigmas.", I,
           {keys(), opt("sigma_x", A::kFloats, "[0.25, 1.5]", ""), opt("sigma_y", A::kFloats, "[0.25, 1.5]", ""),
            opt("sigma_z", A::kFloats, "[0.25, 1.5]", ""), opt("approx", A::kString, "\"erf\"", ""), prob(), allow_missing()});
  add_dict(r, "RandAdjustContrastd", "Random gamma contrast.", I,
           {keys(), prob(), opt("gamma", A::kFloats, "[0.5, 4.5]", ""), opt("invert_image", A::kBool, "false", ""),
            opt("retain_stats", A::kBool, "false", ""), allow_missing()});
  add_dict(r, "RandHistogramShiftd", "Random non-linear histogram shift.", I,
           {keys(), opt("num_control_points", A::kInts, "10", ""), prob(), allow_missing()});
  // post-processing
  add_dict(r, "Activationsd", "Applies sigmoid or softmax.", I,
           {keys(), opt("sigmoid", A::kBools, "false", ""), opt("softmax", A::kBools, "false", ""),
            opt("other", A::kCallable, "null", ""), allow_missing()});
  add_dict(r, "AsDiscreted", "argmax, one-hot and thresholding.", I,
           {keys(), opt("argmax", A::kBools, "false", ""), opt("to_onehot", A::kAny, "null", "Number of classes (or true with n_classes)."),
            opt("threshold", A::kFloats, "null", ""), opt("rounding", A::kStrings, "null", ""), allow_missing(),
            opt("n_classes", A::kInts, "null", "Deprecated: number of classes for to_onehot=true."),
            opt("num_classes", A::kInts, "null", "Deprecated alias of n_classes."),
            opt("threshold_values", A::kBools, "false", "Deprecated: use threshold."),
            opt("logit_thresh", A::kFloats, "0.5", "Deprecated: the threshold value.")});
  add_dict(r, "KeepLargestConnectedComponentd", "Keeps the largest connected component(s).", I,
           {keys(), opt("applied_labels", A::kInts, "null", ""), opt("is_onehot", A::kBool, "null", ""),
            opt("independent", A::kBool, "true", ""), opt("connectivity", A::kInt, "null", ""),
            opt("num_components", A::kInt, "1", ""), allow_missing()});
  add_dict(r, "FillHolesd", "Fills holes in labels.", I,
           {keys(), opt("applied_labels", A::kInts, "null", ""), opt("connectivity", A::kInt, "null", ""), allow_missing()});
  add_dict(r, "Invertd", "Undoes the spatial transforms of `transform` so predictions land on the original grid.", I,
           {keys(), req("transform", A::kReference, "The pre-transforms to invert (\"@pre_transforms\")."),
            opt("orig_keys", A::kStrings, "null", ""), meta_keys(), opt("orig_meta_keys", A::kStrings, "null", ""),
            meta_postfix(), opt("nearest_interp", A::kBools, "true", ""), opt("to_tensor", A::kBools, "true", ""),
            opt("device", A::kStrings, "null", ""), opt("post_func", A::kAny, "null", ""), allow_missing()});
  add_dict(r, "SaveImaged", "Writes images (NIfTI by default) with their affine.", I,
           {keys(), meta_keys(), meta_postfix(), opt("output_dir", A::kString, "\"./\"", ""),
            opt("output_postfix", A::kString, "\"trans\"", ""), opt("output_ext", A::kString, "\".nii.gz\"", ""),
            opt("resample", A::kBool, "true", ""), opt("mode", A::kString, "\"nearest\"", ""),
            opt("padding_mode", A::kString, "\"border\"", ""), opt("scale", A::kInt, "null", ""), dtype("\"float64\""),
            opt("output_dtype", A::kString, "\"float32\"", ""), allow_missing(), opt("squeeze_end_dims", A::kBool, "true", ""),
            opt("data_root_dir", A::kString, "\"\"", ""), opt("separate_folder", A::kBool, "true", ""),
            opt("print_log", A::kBool, "true", ""), opt("output_format", A::kString, "\"\"", ""),
            opt("writer", A::kString, "null", ""), opt("savepath_in_metadict", A::kBool, "false", "")});
}

std::vector<ArgSpec> dice_args() {
  return {opt("include_background", A::kBool, "true", ""), opt("to_onehot_y", A::kBool, "false", ""),
          opt("sigmoid", A::kBool, "false", ""), opt("softmax", A::kBool, "false", ""),
          opt("other_act", A::kCallable, "null", ""), opt("squared_pred", A::kBool, "false", ""),
          opt("jaccard", A::kBool, "false", ""), opt("reduction", A::kString, "\"mean\"", ""),
          opt("smooth_nr", A::kFloat, "1e-05", ""), opt("smooth_dr", A::kFloat, "1e-05", ""),
          opt("batch", A::kBool, "false", ""), opt("weight", A::kFloats, "null", ""),
          opt("soft_label", A::kBool, "false", "")};
}

void losses(RegistryBase& r) {
  const char* I = kModels;
  add(r, "DiceLoss", "1 - Dice (MONAI's definition).", I, dice_args());
  add(r, "MaskedDiceLoss", "DiceLoss inside a mask.", I, dice_args());
  add(r, "GeneralizedDiceLoss", "Generalised Dice with class weights.", I,
      {opt("include_background", A::kBool, "true", ""), opt("to_onehot_y", A::kBool, "false", ""),
       opt("sigmoid", A::kBool, "false", ""), opt("softmax", A::kBool, "false", ""),
       opt("other_act", A::kCallable, "null", ""), opt("w_type", A::kString, "\"square\"", ""),
       opt("reduction", A::kString, "\"mean\"", ""), opt("smooth_nr", A::kFloat, "1e-05", ""),
       opt("smooth_dr", A::kFloat, "1e-05", ""), opt("batch", A::kBool, "false", ""), opt("soft_label", A::kBool, "false", "")});
  add(r, "FocalLoss", "Focal loss (sigmoid or softmax form).", I,
      {opt("include_background", A::kBool, "true", ""), opt("to_onehot_y", A::kBool, "false", ""),
       opt("gamma", A::kFloat, "2.0", ""), opt("alpha", A::kFloat, "null", ""), opt("weight", A::kFloats, "null", ""),
       opt("reduction", A::kString, "\"mean\"", ""), opt("use_softmax", A::kBool, "false", "")});
  auto dfl = dice_args();
  dfl.push_back(opt("gamma", A::kFloat, "2.0", ""));
  dfl.push_back(opt("lambda_dice", A::kFloat, "1.0", ""));
  dfl.push_back(opt("lambda_focal", A::kFloat, "1.0", ""));
  dfl.push_back(opt("alpha", A::kFloat, "null", ""));
  dfl.push_back(opt("use_softmax", A::kBool, "false", "Softmax form of the focal term."));
  add(r, "DiceFocalLoss", "lambda_dice * Dice + lambda_focal * Focal.", I, dfl);
  auto dce = dice_args();
  dce.push_back(opt("lambda_dice", A::kFloat, "1.0", ""));
  dce.push_back(opt("lambda_ce", A::kFloat, "1.0", ""));
  dce.push_back(opt("label_smoothing", A::kFloat, "0.0", ""));
  dce.push_back(opt("ce_weight", A::kFloats, "null", ""));
  add(r, "DiceCELoss", "lambda_dice * Dice + lambda_ce * cross-entropy.", I, dce);
  add(r, "TverskyLoss", "Tversky loss (alpha weights FP, beta FN).", I,
      {opt("include_background", A::kBool, "true", ""), opt("to_onehot_y", A::kBool, "false", ""),
       opt("sigmoid", A::kBool, "false", ""), opt("softmax", A::kBool, "false", ""),
       opt("other_act", A::kCallable, "null", ""), opt("alpha", A::kFloat, "0.5", ""), opt("beta", A::kFloat, "0.5", ""),
       opt("reduction", A::kString, "\"mean\"", ""), opt("smooth_nr", A::kFloat, "1e-05", ""),
       opt("smooth_dr", A::kFloat, "1e-05", ""), opt("batch", A::kBool, "false", ""), opt("soft_label", A::kBool, "false", "")});
  add(r, "CrossEntropyLoss", "torch.nn.CrossEntropyLoss.", I,
      {opt("weight", A::kFloats, "null", ""), opt("ignore_index", A::kInt, "-100", ""),
       opt("reduction", A::kString, "\"mean\"", ""), opt("label_smoothing", A::kFloat, "0.0", "")});
  add(r, "BCEWithLogitsLoss", "torch.nn.BCEWithLogitsLoss.", I,
      {opt("weight", A::kFloats, "null", ""), opt("reduction", A::kString, "\"mean\"", ""),
       opt("pos_weight", A::kFloats, "null", "")});
  add(r, "DeepSupervisionLoss", "Weighted sum of a loss over deep-supervision heads.", I,
      {req("loss", A::kAny, "The wrapped loss component."), opt("weight_mode", A::kString, "\"exp\"", ""),
       opt("weights", A::kFloats, "null", "")});
}

void networks(RegistryBase& r) {
  const char* I = kModels;
  auto dims = [] {
    return std::vector<ArgSpec>{opt("spatial_dims", A::kInt, "3", "2 or 3."),
                                opt("dimensions", A::kInt, "null", "Clara 4.x / old MONAI name of spatial_dims.")};
  };
  auto unet = dims();
  for (auto a : {req("in_channels", A::kInt, ""), req("out_channels", A::kInt, ""),
                 req("channels", A::kInts, "Channels per level."), req("strides", A::kInts, "Stride per down level."),
                 opt("kernel_size", A::kInts, "3", ""), opt("up_kernel_size", A::kInts, "3", ""),
                 opt("num_res_units", A::kInt, "0", ""), opt("act", A::kAny, "\"PRELU\"", ""),
                 opt("norm", A::kAny, "\"INSTANCE\"", "batch, instance or group."), opt("dropout", A::kFloat, "0.0", ""),
                 opt("bias", A::kBool, "true", ""), opt("adn_ordering", A::kString, "\"NDA\"", "")})
    unet.push_back(a);
  add(r, "UNet", "MONAI's residual UNet; state_dict keys match MONAI's.", I, unet);
  auto basic = dims();
  for (auto a : {opt("in_channels", A::kInt, "1", ""), opt("out_channels", A::kInt, "2", ""),
                 opt("features", A::kInts, "[32, 32, 64, 128, 256, 32]", ""), opt("act", A::kAny, "[\"LeakyReLU\", {\"negative_slope\": 0.1, \"inplace\": true}]", ""),
                 opt("norm", A::kAny, "[\"instance\", {\"affine\": true}]", ""), opt("bias", A::kBool, "true", ""),
                 opt("dropout", A::kFloat, "0.0", ""), opt("upsample", A::kString, "\"deconv\"", "")})
    basic.push_back(a);
  add(r, "BasicUNet", "MONAI's BasicUNet.", I, basic);
  r.add_alias("BasicUnet", "BasicUNet");
  r.add_alias("Basicunet", "BasicUNet");
  auto seg = dims();
  for (auto a : {opt("init_filters", A::kInt, "8", ""), opt("in_channels", A::kInt, "1", ""),
                 opt("out_channels", A::kInt, "2", ""), opt("dropout_prob", A::kFloat, "null", ""),
                 opt("act", A::kAny, "[\"RELU\", {\"inplace\": true}]", ""), opt("norm", A::kAny, "[\"GROUP\", {\"num_groups\": 8}]", ""),
                 opt("norm_name", A::kString, "\"\"", ""), opt("num_groups", A::kInt, "8", ""),
                 opt("use_conv_final", A::kBool, "true", ""), opt("blocks_down", A::kInts, "[1, 2, 2, 4]", ""),
                 opt("blocks_up", A::kInts, "[1, 1, 1]", ""), opt("upsample_mode", A::kString, "\"nontrainable\"", "")})
    seg.push_back(a);
  add(r, "SegResNet", "MONAI's SegResNet.", I, seg);
  auto dyn = dims();
  for (auto a : {req("in_channels", A::kInt, ""), req("out_channels", A::kInt, ""), req("kernel_size", A::kAny, ""),
                 req("strides", A::kAny, ""), req("upsample_kernel_size", A::kAny, ""), opt("filters", A::kInts, "null", ""),
                 opt("dropout", A::kFloat, "null", ""), opt("norm_name", A::kAny, "[\"INSTANCE\", {\"affine\": true}]", ""),
                 opt("act_name", A::kAny, "[\"leakyrelu\", {\"inplace\": true, \"negative_slope\": 0.01}]", ""),
                 opt("deep_supervision", A::kBool, "false", ""), opt("deep_supr_num", A::kInt, "1", ""),
                 opt("res_block", A::kBool, "false", ""), opt("trans_bias", A::kBool, "false", "")})
    dyn.push_back(a);
  add(r, "DynUNet", "nnU-Net style dynamic UNet with deep supervision.", I, dyn);
  auto att = dims();
  for (auto a : {req("in_channels", A::kInt, ""), req("out_channels", A::kInt, ""), req("channels", A::kInts, ""),
                 req("strides", A::kInts, ""), opt("kernel_size", A::kInts, "3", ""), opt("up_kernel_size", A::kInts, "3", ""),
                 opt("dropout", A::kFloat, "0.0", "")})
    att.push_back(a);
  add(r, "AttentionUnet", "Attention UNet.", I, att);
}

void optimizers(RegistryBase& r) {
  const char* I = kModels;
  auto params = [] { return opt("params", A::kAny, "\"#@model.parameters()\"", "Parameters to optimise."); };
  auto groups = [] {
    return opt("param_groups", A::kAny, "null",
               "Barton: [{\"match\": name prefix, \"lr\": x, \"weight_decay\": y}], parameter groups by name.");
  };
  add(r, "Adam", "torch.optim.Adam.", I,
      {params(), groups(), opt("lr", A::kFloat, "0.001", ""), opt("betas", A::kFloats, "[0.9, 0.999]", ""),
       opt("eps", A::kFloat, "1e-08", ""), opt("weight_decay", A::kFloat, "0", ""), opt("amsgrad", A::kBool, "false", "")});
  add(r, "AdamW", "torch.optim.AdamW.", I,
      {params(), groups(), opt("lr", A::kFloat, "0.001", ""), opt("betas", A::kFloats, "[0.9, 0.999]", ""),
       opt("eps", A::kFloat, "1e-08", ""), opt("weight_decay", A::kFloat, "0.01", ""), opt("amsgrad", A::kBool, "false", "")});
  add(r, "SGD", "torch.optim.SGD.", I,
      {params(), groups(), req("lr", A::kFloat, ""), opt("momentum", A::kFloat, "0", ""), opt("dampening", A::kFloat, "0", ""),
       opt("weight_decay", A::kFloat, "0", ""), opt("nesterov", A::kBool, "false", "")});
  add(r, "Novograd", "MONAI's Novograd.", I,
      {params(), groups(), opt("lr", A::kFloat, "0.001", ""), opt("betas", A::kFloats, "[0.9, 0.98]", ""),
       opt("eps", A::kFloat, "1e-08", ""), opt("weight_decay", A::kFloat, "0", ""),
       opt("grad_averaging", A::kBool, "false", ""), opt("amsgrad", A::kBool, "false", "")});
}

void schedulers(RegistryBase& r) {
  const char* I = kModels;
  auto optim = [] { return opt("optimizer", A::kReference, "\"@optimizer\"", "The optimizer to schedule."); };
  auto last = [] { return opt("last_epoch", A::kInt, "-1", ""); };
  add(r, "StepLR", "Decays by gamma every step_size steps.", I,
      {optim(), req("step_size", A::kInt, ""), opt("gamma", A::kFloat, "0.1", ""), last()});
  add(r, "MultiStepLR", "Decays by gamma at each milestone.", I,
      {optim(), req("milestones", A::kInts, ""), opt("gamma", A::kFloat, "0.1", ""), last()});
  add(r, "ExponentialLR", "Decays by gamma every step.", I, {optim(), req("gamma", A::kFloat, ""), last()});
  add(r, "CosineAnnealingLR", "Cosine annealing to eta_min over T_max steps.", I,
      {optim(), req("T_max", A::kInt, ""), opt("eta_min", A::kFloat, "0", ""), last()});
  add(r, "WarmupCosineSchedule", "MONAI's linear warmup then cosine decay.", I,
      {optim(), req("warmup_steps", A::kInt, ""), req("t_total", A::kInt, ""), opt("end_lr", A::kFloat, "0.0", ""),
       opt("cycles", A::kFloat, "0.5", ""), last(), opt("warmup_multiplier", A::kFloat, "0", "")});
  add(r, "PolynomialLR", "nnU-Net's poly decay: lr * (1 - step/total_iters)^power.", I,
      {optim(), opt("total_iters", A::kInt, "5", ""), opt("power", A::kFloat, "1.0", ""), last()});
  add(r, "LinearLR", "Linear warmup factor from start_factor to end_factor.", I,
      {optim(), opt("start_factor", A::kFloat, "0.3333333333333333", ""), opt("end_factor", A::kFloat, "1.0", ""),
       opt("total_iters", A::kInt, "5", ""), last()});
  add(r, "ReduceLROnPlateau", "Reduces the LR when a metric stops improving.", I,
      {optim(), opt("mode", A::kString, "\"min\"", ""), opt("factor", A::kFloat, "0.1", ""),
       opt("patience", A::kInt, "10", ""), opt("threshold", A::kFloat, "0.0001", ""),
       opt("threshold_mode", A::kString, "\"rel\"", ""), opt("cooldown", A::kInt, "0", ""),
       opt("min_lr", A::kFloats, "0", ""), opt("eps", A::kFloat, "1e-08", "")});
}

void datasets(RegistryBase& r) {
  const char* I = kPipeline;
  auto transform = [] { return opt("transform", A::kReference, "\"@pre_transforms\"", "The transform chain."); };
  add(r, "Dataset", "Runs the whole chain on every access.", I, {transform()});
  add(r, "CacheDataset", "Caches the deterministic prefix of the chain in memory.", I,
      {transform(), opt("cache_num", A::kInt, "9223372036854775807", ""), opt("cache_rate", A::kFloat, "1.0", ""),
       opt("num_workers", A::kInt, "1", ""), opt("progress", A::kBool, "true", ""), opt("copy_cache", A::kBool, "true", ""),
       opt("as_contiguous", A::kBool, "true", ""), opt("hash_as_key", A::kBool, "false", ""),
       opt("runtime_cache", A::kAny, "false", "")});
  add(r, "SmartCacheDataset", "Caches a subset and replaces part of it in the background each epoch.", I,
      {transform(), opt("replace_rate", A::kFloat, "0.1", ""), opt("cache_num", A::kInt, "9223372036854775807", ""),
       opt("cache_rate", A::kFloat, "1.0", ""), opt("num_init_workers", A::kInt, "1", ""),
       opt("num_replace_workers", A::kInt, "1", ""), opt("progress", A::kBool, "true", ""),
       opt("shuffle", A::kBool, "true", ""), opt("seed", A::kInt, "0", ""), opt("copy_cache", A::kBool, "true", ""),
       opt("as_contiguous", A::kBool, "true", "")});
  add(r, "PersistentDataset", "Caches the deterministic prefix on disk, keyed by chain and file.", I,
      {transform(), req("cache_dir", A::kString, ""), opt("hash_func", A::kAny, "null", ""),
       opt("pickle_module", A::kString, "\"pickle\"", ""), opt("pickle_protocol", A::kInt, "2", ""),
       opt("hash_transform", A::kAny, "null", ""), opt("reset_ops_id", A::kBool, "true", "")});
}

void dataloaders(RegistryBase& r) {
  const char* I = kPipeline;
  std::vector<ArgSpec> common = {
      opt("dataset", A::kReference, "\"@dataset\"", ""), opt("batch_size", A::kInt, "1", ""),
      opt("shuffle", A::kBool, "false", ""), opt("num_workers", A::kInt, "0", "Worker threads."),
      opt("drop_last", A::kBool, "false", ""), opt("pin_memory", A::kBool, "false", ""),
      opt("collate_fn", A::kAny, "null", ""), opt("prefetch_factor", A::kInt, "2", ""),
      opt("persistent_workers", A::kBool, "false", ""), opt("sampler", A::kAny, "null", ""),
      opt("timeout", A::kFloat, "0", "")};
  add(r, "DataLoader", "Batches samples with worker threads.", I, common);
  auto thread = common;
  thread.push_back(opt("buffer_size", A::kInt, "1", ""));
  thread.push_back(opt("buffer_timeout", A::kFloat, "0.01", ""));
  thread.push_back(opt("repeats", A::kInt, "1", ""));
  thread.push_back(opt("use_thread_workers", A::kBool, "false", ""));
  add(r, "ThreadDataLoader", "DataLoader with a background prefetch thread.", I, thread);
}

void inferers(RegistryBase& r) {
  const char* I = kModels;
  add(r, "SimpleInferer", "Runs the network on the whole input.", I, {});
  add(r, "SlidingWindowInferer", "Patch-wise inference with overlap and blending.", I,
      {req("roi_size", A::kInts, ""), opt("sw_batch_size", A::kInt, "1", ""), opt("overlap", A::kFloats, "0.25", ""),
       opt("mode", A::kString, "\"constant\"", "constant or gaussian."), opt("sigma_scale", A::kFloats, "0.125", ""),
       opt("padding_mode", A::kString, "\"constant\"", ""), opt("cval", A::kFloat, "0.0", ""),
       opt("sw_device", A::kString, "null", ""), opt("device", A::kString, "null", ""),
       opt("progress", A::kBool, "false", ""), opt("cache_roi_weight_map", A::kBool, "false", ""),
       opt("cpu_thresh", A::kInt, "null", ""), opt("buffer_steps", A::kInt, "null", ""),
       opt("buffer_dim", A::kInt, "-1", ""), opt("with_coord", A::kBool, "false", ""),
       opt("tta_flips", A::kBool, "false", "Barton: also predict on flipped inputs and average (test-time augmentation).")});
}

void metrics(RegistryBase& r) {
  const char* I = kModels;
  auto details = [] { return opt("save_details", A::kBool, "true", ""); };
  auto red = [] { return opt("reduction", A::kString, "\"mean\"", ""); };
  add(r, "MeanDice", "Mean Dice over classes and cases (handler form of DiceMetric).", I,
      {opt("include_background", A::kBool, "true", ""), red(), output_transform(), details(),
       opt("num_classes", A::kInt, "null", ""), opt("ignore_empty", A::kBool, "true", "")});
  add(r, "DiceMetric", "Dice per case and class.", I,
      {opt("include_background", A::kBool, "true", ""), red(), opt("get_not_nans", A::kBool, "false", ""),
       opt("ignore_empty", A::kBool, "true", ""), opt("num_classes", A::kInt, "null", "")});
  add(r, "Accuracy", "Voxel accuracy (ignite Accuracy as Clara configs use it).", I,
      {output_transform(), opt("is_multilabel", A::kBool, "false", ""), opt("device", A::kString, "null", "")});
  add(r, "HausdorffDistance", "Hausdorff distance in mm (percentile 95 for HD95).", I,
      {opt("include_background", A::kBool, "false", ""), opt("distance_metric", A::kString, "\"euclidean\"", ""),
       opt("percentile", A::kFloat, "null", ""), opt("directed", A::kBool, "false", ""), red(), output_transform(), details()});
  add(r, "SurfaceDistance", "Mean surface distance in mm.", I,
      {opt("include_background", A::kBool, "false", ""), opt("symmetric", A::kBool, "false", ""),
       opt("distance_metric", A::kString, "\"euclidean\"", ""), red(), output_transform(), details()});
  add(r, "SurfaceDice", "Normalised surface Dice at a tolerance in mm.", I,
      {req("class_thresholds", A::kFloats, ""), opt("include_background", A::kBool, "false", ""),
       opt("distance_metric", A::kString, "\"euclidean\"", ""), red(), output_transform(), details()});
  add(r, "ConfusionMatrix", "Sensitivity, specificity, precision, F1 and friends.", I,
      {opt("include_background", A::kBool, "true", ""), opt("metric_name", A::kStrings, "\"hit_rate\"", ""),
       opt("compute_sample", A::kBool, "false", ""), red(), output_transform(), details()});
}

void handlers(RegistryBase& r) {
  const char* I = kEngine;
  add(r, "CheckpointLoader", "Loads a checkpoint into components before the run.", I,
      {req("load_path", A::kString, ""), req("load_dict", A::kAny, "{\"model\": \"@model\"} or [\"model\"]."),
       opt("name", A::kString, "null", ""), opt("map_location", A::kAny, "null", ""),
       opt("strict", A::kBool, "true", ""), opt("strict_shape", A::kBool, "true", "")});
  add(r, "CheckpointSaver", "Saves checkpoints: best key metric, final, every N epochs.", I,
      {req("save_dir", A::kString, ""), req("save_dict", A::kAny, ""), opt("name", A::kString, "null", ""),
       opt("file_prefix", A::kString, "\"\"", ""), opt("save_final", A::kBool, "false", ""),
       opt("final_filename", A::kString, "null", ""), opt("save_key_metric", A::kBool, "false", ""),
       opt("key_metric_name", A::kString, "null", ""), opt("key_metric_n_saved", A::kInt, "1", ""),
       opt("key_metric_filename", A::kString, "null", ""), opt("key_metric_save_state", A::kBool, "false", ""),
       opt("key_metric_greater_or_equal", A::kBool, "false", ""), opt("key_metric_negative_sign", A::kBool, "false", ""),
       opt("epoch_level", A::kBool, "true", ""), opt("save_interval", A::kInt, "0", ""), opt("n_saved", A::kInt, "null", "")});
  add(r, "StatsHandler", "Console progress: loss, metrics, lr, speed.", I,
      {opt("iteration_log", A::kAny, "true", ""), opt("epoch_log", A::kAny, "true", ""),
       opt("epoch_print_logger", A::kCallable, "null", ""), opt("iteration_print_logger", A::kCallable, "null", ""),
       output_transform(), opt("global_epoch_transform", A::kCallable, "null", ""),
       opt("state_attributes", A::kStrings, "null", ""), opt("name", A::kString, "\"StatsHandler\"", ""),
       opt("tag_name", A::kString, "\"Loss\"", ""), opt("key_var_format", A::kString, "\"{}: {:.4f} \"", "")});
  add(r, "TensorBoardStatsHandler", "Writes TensorBoard event files.", I,
      {opt("summary_writer", A::kAny, "null", ""), opt("log_dir", A::kString, "\"./runs\"", ""),
       opt("iteration_log", A::kAny, "true", ""), opt("epoch_log", A::kAny, "true", ""),
       opt("epoch_event_writer", A::kCallable, "null", ""), opt("epoch_interval", A::kInt, "1", ""),
       opt("iteration_event_writer", A::kCallable, "null", ""), opt("iteration_interval", A::kInt, "1", ""),
       output_transform(), opt("global_epoch_transform", A::kCallable, "null", ""),
       opt("state_attributes", A::kStrings, "null", ""), opt("tag_name", A::kString, "\"Loss\"", "")});
  add(r, "TensorBoardImageHandler", "Writes image slices to TensorBoard.", I,
      {opt("log_dir", A::kString, "\"./runs\"", ""), opt("interval", A::kInt, "1", ""),
       opt("epoch_level", A::kBool, "true", ""), opt("batch_transform", A::kCallable, "null", ""),
       output_transform(), opt("index", A::kInt, "0", ""), opt("max_channels", A::kInt, "1", ""),
       opt("frame_dim", A::kInt, "-3", ""), opt("max_frames", A::kInt, "64", "")});
  add(r, "ValidationHandler", "Runs the evaluator every `interval` epochs.", I,
      {req("interval", A::kInt, ""), opt("validator", A::kReference, "\"@evaluator\"", ""),
       opt("epoch_level", A::kBool, "true", ""), opt("exec_at_start", A::kBool, "false", "")});
  add(r, "LrScheduleHandler", "Steps the LR scheduler per epoch or iteration.", I,
      {opt("lr_scheduler", A::kReference, "\"@lr_scheduler\"", ""), opt("print_lr", A::kBool, "true", ""),
       opt("name", A::kString, "null", ""), opt("epoch_level", A::kBool, "true", ""),
       opt("step_transform", A::kCallable, "null", "")});
  add(r, "MetricsSaver", "Writes metrics.csv, <metric>_raw.csv and summaries.", I,
      {req("save_dir", A::kString, ""), opt("metrics", A::kStrings, "\"*\"", ""),
       opt("metric_details", A::kStrings, "null", ""), opt("batch_transform", A::kCallable, "null", ""),
       opt("summary_ops", A::kStrings, "null", ""), opt("save_rank", A::kInt, "0", ""),
       opt("delimiter", A::kString, "\",\"", ""), opt("output_type", A::kString, "\"csv\"", "")});
  add(r, "EarlyStopHandler", "Stops when the key metric stops improving.", I,
      {req("patience", A::kInt, ""), opt("score_function", A::kCallable, "null", ""),
       opt("trainer", A::kReference, "null", ""), opt("min_delta", A::kFloat, "0.0", ""),
       opt("cumulative_delta", A::kBool, "false", ""), opt("epoch_level", A::kBool, "true", "")});
  add(r, "SmartCacheHandler", "Drives SmartCacheDataset replacement.", I, {opt("smartcacher", A::kReference, "\"@dataset\"", "")});
  add(r, "SegmentationSaver", "Writes segmentations (older MONAI handler).", I,
      {opt("output_dir", A::kString, "\"./\"", ""), opt("output_postfix", A::kString, "\"seg\"", ""),
       opt("output_ext", A::kString, "\".nii.gz\"", ""), opt("resample", A::kBool, "true", ""),
       opt("mode", A::kString, "\"nearest\"", ""), opt("padding_mode", A::kString, "\"border\"", ""),
       opt("scale", A::kInt, "null", ""), opt("dtype", A::kString, "\"float64\"", ""),
       opt("batch_transform", A::kCallable, "null", ""), output_transform(), opt("name", A::kString, "null", ""),
       opt("images", A::kAny, "null", "")});
}

void engines(Registries& r) {
  const char* I = kEngine;
  add(r.trainers, "SupervisedTrainer", "Supervised training loop.", I,
      {opt("device", A::kString, "null", ""), req("max_epochs", A::kInt, ""), req("train_data_loader", A::kReference, ""),
       req("network", A::kReference, ""), req("optimizer", A::kReference, ""), req("loss_function", A::kReference, ""),
       opt("epoch_length", A::kInt, "null", ""), opt("non_blocking", A::kBool, "false", ""),
       opt("prepare_batch", A::kCallable, "null", ""), opt("iteration_update", A::kCallable, "null", ""),
       opt("inferer", A::kReference, "null", ""), opt("postprocessing", A::kReference, "null", ""),
       opt("key_train_metric", A::kReference, "null", ""), opt("additional_metrics", A::kReference, "null", ""),
       opt("metric_cmp_fn", A::kCallable, "null", ""), opt("train_handlers", A::kReference, "null", ""),
       opt("amp", A::kBool, "false", ""), opt("event_names", A::kAny, "null", ""), opt("event_to_attr", A::kAny, "null", ""),
       opt("decollate", A::kBool, "true", ""), opt("optim_set_to_none", A::kBool, "false", ""),
       opt("to_kwargs", A::kObject, "null", ""), opt("amp_kwargs", A::kObject, "null", ""),
       opt("gradient_accumulation", A::kInt, "1", "Barton: optimizer step every N iterations, on the mean of their gradients."),
       opt("clip_grad_norm", A::kFloat, "null", "Barton: clip the global gradient norm to this value.")});
  add(r.evaluators, "SupervisedEvaluator", "Validation / inference loop.", I,
      {opt("device", A::kString, "null", ""), req("val_data_loader", A::kReference, ""), req("network", A::kReference, ""),
       opt("epoch_length", A::kInt, "null", ""), opt("non_blocking", A::kBool, "false", ""),
       opt("prepare_batch", A::kCallable, "null", ""), opt("iteration_update", A::kCallable, "null", ""),
       opt("inferer", A::kReference, "null", ""), opt("postprocessing", A::kReference, "null", ""),
       opt("key_val_metric", A::kReference, "null", ""), opt("additional_metrics", A::kReference, "null", ""),
       opt("metric_cmp_fn", A::kCallable, "null", ""), opt("val_handlers", A::kReference, "null", ""),
       opt("amp", A::kBool, "false", ""), opt("mode", A::kString, "\"eval\"", ""), opt("event_names", A::kAny, "null", ""),
       opt("event_to_attr", A::kAny, "null", ""), opt("decollate", A::kBool, "true", ""),
       opt("to_kwargs", A::kObject, "null", ""), opt("amp_kwargs", A::kObject, "null", "")});
  add(r.interactions, "ClickInteraction", "DeepGrow click simulation during training.", "the AIAA issue",
      {opt("transforms", A::kAny, "null", ""), opt("max_interactions", A::kInt, "15", ""),
       opt("key_probability", A::kString, "\"probability\"", ""), opt("train", A::kBool, "true", "")});
}

}  // namespace

void register_planned_components(Registries& r) {
  transforms(r.transforms);
  networks(r.networks);
  losses(r.losses);
  optimizers(r.optimizers);
  schedulers(r.lr_schedulers);
  datasets(r.datasets);
  dataloaders(r.dataloaders);
  inferers(r.inferers);
  metrics(r.metrics);
  handlers(r.handlers);
  engines(r);
}

}  // namespace barton::mmar
