// The MONAI / Clara 4.x component catalogue, with MONAI's argument names and defaults
// (MONAI's and Clara Train 4.x's documented components). Each entry moves to its
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
            opt("select_fn", A::kAny, "null", "Foreground test."),
            opt("channel_indices", A::kInts, "null", "Accepted for MONAI compatibility; ignored."),
            opt("margin", A::kInts, "0", "Margin in voxels."), allow_missing()});
  add_dict(r, "ToTensord", "Converts values to tensors.", I,
           {keys(), dtype("null"), opt("device", A::kString, "null", "Target device."),
            opt("wrap_sequence", A::kBool, "true", "Wrap sequences into one tensor."),
            opt("track_meta", A::kBool, "null", "MONAI compatibility."), allow_missing()});
  add_dict(r, "EnsureTyped", "Ensures tensors of a given type and device.", I,
           {keys(), opt("data_type", A::kString, "\"tensor\"", "tensor or numpy."), dtype("null"),
            opt("device", A::kString, "null", "Target device."),
            opt("wrap_sequence", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
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
           {keys(), opt("dim", A::kInt, "0", "Axis."),
            opt("update_meta", A::kBool, "true", "Accepted for MONAI compatibility; ignored."), allow_missing()});
  add_dict(r, "FgBgToIndicesd", "Precomputes foreground/background voxel indices for patch sampling.", I,
           {keys(),
            opt("fg_postfix", A::kString, "\"_fg_indices\"",
                "Suffix of the key that receives the foreground indices (key + postfix)."),
            opt("bg_postfix", A::kString, "\"_bg_indices\"",
                "Suffix of the key that receives the background indices (key + postfix)."),
            opt("image_key", A::kString, "null",
                "Image whose voxels above image_threshold bound the background; null: all non-foreground."),
            opt("image_threshold", A::kFloat, "0.0", "Background voxels must exceed this value in image_key."),
            opt("output_shape", A::kInts, "null", "Shape to unravel the indices to; not supported yet (must be null)."),
            allow_missing()});
  // intensity
  add_dict(r, "ScaleIntensityRanged", "Maps [a_min, a_max] linearly to [b_min, b_max], optionally clipping.", I,
           {keys(), req("a_min", A::kFloat, "Input range start."), req("a_max", A::kFloat, "Input range end."),
            opt("b_min", A::kFloat, "null", "Output range start."), opt("b_max", A::kFloat, "null", "Output range end."),
            opt("clip", A::kBool, "false", "Clamp to [b_min, b_max]."), dtype(), allow_missing()});
  add_dict(r, "ScaleIntensityRangePercentilesd", "Like ScaleIntensityRanged with a_min/a_max taken as percentiles.", I,
           {keys(), req("lower", A::kFloat, "Lower percentile."), req("upper", A::kFloat, "Upper percentile."),
            req("b_min", A::kFloat, "Output start."), req("b_max", A::kFloat, "Output end."),
            opt("clip", A::kBool, "false", "Clamp the output to [b_min, b_max]."),
            opt("relative", A::kBool, "false",
                "Shrink the output range to the percentiles' share of [b_min, b_max] (needs both)."),
            opt("channel_wise", A::kBool, "false", "Compute the percentiles and scale each channel separately."),
            dtype(), allow_missing()});
  add_dict(r, "NormalizeIntensityd", "Subtracts the mean (or subtrahend) and divides by the std (or divisor).", I,
           {keys(),
            opt("subtrahend", A::kFloats, "null",
                "Value to subtract (one, or one per channel with channel_wise); null: the mean."),
            opt("divisor", A::kFloats, "null",
                "Value to divide by (one, or one per channel with channel_wise); null: the std."),
            opt("nonzero", A::kBool, "false", "Use non-zero voxels only."),
            opt("channel_wise", A::kBool, "false", "Normalise each channel separately."),
            dtype(), allow_missing()});
  add_dict(r, "ScaleIntensityd", "Rescales to [minv, maxv] or multiplies by 1 + factor.", I,
           {keys(),
            opt("minv", A::kFloat, "0.0",
                "Output minimum of the min-max rescaling; null with maxv null selects factor."),
            opt("maxv", A::kFloat, "1.0",
                "Output maximum of the min-max rescaling; null with minv null selects factor."),
            opt("factor", A::kFloat, "null", "With minv and maxv null: multiply the intensities by 1 + factor."),
            opt("channel_wise", A::kBool, "false", "Rescale each channel separately."), dtype(), allow_missing()});
  add_dict(r, "ThresholdIntensityd", "Replaces values above/below threshold with cval.", I,
           {keys(), req("threshold", A::kFloat, "The threshold value."),
            opt("above", A::kBool, "true",
                "Keep values above the threshold (true) or below it (false); the others become cval."),
            opt("cval", A::kFloat, "0.0", "Value given to the voxels that are not kept."),
            allow_missing()});
  add_dict(r, "ClipIntensityPercentilesd", "Clips to percentiles.", I,
           {keys(), req("lower", A::kFloat, "Lower percentile in [0, 100]; null: no lower clip."),
            req("upper", A::kFloat, "Upper percentile in [0, 100]; null: no upper clip."),
            opt("sharpness_factor", A::kFloat, "null", "Soft-clipping sharpness; not supported yet (must be null)."),
            opt("channel_wise", A::kBool, "false",
                "Compute the percentiles and clip each channel separately."), dtype(),
            allow_missing()});
  // random
  add_dict(r, "RandCropByPosNegLabeld", "Samples num_samples patches centred on foreground with probability pos/(pos+neg).", I,
           {keys(), req("label_key", A::kString, "Label key."), req("spatial_size", A::kInts, "Patch size."),
            opt("pos", A::kFloat, "1.0", "Relative weight of patches centred on foreground voxels."),
            opt("neg", A::kFloat, "1.0", "Relative weight of patches centred on background voxels."),
            opt("num_samples", A::kInt, "1", "Patches drawn from each sample."),
            opt("image_key", A::kString, "null",
                "Image whose voxels above image_threshold are valid background centres; null: all."),
            opt("image_threshold", A::kFloat, "0.0", "Threshold on image_key for valid background centres."),
            opt("fg_indices_key", A::kString, "null",
                "Key of precomputed foreground indices (FgBgToIndicesd) to draw from."),
            opt("bg_indices_key", A::kString, "null",
                "Key of precomputed background indices (FgBgToIndicesd) to draw from."),
            meta_keys(), meta_postfix(),
            opt("allow_smaller", A::kBool, "false",
                "Allow images smaller than spatial_size (the patch shrinks); otherwise an error."),
            allow_missing(), opt("lazy", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")});
  add_dict(r, "RandCropByLabelClassesd", "Samples patches centred on each class with given ratios.", I,
           {keys(), req("label_key", A::kString, "Label key: one-hot channels, or one channel of class indices."),
            req("spatial_size", A::kInts, "Patch size; -1 keeps an axis."),
            opt("ratios", A::kFloats, "null", "Relative weight of each class as patch centre; null: equal weights."),
            opt("num_classes", A::kInt, "null", "Number of classes of a single-channel label."),
            opt("num_samples", A::kInt, "1", "Patches drawn from each sample."),
            opt("image_key", A::kString, "null",
                "Image whose voxels above image_threshold are valid centres; null: all."),
            opt("image_threshold", A::kFloat, "0.0", "Threshold on image_key for valid centres."),
            opt("indices_key", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
            opt("allow_smaller", A::kBool, "false",
                "Allow images smaller than spatial_size (the patch shrinks); otherwise an error."),
            allow_missing(), opt("warn", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
            opt("max_samples_per_class", A::kInt, "null", "Accepted for MONAI compatibility; ignored.")});
  add_dict(r, "RandSpatialCropd", "Crops a random region.", I,
           {keys(), req("roi_size", A::kInts, "Crop size (the minimum size with random_size); -1 keeps an axis."),
            opt("max_roi_size", A::kInts, "null", "Largest crop size with random_size; null: the image size."),
            opt("random_center", A::kBool, "true", "Place the crop at random (true) or at the centre (false)."),
            opt("random_size", A::kBool, "false", "Draw the crop size between roi_size and max_roi_size."),
            allow_missing()});
  add_dict(r, "RandSpatialCropSamplesd", "Crops num_samples random regions.", I,
           {keys(), req("roi_size", A::kInts, "Crop size (the minimum size with random_size); -1 keeps an axis."),
            req("num_samples", A::kInt, "Number of crops drawn from each sample."),
            opt("max_roi_size", A::kInts, "null", "Largest crop size with random_size; null: the image size."),
            opt("random_center", A::kBool, "true", "Place the crop at random (true) or at the centre (false)."),
            opt("random_size", A::kBool, "false", "Draw the crop size between roi_size and max_roi_size."),
            allow_missing()});
  add_dict(r, "RandFlipd", "Flips along spatial_axis with probability prob.", I,
           {keys(), prob(), opt("spatial_axis", A::kInts, "null", "Axes; null flips all."), allow_missing()});
  add_dict(r, "RandRotate90d", "Rotates by k*90 degrees in spatial_axes.", I,
           {keys(), prob(), opt("max_k", A::kInt, "3", "Rotate by k * 90 degrees with k drawn from 1 to max_k."),
            opt("spatial_axes", A::kInts, "[0, 1]", "The two spatial axes that span the rotation plane."),
            allow_missing()});
  add_dict(r, "RandRotated", "Rotates by random angles.", I,
           {keys(),
            opt("range_x", A::kFloats, "0.0",
                "Range of the first angle in radians (the only one in 2D); x means [-x, x]."),
            opt("range_y", A::kFloats, "0.0", "Range of the second angle in radians (3D); x means [-x, x]."),
            opt("range_z", A::kFloats, "0.0", "Range of the third angle in radians (3D); x means [-x, x]."), prob(),
            opt("keep_size", A::kBool, "true",
                "Keep the input shape (true) or enlarge the output to hold the rotated image."),
            opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
            opt("padding_mode", A::kStrings, "\"border\"", "Padding per key: zeros, border or reflection."),
            opt("align_corners", A::kBools, "false", "Grid alignment per key."), dtype(), allow_missing()});
  add_dict(r, "RandZoomd", "Zooms by a random factor.", I,
           {keys(), prob(), opt("min_zoom", A::kFloats, "0.9", "Smallest zoom factor, one value or one per axis."),
            opt("max_zoom", A::kFloats, "1.1", "Largest zoom factor, one value or one per axis."),
            opt("mode", A::kStrings, "\"area\"", "Interpolation per key (area, nearest, bilinear, ...)."),
            opt("padding_mode", A::kStrings, "\"edge\"",
                "Padding per key when a zoomed-out image is padded back to size."),
            opt("align_corners", A::kBools, "null", "Grid alignment per key; null uses the mode's default."), dtype(),
            opt("keep_size", A::kBool, "true", "Crop or pad the result back to the input shape."), allow_missing()});
  add_dict(r, "RandAffined", "Random affine transform.", I,
           {keys(), opt("spatial_size", A::kInts, "null", "Output spatial size; null or -1 keeps the input's."), prob(),
            opt("rotate_range", A::kAny, "null", "Rotation angle ranges in radians, one per angle; x means [-x, x]."),
            opt("shear_range", A::kAny, "null", "Shear coefficient ranges, one per coefficient; x means [-x, x]."),
            opt("translate_range", A::kAny, "null", "Translation ranges in voxels, one per axis; x means [-x, x]."),
            opt("scale_range", A::kAny, "null", "Scale ranges per axis, added to 1; x means [-x, x]."),
            opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
            opt("padding_mode", A::kStrings, "\"reflection\"", "Padding per key: zeros, border or reflection."),
            opt("cache_grid", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
            opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored."), allow_missing()});
  add_dict(r, "Rand3DElasticd", "Random elastic deformation.", I,
           {keys(),
            req("sigma_range", A::kFloats, "Range of the Gaussian sigma that smooths the random displacement field."),
            req("magnitude_range", A::kFloats, "Range of the displacement magnitude (in voxels)."),
            opt("spatial_size", A::kInts, "null", "Output spatial size; null or -1 keeps the input's."), prob(),
            opt("rotate_range", A::kAny, "null", "Rotation angle ranges in radians, one per angle; x means [-x, x]."),
            opt("shear_range", A::kAny, "null", "Shear coefficient ranges, one per coefficient; x means [-x, x]."),
            opt("translate_range", A::kAny, "null", "Translation ranges in voxels, one per axis; x means [-x, x]."),
            opt("scale_range", A::kAny, "null", "Scale ranges per axis, added to 1; x means [-x, x]."),
            opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
            opt("padding_mode", A::kStrings, "\"reflection\"", "Padding per key: zeros, border or reflection."),
            opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
            allow_missing()});
  add_dict(r, "RandShiftIntensityd", "Adds a random offset in [-offsets, offsets].", I,
           {keys(), req("offsets", A::kFloats, "Offset range: x means [-x, x], or [min, max]."),
            opt("safe", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
            opt("factor_key", A::kString, "null",
                "Key of a stored factor to scale the offsets by; not supported yet (must be null)."),
            meta_keys(), meta_postfix(), prob(),
            opt("channel_wise", A::kBool, "false", "Draw a separate offset for each channel."), allow_missing()});
  add_dict(r, "RandScaleIntensityd", "Multiplies by 1 + a random factor.", I,
           {keys(),
            req("factors", A::kFloats,
                "Factor range: x means [-x, x], or [min, max]; intensities are multiplied by 1 + factor."),
            prob(), opt("channel_wise", A::kBool, "false", "Draw a separate factor for each channel."), dtype(),
            allow_missing()});
  add_dict(r, "RandGaussianNoised", "Adds Gaussian noise.", I,
           {keys(), prob(), opt("mean", A::kFloat, "0.0", "Mean of the noise."),
            opt("std", A::kFloat, "0.1", "Standard deviation of the noise (its upper bound with sample_std)."), dtype(),
            allow_missing(),
            opt("sample_std", A::kBool, "true",
                "Draw the standard deviation uniformly from [0, std] for each sample.")});
  add_dict(r, "RandGaussianSmoothd", "Gaussian smoothing with random sigmas.", I,
           {keys(),
            opt("sigma_x", A::kFloats, "[0.25, 1.5]", "Range of the smoothing sigma along the first spatial axis."),
            opt("sigma_y", A::kFloats, "[0.25, 1.5]", "Range of the smoothing sigma along the second spatial axis."),
            opt("sigma_z", A::kFloats, "[0.25, 1.5]", "Range of the smoothing sigma along the third spatial axis."),
            opt("approx", A::kString, "\"erf\"", "Gaussian kernel approximation; only erf is supported."), prob(),
            allow_missing()});
  add_dict(r, "RandAdjustContrastd", "Random gamma contrast.", I,
           {keys(), prob(),
            opt("gamma", A::kFloats, "[0.5, 4.5]", "Gamma range [min, max], or g for [0.5, g] (g must exceed 0.5)."),
            opt("invert_image", A::kBool, "false",
                "Negate the image before the gamma curve and negate the result again."),
            opt("retain_stats", A::kBool, "false",
                "Restore the input's mean and standard deviation after the adjustment."),
            allow_missing()});
  add_dict(r, "RandHistogramShiftd", "Random non-linear histogram shift.", I,
           {keys(),
            opt("num_control_points", A::kInts, "10",
                "Control points of the random intensity curve: n, or [min, max]; at least 3."),
            prob(), allow_missing()});
  // post-processing
  add_dict(r, "Activationsd", "Applies sigmoid or softmax.", I,
           {keys(), opt("sigmoid", A::kBools, "false", "Apply a sigmoid (one value, or one per key)."),
            opt("softmax", A::kBools, "false", "Apply a softmax over the channels (one value, or one per key)."),
            opt("other", A::kCallable, "null", "Custom activation callable; not supported (must be null)."),
            allow_missing()});
  add_dict(r, "AsDiscreted", "argmax, one-hot and thresholding.", I,
           {keys(), opt("argmax", A::kBools, "false", "Take the argmax over the channels (one value, or one per key)."),
            opt("to_onehot", A::kAny, "null", "Number of classes (or true with n_classes)."),
            opt("threshold", A::kFloats, "null", "Binarise at this value (x >= threshold); null: no thresholding."),
            opt("rounding", A::kStrings, "null", "torchrounding rounds the values to integers; null: no rounding."),
            allow_missing(),
            opt("n_classes", A::kInts, "null", "Deprecated: number of classes for to_onehot=true."),
            opt("num_classes", A::kInts, "null", "Deprecated alias of n_classes."),
            opt("threshold_values", A::kBools, "false", "Deprecated: use threshold."),
            opt("logit_thresh", A::kFloats, "0.5", "Deprecated: the threshold value.")});
  add_dict(r, "KeepLargestConnectedComponentd", "Keeps the largest connected component(s).", I,
           {keys(), opt("applied_labels", A::kInts, "null", "Labels to process; null: every non-zero label present."),
            opt("is_onehot", A::kBool, "null",
                "Whether the input is one-hot; null: one-hot when it has more than one channel."),
            opt("independent", A::kBool, "true",
                "Treat each label separately (true) or their union as one foreground (false)."),
            opt("connectivity", A::kInt, "null",
                "Neighbourhood: 1 (faces) up to the number of spatial dims (full); null: full."),
            opt("num_components", A::kInt, "1", "Number of largest components to keep."), allow_missing()});
  add_dict(r, "FillHolesd", "Fills holes in labels.", I,
           {keys(), opt("applied_labels", A::kInts, "null",
                        "Labels whose holes are filled; null: every label present."),
            opt("connectivity", A::kInt, "null",
                "Neighbourhood: 1 (faces) up to the number of spatial dims (full); null: full."),
            allow_missing()});
  add_dict(r, "Invertd", "Undoes the spatial transforms of `transform` so predictions land on the original grid.", I,
           {keys(), req("transform", A::kReference, "The pre-transforms to invert (\"@pre_transforms\")."),
            opt("orig_keys", A::kStrings, "null",
                "Keys whose recorded transforms are undone, one per key; null: the keys themselves."),
            meta_keys(), opt("orig_meta_keys", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
            meta_postfix(),
            opt("nearest_interp", A::kBools, "true",
                "Invert with nearest-neighbour interpolation (one value, or one per key)."),
            opt("to_tensor", A::kBools, "true",
                "Accepted for MONAI compatibility; ignored (outputs are always tensors)."),
            opt("device", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
            opt("post_func", A::kAny, "null", "Accepted for MONAI compatibility; ignored."), allow_missing()});
  add_dict(r, "SaveImaged", "Writes images (NIfTI by default) with their affine.", I,
           {keys(), meta_keys(), meta_postfix(),
            opt("output_dir", A::kString, "\"./\"", "Output directory (relative to the MMAR root)."),
            opt("output_postfix", A::kString, "\"trans\"",
                "Appended to the file name stem after an underscore; empty: none."),
            opt("output_ext", A::kString, "\".nii.gz\"",
                "Extension, which selects the format: .nii.gz, .nii, .mha, .mhd, .nrrd or .nhdr."),
            opt("resample", A::kBool, "true",
                "Resample back to the original grid (shape and affine as loaded) before writing."),
            opt("mode", A::kString, "\"nearest\"", "Interpolation of that resampling."),
            opt("padding_mode", A::kString, "\"border\"", "Padding of that resampling."),
            opt("scale", A::kInt, "null", "Accepted for MONAI compatibility; ignored."), dtype("\"float64\""),
            opt("output_dtype", A::kString, "\"float32\"", "Element type written; null keeps the data's type."),
            allow_missing(), opt("squeeze_end_dims", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
            opt("data_root_dir", A::kString, "\"\"", "Accepted for MONAI compatibility; ignored."),
            opt("separate_folder", A::kBool, "true", "Write each image into a subfolder named after its file stem."),
            opt("print_log", A::kBool, "true", "Log the path of each saved file."),
            opt("output_format", A::kString, "\"\"",
                "Accepted for MONAI compatibility; ignored (output_ext selects the format)."),
            opt("writer", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
            opt("savepath_in_metadict", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")});
}

std::vector<ArgSpec> dice_args() {
  return {opt("include_background", A::kBool, "true",
              "Include channel 0 (background); ignored when the input has one channel."),
          opt("to_onehot_y", A::kBool, "false",
              "One-hot encode the label to the input's channel count (not for one channel)."),
          opt("sigmoid", A::kBool, "false", "Apply a sigmoid to the input first."),
          opt("softmax", A::kBool, "false",
              "Apply a softmax over the channels to the input first (not for one channel)."),
          opt("other_act", A::kCallable, "null", "Custom activation callable; not supported (must be null)."),
          opt("squared_pred", A::kBool, "false", "Use squared input and label in the denominator."),
          opt("jaccard", A::kBool, "false", "Compute the Jaccard (IoU) form instead of Dice."),
          opt("reduction", A::kString, "\"mean\"", "Reduction over batch and classes: mean, sum or none."),
          opt("smooth_nr", A::kFloat, "1e-05", "Constant added to the numerator."),
          opt("smooth_dr", A::kFloat, "1e-05", "Constant added to the denominator (avoids division by zero)."),
          opt("batch", A::kBool, "false",
              "Sum over the batch before dividing (one value per class, not per sample and class)."),
          opt("weight", A::kFloats, "null",
              "Class weights: one value or one per class (DiceCE and DiceFocal weight both terms)."),
          opt("soft_label", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")};
}

void losses(RegistryBase& r) {
  const char* I = kModels;
  add(r, "DiceLoss", "1 - Dice (MONAI's definition).", I, dice_args());
  add(r, "MaskedDiceLoss", "DiceLoss inside a mask.", I, dice_args());
  add(r, "GeneralizedDiceLoss", "Generalised Dice with class weights.", I,
      {opt("include_background", A::kBool, "true",
           "Include channel 0 (background); ignored when the input has one channel."),
       opt("to_onehot_y", A::kBool, "false",
           "One-hot encode the label to the input's channel count (not for one channel)."),
       opt("sigmoid", A::kBool, "false", "Apply a sigmoid to the input first."),
       opt("softmax", A::kBool, "false", "Apply a softmax over the channels to the input first (not for one channel)."),
       opt("other_act", A::kCallable, "null", "Custom activation callable; not supported (must be null)."),
       opt("w_type", A::kString, "\"square\"",
           "Class weights from the label volume: square (1/vol^2), simple (1/vol) or uniform."),
       opt("reduction", A::kString, "\"mean\"", "Reduction over batch and classes: mean, sum or none."),
       opt("smooth_nr", A::kFloat, "1e-05", "Constant added to the numerator."),
       opt("smooth_dr", A::kFloat, "1e-05", "Constant added to the denominator (avoids division by zero)."),
       opt("batch", A::kBool, "false",
           "Sum over the batch before dividing (one value per class, not per sample and class)."),
       opt("soft_label", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")});
  add(r, "FocalLoss", "Focal loss (sigmoid or softmax form).", I,
      {opt("include_background", A::kBool, "true",
           "Include channel 0 (background); ignored when the input has one channel."),
       opt("to_onehot_y", A::kBool, "false",
           "One-hot encode the label to the input's channel count (not for one channel)."),
       opt("gamma", A::kFloat, "2.0", "Focusing exponent: down-weights well-classified voxels."),
       opt("alpha", A::kFloat, "null", "Balance factor: alpha for foreground, 1 - alpha for background; null: none."),
       opt("weight", A::kFloats, "null", "Class weights: one value or one per class."),
       opt("reduction", A::kString, "\"mean\"", "mean, sum (mean over space, then sum) or none."),
       opt("use_softmax", A::kBool, "false",
           "Softmax (multi-class) form on the logits instead of a sigmoid per channel.")});
  auto dfl = dice_args();
  dfl.push_back(opt("gamma", A::kFloat, "2.0", "Focusing exponent of the focal term."));
  dfl.push_back(opt("lambda_dice", A::kFloat, "1.0", "Weight of the Dice term."));
  dfl.push_back(opt("lambda_focal", A::kFloat, "1.0", "Weight of the focal term."));
  dfl.push_back(opt("alpha", A::kFloat, "null",
                    "Balance factor of the focal term: alpha for foreground, 1 - alpha for background."));
  dfl.push_back(opt("use_softmax", A::kBool, "false", "Softmax form of the focal term."));
  add(r, "DiceFocalLoss", "lambda_dice * Dice + lambda_focal * Focal.", I, dfl);
  auto dce = dice_args();
  dce.push_back(opt("lambda_dice", A::kFloat, "1.0", "Weight of the Dice term."));
  dce.push_back(opt("lambda_ce", A::kFloat, "1.0",
                    "Weight of the cross-entropy term (binary cross-entropy for one channel)."));
  dce.push_back(opt("label_smoothing", A::kFloat, "0.0",
                    "Label smoothing of the cross-entropy term (multi-channel inputs)."));
  dce.push_back(opt("ce_weight", A::kFloats, "null",
                    "Deprecated alias of weight: class weights, used when weight is null."));
  add(r, "DiceCELoss", "lambda_dice * Dice + lambda_ce * cross-entropy.", I, dce);
  add(r, "TverskyLoss", "Tversky loss (alpha weights FP, beta FN).", I,
      {opt("include_background", A::kBool, "true",
           "Include channel 0 (background); ignored when the input has one channel."),
       opt("to_onehot_y", A::kBool, "false",
           "One-hot encode the label to the input's channel count (not for one channel)."),
       opt("sigmoid", A::kBool, "false", "Apply a sigmoid to the input first."),
       opt("softmax", A::kBool, "false", "Apply a softmax over the channels to the input first (not for one channel)."),
       opt("other_act", A::kCallable, "null", "Custom activation callable; not supported (must be null)."),
       opt("alpha", A::kFloat, "0.5", "Weight of the false positives."),
       opt("beta", A::kFloat, "0.5", "Weight of the false negatives."),
       opt("reduction", A::kString, "\"mean\"", "Reduction over batch and classes: mean, sum or none."),
       opt("smooth_nr", A::kFloat, "1e-05", "Constant added to the numerator."),
       opt("smooth_dr", A::kFloat, "1e-05", "Constant added to the denominator (avoids division by zero)."),
       opt("batch", A::kBool, "false",
           "Sum over the batch before dividing (one value per class, not per sample and class)."),
       opt("soft_label", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")});
  add(r, "CrossEntropyLoss", "torch.nn.CrossEntropyLoss.", I,
      {opt("weight", A::kFloats, "null", "Class weights, one per class."),
       opt("ignore_index", A::kInt, "-100", "Target value that does not contribute to the loss."),
       opt("reduction", A::kString, "\"mean\"", "mean, sum or none."),
       opt("label_smoothing", A::kFloat, "0.0", "Label smoothing amount in [0, 1].")});
  add(r, "BCEWithLogitsLoss", "torch.nn.BCEWithLogitsLoss.", I,
      {opt("weight", A::kFloats, "null", "Weight per channel."),
       opt("reduction", A::kString, "\"mean\"", "mean, sum or none."),
       opt("pos_weight", A::kFloats, "null", "Weight of the positive examples, per channel.")});
  add(r, "DeepSupervisionLoss", "Weighted sum of a loss over deep-supervision heads.", I,
      {req("loss", A::kAny, "The wrapped loss component."),
       opt("weight_mode", A::kString, "\"exp\"",
           "Head weights without weights: same (all 1), exp (0.5^level, min 1/16) or two (1, then 0.5)."),
       opt("weights", A::kFloats, "null",
           "Explicit weight per head, used when it covers every head; otherwise weight_mode.")});
}

void networks(RegistryBase& r) {
  const char* I = kModels;
  auto dims = [] {
    return std::vector<ArgSpec>{opt("spatial_dims", A::kInt, "3", "2 or 3."),
                                opt("dimensions", A::kInt, "null", "Clara 4.x / old MONAI name of spatial_dims.")};
  };
  auto unet = dims();
  for (auto a : {req("in_channels", A::kInt, "Input channels."),
                 req("out_channels", A::kInt, "Output channels (classes)."),
                 req("channels", A::kInts, "Channels per level."), req("strides", A::kInts, "Stride per down level."),
                 opt("kernel_size", A::kInts, "3", "Convolution kernel size (isotropic)."),
                 opt("up_kernel_size", A::kInts, "3", "Up-sampling convolution kernel size (isotropic)."),
                 opt("num_res_units", A::kInt, "0", "Residual units per level; 0: plain convolutions."),
                 opt("act", A::kAny, "\"PRELU\"", "Activation: a name or [name, {args}]."),
                 opt("norm", A::kAny, "\"INSTANCE\"", "batch, instance or group."),
                 opt("dropout", A::kFloat, "0.0", "Dropout probability."),
                 opt("bias", A::kBool, "true", "Use a bias in the convolutions."),
                 opt("adn_ordering", A::kString, "\"NDA\"",
                     "Order of activation (A), dropout (D) and normalisation (N) after a convolution.")})
    unet.push_back(a);
  add(r, "UNet", "MONAI's residual UNet; state_dict keys match MONAI's.", I, unet);
  auto basic = dims();
  for (auto a : {opt("in_channels", A::kInt, "1", "Input channels."),
                 opt("out_channels", A::kInt, "2", "Output channels (classes)."),
                 opt("features", A::kInts, "[32, 32, 64, 128, 256, 32]",
                     "Six channel counts: the five encoder levels and the last decoder level."),
                 opt("act", A::kAny, "[\"LeakyReLU\", {\"negative_slope\": 0.1, \"inplace\": true}]",
                     "Activation: a name or [name, {args}]; null: none."),
                 opt("norm", A::kAny, "[\"instance\", {\"affine\": true}]",
                     "Normalisation: a name or [name, {args}]; null: none."),
                 opt("bias", A::kBool, "true", "Use a bias in the convolutions."),
                 opt("dropout", A::kFloat, "0.0", "Dropout probability; null: no dropout layer."),
                 opt("upsample", A::kString, "\"deconv\"",
                     "Up-sampling: deconv or nontrainable (pixelshuffle is not supported).")})
    basic.push_back(a);
  add(r, "BasicUNet", "MONAI's BasicUNet.", I, basic);
  r.add_alias("BasicUnet", "BasicUNet");
  r.add_alias("Basicunet", "BasicUNet");
  auto seg = dims();
  for (auto a : {opt("init_filters", A::kInt, "8", "Channels of the first level, doubled at each level down."),
                 opt("in_channels", A::kInt, "1", "Input channels."),
                 opt("out_channels", A::kInt, "2", "Output channels (classes)."),
                 opt("dropout_prob", A::kFloat, "null",
                     "Dropout probability after the initial convolution; null: none."),
                 opt("act", A::kAny, "[\"RELU\", {\"inplace\": true}]", "Activation: a name or [name, {args}]."),
                 opt("norm", A::kAny, "[\"GROUP\", {\"num_groups\": 8}]", "Normalisation: a name or [name, {args}]."),
                 opt("norm_name", A::kString, "\"\"",
                     "Deprecated: only group, which replaces norm with num_groups groups."),
                 opt("num_groups", A::kInt, "8", "Deprecated: group count used with norm_name."),
                 opt("use_conv_final", A::kBool, "true", "End with a 1x1 convolution to out_channels."),
                 opt("blocks_down", A::kInts, "[1, 2, 2, 4]", "Residual blocks per encoder level."),
                 opt("blocks_up", A::kInts, "[1, 1, 1]", "Residual blocks per decoder level."),
                 opt("upsample_mode", A::kString, "\"nontrainable\"",
                     "Up-sampling: deconv or nontrainable (pixelshuffle is not supported).")})
    seg.push_back(a);
  add(r, "SegResNet", "MONAI's SegResNet.", I, seg);
  auto dyn = dims();
  for (auto a : {req("in_channels", A::kInt, "Input channels."),
                 req("out_channels", A::kInt, "Output channels (classes)."),
                 req("kernel_size", A::kAny, "Kernel per level: an int or spatial_dims ints each."),
                 req("strides", A::kAny,
                     "Stride per level (the first is the input block's): an int or spatial_dims ints each."),
                 req("upsample_kernel_size", A::kAny,
                     "Transposed-convolution kernel per up level (the last len(strides) - 1 are used)."),
                 opt("filters", A::kInts, "null",
                     "Channels per level; null: 32 * 2^level, at most 320 (3D) or 512 (2D)."),
                 opt("dropout", A::kFloat, "null", "Dropout probability; null: none."),
                 opt("norm_name", A::kAny, "[\"INSTANCE\", {\"affine\": true}]",
                     "Normalisation: a name or [name, {args}]."),
                 opt("act_name", A::kAny, "[\"leakyrelu\", {\"inplace\": true, \"negative_slope\": 0.01}]",
                     "Activation: a name or [name, {args}]."),
                 opt("deep_supervision", A::kBool, "false",
                     "Add output heads on upper decoder levels for deep supervision in training."),
                 opt("deep_supr_num", A::kInt, "1",
                     "Number of extra deep-supervision heads (fewer than the up levels)."),
                 opt("res_block", A::kBool, "false", "Use residual blocks instead of plain convolution blocks."),
                 opt("trans_bias", A::kBool, "false", "Use a bias in the transposed convolutions.")})
    dyn.push_back(a);
  add(r, "DynUNet", "nnU-Net style dynamic UNet with deep supervision.", I, dyn);
  auto att = dims();
  for (auto a : {req("in_channels", A::kInt, "Input channels."),
                 req("out_channels", A::kInt, "Output channels (classes)."),
                 req("channels", A::kInts, "Channels per level."),
                 req("strides", A::kInts, "Stride per down level (isotropic)."),
                 opt("kernel_size", A::kInts, "3", "Convolution kernel size (odd, isotropic)."),
                 opt("up_kernel_size", A::kInts, "3", "Up-sampling convolution kernel size (odd, isotropic)."),
                 opt("dropout", A::kFloat, "0.0", "Dropout probability; null: no dropout layer.")})
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
      {params(), groups(), opt("lr", A::kFloat, "0.001", "Learning rate."),
       opt("betas", A::kFloats, "[0.9, 0.999]",
           "Decay rates of the running averages of the gradient and of its square."),
       opt("eps", A::kFloat, "1e-08", "Added to the denominator for numerical stability."),
       opt("weight_decay", A::kFloat, "0", "L2 penalty added to the gradient."),
       opt("amsgrad", A::kBool, "false", "Use the AMSGrad variant (maximum of past squared-gradient averages).")});
  add(r, "AdamW", "torch.optim.AdamW.", I,
      {params(), groups(), opt("lr", A::kFloat, "0.001", "Learning rate."),
       opt("betas", A::kFloats, "[0.9, 0.999]",
           "Decay rates of the running averages of the gradient and of its square."),
       opt("eps", A::kFloat, "1e-08", "Added to the denominator for numerical stability."),
       opt("weight_decay", A::kFloat, "0.01", "Decoupled weight decay."),
       opt("amsgrad", A::kBool, "false", "Use the AMSGrad variant (maximum of past squared-gradient averages).")});
  add(r, "SGD", "torch.optim.SGD.", I,
      {params(), groups(), req("lr", A::kFloat, "Learning rate."), opt("momentum", A::kFloat, "0", "Momentum factor."),
       opt("dampening", A::kFloat, "0", "Dampening of the momentum."),
       opt("weight_decay", A::kFloat, "0", "L2 penalty added to the gradient."),
       opt("nesterov", A::kBool, "false", "Use Nesterov momentum (needs momentum > 0 and dampening 0).")});
  add(r, "Novograd", "MONAI's Novograd.", I,
      {params(), groups(), opt("lr", A::kFloat, "0.001", "Learning rate."),
       opt("betas", A::kFloats, "[0.9, 0.98]",
           "Decay rates of the gradient average and of the per-tensor squared-norm average."),
       opt("eps", A::kFloat, "1e-08", "Added to the denominator for numerical stability."),
       opt("weight_decay", A::kFloat, "0", "Weight decay added to the normalised gradient."),
       opt("grad_averaging", A::kBool, "false", "Scale the normalised gradient by 1 - beta1 before the first moment."),
       opt("amsgrad", A::kBool, "false", "Use the maximum of past squared-norm averages (AMSGrad variant).")});
}

void schedulers(RegistryBase& r) {
  const char* I = kModels;
  auto optim = [] { return opt("optimizer", A::kReference, "\"@optimizer\"", "The optimizer to schedule."); };
  auto last = [] {
    return opt("last_epoch", A::kInt, "-1",
               "Accepted for MONAI compatibility; ignored (a resumed run restores the step from its checkpoint).");
  };
  add(r, "StepLR", "Decays by gamma every step_size steps.", I,
      {optim(), req("step_size", A::kInt, "Steps between decays."),
       opt("gamma", A::kFloat, "0.1", "Multiplicative decay factor."), last()});
  add(r, "MultiStepLR", "Decays by gamma at each milestone.", I,
      {optim(), req("milestones", A::kInts, "Steps at which the learning rate is multiplied by gamma."),
       opt("gamma", A::kFloat, "0.1", "Multiplicative decay factor."), last()});
  add(r, "ExponentialLR", "Decays by gamma every step.", I,
      {optim(), req("gamma", A::kFloat, "Multiplicative decay factor applied at every step."), last()});
  add(r, "CosineAnnealingLR", "Cosine annealing to eta_min over T_max steps.", I,
      {optim(), req("T_max", A::kInt, "Steps of a half cosine period."),
       opt("eta_min", A::kFloat, "0", "Minimum learning rate."), last()});
  add(r, "WarmupCosineSchedule", "MONAI's linear warmup then cosine decay.", I,
      {optim(), req("warmup_steps", A::kInt, "Steps of linear warmup."),
       req("t_total", A::kInt, "Total steps of the schedule."),
       opt("end_lr", A::kFloat, "0.0", "Lower bound on the learning rate after the warmup."),
       opt("cycles", A::kFloat, "0.5", "Cosine cycles over the decay (0.5: one half cosine down to 0)."), last(),
       opt("warmup_multiplier", A::kFloat, "0", "Fraction of the learning rate the warmup starts from.")});
  add(r, "PolynomialLR", "nnU-Net's poly decay: lr * (1 - step/total_iters)^power.", I,
      {optim(), opt("total_iters", A::kInt, "5", "Steps over which the learning rate decays to 0."),
       opt("power", A::kFloat, "1.0", "Exponent of the decay."), last()});
  add(r, "LinearLR", "Linear warmup factor from start_factor to end_factor.", I,
      {optim(), opt("start_factor", A::kFloat, "0.3333333333333333", "Learning-rate factor at step 0."),
       opt("end_factor", A::kFloat, "1.0", "Learning-rate factor reached at total_iters and kept after."),
       opt("total_iters", A::kInt, "5", "Steps from start_factor to end_factor."), last()});
  add(r, "ReduceLROnPlateau", "Reduces the LR when a metric stops improving.", I,
      {optim(), opt("mode", A::kString, "\"min\"", "min: the metric should decrease; max: it should increase."),
       opt("factor", A::kFloat, "0.1", "Multiplier applied to the learning rate on a plateau (below 1)."),
       opt("patience", A::kInt, "10",
           "Steps (epochs by default) without improvement before the learning rate is reduced."),
       opt("threshold", A::kFloat, "0.0001", "Smallest change that counts as an improvement."),
       opt("threshold_mode", A::kString, "\"rel\"", "rel: the change is relative to the best value; abs: absolute."),
       opt("cooldown", A::kInt, "0", "Steps to wait after a reduction before counting bad steps again."),
       opt("min_lr", A::kFloats, "0", "Lower bound on the learning rate (a number; a per-group list is ignored)."),
       opt("eps", A::kFloat, "1e-08", "Reductions smaller than this are skipped.")});
}

void datasets(RegistryBase& r) {
  const char* I = kPipeline;
  auto transform = [] { return opt("transform", A::kReference, "\"@pre_transforms\"", "The transform chain."); };
  add(r, "Dataset", "Runs the whole chain on every access.", I, {transform()});
  add(r, "CacheDataset", "Caches the deterministic prefix of the chain in memory.", I,
      {transform(), opt("cache_num", A::kInt, "9223372036854775807", "Maximum number of items to cache."),
       opt("cache_rate", A::kFloat, "1.0", "Fraction of the items to cache (the smaller of the two limits applies)."),
       opt("num_workers", A::kInt, "1", "Threads that fill the cache."),
       opt("progress", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("copy_cache", A::kBool, "true",
           "Hand out copies of cached samples (consulted when the chain has no random transform)."),
       opt("as_contiguous", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("hash_as_key", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("runtime_cache", A::kAny, "false", "Accepted for MONAI compatibility; ignored.")});
  add(r, "SmartCacheDataset", "Caches a subset and replaces part of it in the background each epoch.", I,
      {transform(), opt("replace_rate", A::kFloat, "0.1", "Fraction of the cache window replaced at each epoch."),
       opt("cache_num", A::kInt, "9223372036854775807", "Maximum number of items in the cache window."),
       opt("cache_rate", A::kFloat, "1.0", "Fraction of the items in the cache window (the smaller limit applies)."),
       opt("num_init_workers", A::kInt, "1", "Threads that fill the initial cache window."),
       opt("num_replace_workers", A::kInt, "1", "Threads that prepare the replacement items."),
       opt("progress", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("shuffle", A::kBool, "true", "Shuffle the item order once before caching (seeded by seed)."),
       opt("seed", A::kInt, "0", "Seed of that shuffle."),
       opt("copy_cache", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("as_contiguous", A::kBool, "true", "Accepted for MONAI compatibility; ignored.")});
  add(r, "PersistentDataset", "Caches the deterministic prefix on disk, keyed by chain and file.", I,
      {transform(), req("cache_dir", A::kString, "Directory of the on-disk cache (relative to the MMAR root)."),
       opt("hash_func", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("pickle_module", A::kString, "\"pickle\"", "Accepted for MONAI compatibility; ignored."),
       opt("pickle_protocol", A::kInt, "2", "Accepted for MONAI compatibility; ignored."),
       opt("hash_transform", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("reset_ops_id", A::kBool, "true", "Accepted for MONAI compatibility; ignored.")});
}

void dataloaders(RegistryBase& r) {
  const char* I = kPipeline;
  std::vector<ArgSpec> common = {
      opt("dataset", A::kReference, "\"@dataset\"", "The dataset to load."),
      opt("batch_size", A::kInt, "1", "Dataset items per batch (each may yield num_samples patches)."),
      opt("shuffle", A::kBool, "false", "Reshuffle the order at every epoch (seeded)."),
      opt("num_workers", A::kInt, "0", "Worker threads."),
      opt("drop_last", A::kBool, "false", "Drop an incomplete last batch."),
      opt("pin_memory", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
      opt("collate_fn", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
      opt("prefetch_factor", A::kInt, "2", "Batches prepared ahead per worker."),
      opt("persistent_workers", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
      opt("sampler", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
      opt("timeout", A::kFloat, "0", "Accepted for MONAI compatibility; ignored.")};
  add(r, "DataLoader", "Batches samples with worker threads.", I, common);
  auto thread = common;
  thread.push_back(opt("buffer_size", A::kInt, "1", "Accepted for MONAI compatibility; ignored."));
  thread.push_back(opt("buffer_timeout", A::kFloat, "0.01", "Accepted for MONAI compatibility; ignored."));
  thread.push_back(opt("repeats", A::kInt, "1", "Accepted for MONAI compatibility; ignored."));
  thread.push_back(opt("use_thread_workers", A::kBool, "false", "Accepted for MONAI compatibility; ignored."));
  add(r, "ThreadDataLoader", "DataLoader with a background prefetch thread.", I, thread);
}

void inferers(RegistryBase& r) {
  const char* I = kModels;
  add(r, "SimpleInferer", "Runs the network on the whole input.", I, {});
  add(r, "SlidingWindowInferer", "Patch-wise inference with overlap and blending.", I,
      {req("roi_size", A::kInts, "Window size per spatial axis; a non-positive entry uses the input's size."),
       opt("sw_batch_size", A::kInt, "1", "Windows run through the network per forward pass."),
       opt("overlap", A::kFloats, "0.25",
           "Overlap of neighbouring windows as a fraction of the window, one value or per axis."),
       opt("mode", A::kString, "\"constant\"", "constant or gaussian."),
       opt("sigma_scale", A::kFloats, "0.125",
           "Gaussian sigma as a fraction of the window size (mode gaussian), one or per axis."),
       opt("padding_mode", A::kString, "\"constant\"",
           "Padding of inputs smaller than the window: constant, reflect, replicate or circular."),
       opt("cval", A::kFloat, "0.0", "Fill value of constant padding."),
       opt("sw_device", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("progress", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("cache_roi_weight_map", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("cpu_thresh", A::kInt, "null", "Accepted for MONAI compatibility; ignored."),
       opt("buffer_steps", A::kInt, "null", "Accepted for MONAI compatibility; ignored."),
       opt("buffer_dim", A::kInt, "-1", "Accepted for MONAI compatibility; ignored."),
       opt("with_coord", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("tta_flips", A::kBool, "false", "Barton: also predict on flipped inputs and average (test-time augmentation).")});
}

void metrics(RegistryBase& r) {
  const char* I = kModels;
  auto details = [] {
    return opt("save_details", A::kBool, "true",
               "Accepted for MONAI compatibility; ignored (per-case values are always kept).");
  };
  auto red = [] {
    return opt("reduction", A::kString, "\"mean\"",
               "Reduction of per-case, per-class values: mean or sum (none gives the mean); NaNs skipped.");
  };
  add(r, "MeanDice", "Mean Dice over classes and cases (handler form of DiceMetric).", I,
      {opt("include_background", A::kBool, "true", "Include channel 0 (background) in the score."), red(),
       output_transform(), details(),
       opt("num_classes", A::kInt, "null", "Accepted for MONAI compatibility; ignored."),
       opt("ignore_empty", A::kBool, "true",
           "Cases with an empty ground truth give NaN (skipped) instead of 1 or 0.")});
  add(r, "DiceMetric", "Dice per case and class.", I,
      {opt("include_background", A::kBool, "true", "Include channel 0 (background) in the score."), red(),
       opt("get_not_nans", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("ignore_empty", A::kBool, "true", "Cases with an empty ground truth give NaN (skipped) instead of 1 or 0."),
       opt("num_classes", A::kInt, "null", "Accepted for MONAI compatibility; ignored.")});
  add(r, "Accuracy", "Voxel accuracy (ignite Accuracy as Clara configs use it).", I,
      {output_transform(), opt("is_multilabel", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored.")});
  add(r, "HausdorffDistance", "Hausdorff distance in mm (percentile 95 for HD95).", I,
      {opt("include_background", A::kBool, "false", "Include channel 0 (background) in the score."),
       opt("distance_metric", A::kString, "\"euclidean\"",
           "Accepted for MONAI compatibility; ignored (distances are Euclidean, in mm)."),
       opt("percentile", A::kFloat, "null",
           "Percentile of the surface distances instead of their maximum (95 for HD95)."),
       opt("directed", A::kBool, "false",
           "Only prediction-to-label distances instead of the larger of both directions."),
       red(), output_transform(), details()});
  add(r, "SurfaceDistance", "Mean surface distance in mm.", I,
      {opt("include_background", A::kBool, "false", "Include channel 0 (background) in the score."),
       opt("symmetric", A::kBool, "false",
           "Average the distances in both directions instead of prediction to label only."),
       opt("distance_metric", A::kString, "\"euclidean\"",
           "Accepted for MONAI compatibility; ignored (distances are Euclidean, in mm)."),
       red(), output_transform(), details()});
  add(r, "SurfaceDice", "Normalised surface Dice at a tolerance in mm.", I,
      {req("class_thresholds", A::kFloats, "Tolerance in mm for each scored class."),
       opt("include_background", A::kBool, "false", "Include channel 0 (background) in the score."),
       opt("distance_metric", A::kString, "\"euclidean\"",
           "Accepted for MONAI compatibility; ignored (distances are Euclidean, in mm)."),
       red(), output_transform(), details()});
  add(r, "ConfusionMatrix", "Sensitivity, specificity, precision, F1 and friends.", I,
      {opt("include_background", A::kBool, "true", "Include channel 0 (background) in the counts."),
       opt("metric_name", A::kStrings, "\"hit_rate\"",
           "Measure to report (sensitivity, precision, f1_score, ...); only a list's first is used."),
       opt("compute_sample", A::kBool, "false", "Accepted for MONAI compatibility; ignored."), red(),
       output_transform(), details()});
}

void handlers(RegistryBase& r) {
  const char* I = kEngine;
  add(r, "CheckpointLoader", "Loads a checkpoint into components before the run.", I,
      {req("load_path", A::kString, "Checkpoint file (relative to the MMAR root)."),
       req("load_dict", A::kAny, "{\"model\": \"@model\"} or [\"model\"]."),
       opt("name", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("map_location", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("strict", A::kBool, "true", "Require the checkpoint's keys to match the network's exactly."),
       opt("strict_shape", A::kBool, "true",
           "Accepted for MONAI compatibility; ignored (shape mismatches are always errors).")});
  add(r, "CheckpointSaver", "Saves checkpoints: best key metric, final, every N epochs.", I,
      {req("save_dir", A::kString, "Directory of the checkpoints (relative to the MMAR root)."),
       req("save_dict", A::kAny,
           "What to save (an object or a list of names): must include model, may include optimizer."),
       opt("name", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("file_prefix", A::kString, "\"\"",
           "Prefix of the generated file names (an underscore is appended); the default model.pt has none."),
       opt("save_final", A::kBool, "false", "Save a final checkpoint when training completes."),
       opt("final_filename", A::kString, "null",
           "File name of the final checkpoint; null: model_final.pt after the prefix."),
       opt("save_key_metric", A::kBool, "false", "Save a checkpoint whenever the key metric reaches a new best."),
       opt("key_metric_name", A::kString, "null",
           "Accepted for MONAI compatibility; ignored (the evaluator's key metric is used)."),
       opt("key_metric_n_saved", A::kInt, "1",
           "Best checkpoints to keep: 1 writes model.pt, more write key_metric=VALUE.pt files."),
       opt("key_metric_filename", A::kString, "null",
           "File name of the best checkpoint; null: model.pt or key_metric=VALUE.pt."),
       opt("key_metric_save_state", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("key_metric_greater_or_equal", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("key_metric_negative_sign", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("epoch_level", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("save_interval", A::kInt, "0", "Also save checkpoint_epoch=N.pt every N epochs; 0 disables."),
       opt("n_saved", A::kInt, "null", "Interval checkpoints to keep; null keeps all.")});
  add(r, "StatsHandler", "Console progress: loss, metrics, lr, speed.", I,
      {opt("iteration_log", A::kAny, "true",
           "Log every training iteration (true), none (false) or every N (int); BARTON_LOG_EVERY overrides."),
       opt("epoch_log", A::kAny, "true", "Log a summary line after each epoch (true or false)."),
       opt("epoch_print_logger", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("iteration_print_logger", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       output_transform(),
       opt("global_epoch_transform", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("state_attributes", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
       opt("name", A::kString, "\"StatsHandler\"", "Accepted for MONAI compatibility; ignored."),
       opt("tag_name", A::kString, "\"Loss\"", "Label of the loss in the log lines."),
       opt("key_var_format", A::kString, "\"{}: {:.4f} \"", "Accepted for MONAI compatibility; ignored.")});
  add(r, "TensorBoardStatsHandler", "Writes TensorBoard event files.", I,
      {opt("summary_writer", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("log_dir", A::kString, "\"./runs\"", "Event-file directory (relative to the MMAR root)."),
       opt("iteration_log", A::kAny, "true", "Accepted for MONAI compatibility; ignored (see iteration_interval)."),
       opt("epoch_log", A::kAny, "true", "Accepted for MONAI compatibility; ignored (see epoch_interval)."),
       opt("epoch_event_writer", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("epoch_interval", A::kInt, "1", "Write the epoch scalars (metrics, lr, system) every N epochs."),
       opt("iteration_event_writer", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("iteration_interval", A::kInt, "1", "Write the training loss every N iterations."),
       output_transform(),
       opt("global_epoch_transform", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("state_attributes", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
       opt("tag_name", A::kString, "\"Loss\"", "Tag of the loss scalar.")});
  add(r, "TensorBoardImageHandler", "Writes image slices to TensorBoard.", I,
      {opt("log_dir", A::kString, "\"./runs\"", "Event-file directory (relative to the MMAR root)."),
       opt("interval", A::kInt, "1", "Write an image, label and prediction slice every N epochs."),
       opt("epoch_level", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("batch_transform", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       output_transform(), opt("index", A::kInt, "0", "Accepted for MONAI compatibility; ignored."),
       opt("max_channels", A::kInt, "1", "Accepted for MONAI compatibility; ignored."),
       opt("frame_dim", A::kInt, "-3", "Accepted for MONAI compatibility; ignored."),
       opt("max_frames", A::kInt, "64", "Accepted for MONAI compatibility; ignored.")});
  add(r, "ValidationHandler", "Runs the evaluator every `interval` epochs.", I,
      {req("interval", A::kInt, "Validate every N training epochs."),
       opt("validator", A::kReference, "\"@evaluator\"", "The evaluator to run."),
       opt("epoch_level", A::kBool, "true", "Must be true: validation runs between epochs only."),
       opt("exec_at_start", A::kBool, "false", "Also validate once before training starts.")});
  add(r, "LrScheduleHandler", "Steps the LR scheduler per epoch or iteration.", I,
      {opt("lr_scheduler", A::kReference, "\"@lr_scheduler\"", "The scheduler to step."),
       opt("print_lr", A::kBool, "true", "Log the learning rate after each epoch step."),
       opt("name", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("epoch_level", A::kBool, "true", "Step once per epoch (true) or once per iteration (false)."),
       opt("step_transform", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (epoch steps get the key metric, else the loss).")});
  add(r, "MetricsSaver", "Writes metrics.csv, <metric>_raw.csv and summaries.", I,
      {req("save_dir", A::kString, "Output directory (relative to the MMAR root)."),
       opt("metrics", A::kStrings, "\"*\"", "Metrics written to metrics.csv; * for all."),
       opt("metric_details", A::kStrings, "null",
           "Metrics whose per-case values go to NAME_raw.csv and NAME_summary.csv; * for all."),
       opt("batch_transform", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("summary_ops", A::kStrings, "null",
           "Accepted for MONAI compatibility; ignored (every summary statistic is written)."),
       opt("save_rank", A::kInt, "0", "Accepted for MONAI compatibility; ignored (rank 0 writes)."),
       opt("delimiter", A::kString, "\",\"", "Field separator of the CSV files."),
       opt("output_type", A::kString, "\"csv\"", "Accepted for MONAI compatibility; ignored (always csv).")});
  add(r, "EarlyStopHandler", "Stops when the key metric stops improving.", I,
      {req("patience", A::kInt, "Runs of its engine (usually validations) without improvement before training stops."),
       opt("score_function", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (the key metric is the score; higher is better)."),
       opt("trainer", A::kReference, "null",
           "Accepted for MONAI compatibility; ignored (the run that owns the evaluator is stopped)."),
       opt("min_delta", A::kFloat, "0.0", "Smallest increase of the key metric that counts as an improvement."),
       opt("cumulative_delta", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("epoch_level", A::kBool, "true", "Accepted for MONAI compatibility; ignored.")});
  add(r, "SmartCacheHandler", "Drives SmartCacheDataset replacement.", I,
      {opt("smartcacher", A::kReference, "\"@dataset\"",
           "The SmartCacheDataset (checked only: the dataset replaces its items itself).")});
  add(r, "SegmentationSaver", "Writes segmentations (older MONAI handler).", I,
      {opt("output_dir", A::kString, "\"./\"", "Directory to write the segmentations to."),
       opt("output_postfix", A::kString, "\"seg\"", "Postfix added to each output file name."),
       opt("output_ext", A::kString, "\".nii.gz\"", "Output file extension (format)."),
       opt("resample", A::kBool, "true", "Resample back to the original spatial shape and affine."),
       opt("mode", A::kString, "\"nearest\"", "Interpolation of that resampling."),
       opt("padding_mode", A::kString, "\"border\"", "Padding of that resampling."),
       opt("scale", A::kInt, "null", "Scale the values to [0, 255] or [0, 65535] (PNG output); null: unchanged."),
       opt("dtype", A::kString, "\"float64\"", "Precision of the resampling computation."),
       opt("batch_transform", A::kCallable, "null", "Selects the image metadata (file name, affine) from the batch."),
       output_transform(), opt("name", A::kString, "null", "Logger name."),
       opt("images", A::kAny, "null", "DeepGrow form: also write image, label and prediction side by side as a PNG.")});
}

void engines(Registries& r) {
  const char* I = kEngine;
  add(r.trainers, "SupervisedTrainer", "Supervised training loop.", I,
      {opt("device", A::kString, "null",
           "Accepted for MONAI compatibility; ignored (--device or use_gpu picks the device)."),
       req("max_epochs", A::kInt, "Number of training epochs."),
       req("train_data_loader", A::kReference, "The training data loader."),
       req("network", A::kReference, "The network to train."), req("optimizer", A::kReference, "The optimizer."),
       req("loss_function", A::kReference, "The loss."),
       opt("epoch_length", A::kInt, "null",
           "Iterations per epoch; null: one pass over the loader (longer values are capped)."),
       opt("non_blocking", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("prepare_batch", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("iteration_update", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("inferer", A::kReference, "null",
           "Inferer of the training forward pass; null runs the network on the whole batch."),
       opt("postprocessing", A::kReference, "null",
           "Post transforms applied to each prediction before the training metrics."),
       opt("key_train_metric", A::kReference, "null", "Key metric computed on the training predictions."),
       opt("additional_metrics", A::kReference, "null", "Further metrics, computed alongside the key metric."),
       opt("metric_cmp_fn", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (a higher key metric is better)."),
       opt("train_handlers", A::kReference, "null", "Handlers attached to the training loop."),
       opt("amp", A::kBool, "false",
           "Mixed precision on CUDA (autocast forward, dynamic loss scaling); no effect on CPU."),
       opt("event_names", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("event_to_attr", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("decollate", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("optim_set_to_none", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("to_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored."),
       opt("amp_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored."),
       opt("gradient_accumulation", A::kInt, "1", "Barton: optimizer step every N iterations, on the mean of their gradients."),
       opt("clip_grad_norm", A::kFloat, "null", "Barton: clip the global gradient norm to this value.")});
  add(r.evaluators, "SupervisedEvaluator", "Validation / inference loop.", I,
      {opt("device", A::kString, "null",
           "Accepted for MONAI compatibility; ignored (--device or use_gpu picks the device)."),
       req("val_data_loader", A::kReference, "The validation data loader."),
       req("network", A::kReference, "The network to run; Barton always runs the section's model."),
       opt("epoch_length", A::kInt, "null",
           "Iterations per run; null: one pass over the loader (longer values are capped)."),
       opt("non_blocking", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("prepare_batch", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("iteration_update", A::kCallable, "null", "Accepted for MONAI compatibility; ignored."),
       opt("inferer", A::kReference, "null", "Inferer of the forward pass; null: SimpleInferer."),
       opt("postprocessing", A::kReference, "null", "Post transforms applied to each prediction before the metrics."),
       opt("key_val_metric", A::kReference, "null", "Key metric: decides the best model and early stopping."),
       opt("additional_metrics", A::kReference, "null", "Further metrics, computed alongside the key metric."),
       opt("metric_cmp_fn", A::kCallable, "null",
           "Accepted for MONAI compatibility; ignored (a higher key metric is better)."),
       opt("val_handlers", A::kReference, "null", "Handlers attached to the evaluation loop."),
       opt("amp", A::kBool, "false", "Mixed precision (autocast) for the forward pass on CUDA; no effect on CPU."),
       opt("mode", A::kString, "\"eval\"",
           "Accepted for MONAI compatibility; ignored (the network always runs in eval mode)."),
       opt("event_names", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("event_to_attr", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("decollate", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("to_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored."),
       opt("amp_kwargs", A::kObject, "null", "Accepted for MONAI compatibility; ignored.")});
  add(r.interactions, "ClickInteraction", "DeepGrow click simulation during training.", "the AIAA issue",
      {opt("transforms", A::kAny, "null", "Click transforms run on the batch after each simulated interaction round."),
       opt("max_interactions", A::kInt, "15", "Maximum simulated click rounds per iteration."),
       opt("key_probability", A::kString, "\"probability\"",
           "Batch key that receives each round's click probability for the transforms."),
       opt("train", A::kBool, "true", "Training form: the click probability falls with each round (otherwise 1).")});
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
