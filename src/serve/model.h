#pragma once
/// A model the annotation server answers with: an MMAR (config_inference.json plus its
/// checkpoint or TorchScript file) or a Barton plan, described for the AIAA and MONAI Label model
/// lists and run on one image at a time.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "io/image.h"
#include "mmar/workflow.h"
#include "transforms/sample.h"

namespace barton::serve {

/// What the model lists show. Ownership: values.
struct ModelInfo {
  std::string name;                   ///< Served name (the MMAR folder's name by default).
  std::string type = "segmentation";  ///< AIAA type: segmentation, annotation, deepgrow, ...
  std::string description;
  std::string version = "1";        ///< A string: the AIAA C++ client reads it as one.
  std::vector<std::string> labels;  ///< Foreground label names, in channel order from 1.
  std::vector<int64_t> roi;         ///< The sliding window's roi_size, when there is one.
  int dimension = 3;
  /// A 2-D DeepGrow model (AddGuidanceFromPointsd with spatial_dims 2): the spatial axis of the
  /// prepared volume its slices are taken along (the step's `axis`); -1 for every other model.
  int slice_axis = -1;
  std::string source;             ///< MMAR folder or plan file.
  std::string model_file;         ///< The weights it loads (for the memory estimate).
  std::vector<std::string> sets;  ///< `--set` overrides of its inference config (its own).
  /// config_aiaa.json's inference.meta_data (e.g. {"deepgrow": "3D"}, or an annotation model's
  /// padding, roi and sigma), added to the model object.
  nlohmann::json meta_data = nlohmann::json::object();
  /// A DeepEdit model's label names {name: value} in guidance-channel order (from its
  /// AddGuidanceFromPointsDeepEditd step); empty for other models.
  nlohmann::ordered_json click_labels = nlohmann::ordered_json::object();
  /// A `pipeline` model (config_aiaa.json only, Clara's DeepgrowInferencePipeline): the served
  /// models it chains (a 2-D DeepGrow model and the 3-D model whose mask it refines), how many
  /// slices go through the 2-D network at once, and the smallest slice region it refines.
  std::vector<std::string> pipeline;
  std::size_t pipeline_batch_size = 32;
  int64_t pipeline_min_point_density = 10;

