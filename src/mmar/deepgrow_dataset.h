#pragma once
/// DeepGrow's dataset preparation (Clara's prepare_dataset.sh, MONAI's deepgrow create_dataset):
/// volumes and labels of a datalist become per-region training files, 2-D slices or 3-D volumes,
/// plus a datalist that lists them.

#include <string>
#include <vector>

namespace barton::mmar {

struct DeepgrowDatasetOptions {
  std::string dataset_json;  ///< The input datalist.
  std::string dataset_root;  ///< Base folder of its relative paths ("": the datalist's folder).
  std::string datalist_key = "training";  ///< One key, or several separated by commas.
  std::string output;                     ///< Folder for images/, labels/ and dataset.json.
  int dimensions = 2;                     ///< 2: one file per labelled slice; 3: one per volume.
  /// Output voxel size in mm; fewer values than axes repeat the last; values <= 0 keep the
  /// image's own spacing on that axis (MONAI's Spacingd). Default 1 mm in-plane, depth kept for 2-D
  /// (so that a slice is a slice of the volume as scanned); 1 mm for 3-D.
  std::vector<double> pixdim;
  int limit = 0;  ///< At most this many volumes (0: all).
  /// Below 1: that fraction of the (one) key's volumes is listed as "training", the rest as
  /// "validation". At 1 every key's entries are listed under its own name.
  double split = 1.0;
};

struct DeepgrowDatasetReport {
  int volumes = 0;
  int images = 0;  ///< Image files written (slices for 2-D).
  int labels = 0;  ///< Label files written: one per region (label value) per image.
  int training = 0, validation = 0;  ///< Datalist entries.
  std::string datalist;              ///< The dataset.json written.
};

/// Each volume (and label) is loaded, made channel-first, reoriented to RAS and resampled to
/// `pixdim` (image bilinear, label nearest), as MONAI's create_dataset does. 2-D: every slice along
/// the last (superior) axis whose label is not empty becomes images/vol_idx_NNNN_slice_SSS.nii.gz,
/// and each label value v > 0 on it labels/..._region_VV.nii.gz (label == v); 3-D: the same per
/// volume. Entries are {"image", "label", "region"} with paths relative to `output`. Volumes are
/// split by volume, never by slice, so no volume is in both lists. Every file is written
/// atomically; dataset.json last. Throws ConfigError / IoError naming the datalist entry or file.
DeepgrowDatasetReport prepare_deepgrow_dataset(const DeepgrowDatasetOptions& options);

}  // namespace barton::mmar