  /// The AIAA model object (name, type, description, labels, version, "internal name", roi).
  nlohmann::json aiaa_json() const;
};

/// The model a `--set` entry is for: "NAME:KEY=VALUE" is for the model served as NAME (a ':'
/// before the '='); nullopt for a plain "KEY=VALUE", which is for every model.
std::optional<std::string> set_model(const std::string& set);
/// The entries of `sets` for the model `name`: the plain ones and its own without "NAME:".
std::vector<std::string> sets_for_model(const std::vector<std::string>& sets,
                                        const std::string& name);

/// True when `folder` holds config/config_aiaa.json of `type: pipeline` (a model that chains
/// others and has no config_inference.json of its own).
bool is_pipeline_folder(const std::string& folder);

/// Describes the MMAR folder or plan at `source` without loading weights: labels from
/// config/config_aiaa.json ("labels") or config/metadata.json (channel_def, background left
/// out), description and version likewise, roi from the inference config's inferer.
/// Throws IoError / ConfigError naming the file when `source` is not a servable model.
ModelInfo describe_model(const std::string& source,
                         const std::string& name = "",
                         const std::vector<std::string>& sets = {});

/// Seconds spent per stage of one request.
struct StageTimes {
  double read = 0, pre = 0, network = 0, post = 0, write = 0;
  nlohmann::json to_json() const;
};

/// The image after the model's deterministic pre transforms, kept by a session so that later
/// requests skip reading and resampling. Ownership: shares its tensors; never modified once made.
struct PreparedImage {
  std::vector<transforms::Sample> samples;
  double read_seconds = 0, pre_seconds = 0;
};

/// One answer: a label map on the input image's own grid.
struct InferResult {
  io::Image label;  ///< [1, I, J, K] uint8, the input's affine.
  StageTimes times;
  /// Interactive models: the box the network saw, in the input's voxel indices, [[i0, i1], [j0,
  /// j1], [k0, k1]] inclusive (AIAA deepgrow's "crop"); empty otherwise.
  std::vector<std::pair<int64_t, int64_t>> crop;
  /// Interactive models: seconds of the click's own pre-processing (also inside times.pre).
  double click_pre = 0;
  /// refine_slices: how many slices the 2-D model redrew; -1 otherwise.
  int64_t refined_slices = -1;
};

/// Foreground and background clicks in the input image's voxel indices ([x, y, z] = [i, j, k]).
struct Clicks {
  std::vector<std::vector<double>> foreground, background;
  /// DeepEdit: clicks per label name, in the model's label order.
  std::vector<std::pair<std::string, std::vector<std::vector<double>>>> by_label;
  /// From request params {"foreground": [[x, y, z], ...], "background": [...]}; missing lists are
  /// empty. Throws Error naming the key when a list or point is malformed.
  static Clicks from_params(const nlohmann::json& params, int dims = 3);
  /// The clicks a model of AIAA `type` takes: an annotation (DEXTR3D) model reads its extreme
  /// points from params.points (AIAA) or params.foreground (MONAI Label's clients), at least 6,
  /// as foreground; every other model reads from_params. Throws Error naming the key.
  static Clicks for_model(const nlohmann::json& params, const std::string& type, int dims = 3);
  /// A DeepEdit model's clicks: params[name] for each label name of `labels` ({name: value}), and
  /// params.foreground / params.background for the first name other than "background" and for
  /// "background". None at all is the automatic segmentation.
  static Clicks for_labels(const nlohmann::json& params,
                           const nlohmann::ordered_json& labels,
                           int dims = 3);
  bool empty() const {
    bool none = foreground.empty() && background.empty();
    for (const auto& [n, l] : by_label) none = none && l.empty();
    return none;
  }
};

/// A loaded model. Thread-safety: infer() and prepare() must not run concurrently on one object
/// (the server's model store hands each model to one worker at a time).
class ServedModel {
 public:
  /// Loads the pipeline (REQUIRES: describe_model succeeded for info.source). `device`: auto,
  /// cpu, cuda[:N].
  ServedModel(ModelInfo info, const std::string& device);
  const ModelInfo& info() const { return info_; }
  /// Reads `image_path` (a file or DICOM folder) and runs the pre transforms.
  std::shared_ptr<const PreparedImage> prepare(const std::string& image_path) const;
  /// Runs the network and the post transforms on a prepared image. Throws Error on failure.
  InferResult infer(const PreparedImage& image);
  /// True when the model takes clicks (DeepGrow) or extreme points (DEXTR3D): its pre_transforms
  /// hold AddGuidanceFromPointsd. prepare()
  /// then stops before that step, so a session keeps the image read, resampled and scaled once.
  bool interactive() const { return click_step_ < pre_size_; }
  /// The clicks a request's params give this model (Clicks::for_model, or for_labels for DeepEdit).
  Clicks clicks_from(const nlohmann::json& params) const;
  /// One click round of an interactive model on a prepared image: the clicks become guidance on
  /// the prepared grid (through the affines, so flips and resampling are honoured), the steps
  /// from AddGuidanceFromPointsd on crop around them and add the guidance channels, the network
  /// runs on that region only, the post transforms up to RestoreLabeld make the mask, and the mask
  /// is pasted back into the prepared grid and resampled to the input's grid. Throws Error when a
  /// click lies outside the image or there is none.
  InferResult infer_clicks(const PreparedImage& image, const Clicks& clicks);
  /// What a pipeline's 2-D stage takes from the 3-D mask (MONAI Label's deepgrow pipeline names).
  struct SliceOptions {
    std::size_t batch_size = 32;     ///< Slices per network call.
    int64_t min_point_density = 10;  ///< Slices whose largest region is smaller are left out.
  };
  /// A 2-D DeepGrow model refining a 3-D mask slice by slice (a `pipeline` model's second stage):
  /// `coarse` (on the input's grid) is resampled onto this model's prepared grid; on every slice
  /// along the model's slice axis where it is not empty, its largest connected region (when of
  /// at least min_point_density voxels) gives one foreground click at its most interior voxel
  /// (the largest chessboard distance, the first in raster order), joined by the user's clicks
  /// on that slice; the model segments each such slice from those clicks. The answer holds the
  /// slices' masks, on the input's grid. Throws Error when this is no 2-D DeepGrow model.
  InferResult refine_slices(const PreparedImage& image,
                            const io::Image& coarse,
                            const Clicks& clicks,
                            const SliceOptions& options);
  /// A click round's mask as a box of the prepared grid: [1, ...] values in [start, end).
  struct Region {
    at::Tensor mask;
    std::vector<int64_t> start, end;
  };
  /// Test-time-augmentation uncertainty of a prepared image: the network runs on the image and
  /// on its flips along each spatial axis; the score is the mean over voxels of the variance
  /// of the class probabilities (softmax, or sigmoid for one channel) across those runs, summed
  /// over channels. 0 when every run agrees; higher = less certain.
  double tta_uncertainty(const PreparedImage& image);
  /// Bytes of the weights file (what eviction under --memory-budget-mb counts).
  std::size_t weight_bytes() const { return weight_bytes_; }

 private:
  /// The network (through the config's inferer) on a batch's image, without gradients: float32
  /// on the CPU.
  at::Tensor predict(const data::Batch& batch) const;
  /// The pre_transforms after AddGuidanceFromPointsd, the network and the post_transforms up to
  /// RestoreLabeld on `prepared` once per (guidance, slice) pair, `batch_size` at a time; each
  /// mask as a region of the prepared grid (a 2-D model's in its slice). Adds to r's times.
  std::vector<Region> run_click_steps(const transforms::Sample& prepared,
                                      const std::vector<std::pair<std::string, int64_t>>& guidances,
                                      std::size_t batch_size,
                                      InferResult& r);

  ModelInfo info_;
  mmar::InferencePipeline pipeline_;
  std::size_t weight_bytes_ = 0;
  std::size_t pre_size_ = 0, click_step_ = 0;  // click_step_ == pre_size_: not interactive
  std::size_t restore_step_ = 0;               // post steps before RestoreLabeld
};

}  // namespace barton::serve
