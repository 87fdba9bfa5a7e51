#pragma once
/// The annotation server's datastore (MONAI Label's `/datastore/`): images in one folder and
/// labels per tag, every saved label kept as a numbered version that is never overwritten.
///
/// Layout under the root (the image and current-label paths are MONAI Label's local datastore's):
///   <id><ext>                                  images (.nii.gz, .nii, .nrrd, .mha, ...)
///   labels/<tag>/<id>.nii.gz                   the latest version of a label (a hard link)
///   labels/<tag>/.versions/<id>/<NNNN>.nii.gz  every version, numbered from 1
///   labels/<tag>/.versions/<id>/<NNNN>.json    what was saved with it (client, user, params)
/// Files are written to a temporary name, synced and renamed, so a killed server leaves either
/// the old or the new version, never a part of one. The version folders are the truth: the
/// current-label link is repaired from them when the store opens.
/// This class does file work only (no tensors): callers validate and convert images.

#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace barton::serve {

/// True for datastore image ids and label tags a client may name: 1-128 characters of
/// [A-Za-z0-9._-], not starting with '.', so that no id reaches outside the store.
bool valid_datastore_id(const std::string& id);
/// True for tags: 1-64 characters of [A-Za-z0-9_-].
bool valid_label_tag(const std::string& tag);

/// One saved label version.
struct LabelVersion {
  int version = 0;
  std::string path;     ///< The version's file.
  nlohmann::json meta;  ///< Saved with it ({} when its .json is missing).
};

/// Thread-safety: all members may be called from any thread (saves are serialised).
class Datastore {
 public:
  /// `root` "" = no datastore. Creates nothing until something is saved; repairs current-label
  /// links that a killed save left behind.
  explicit Datastore(std::string root);
  bool enabled() const { return !root_.empty(); }
  const std::string& root() const { return root_; }

  /// (id, path) of every image, sorted by id.
  std::vector<std::pair<std::string, std::string>> images() const;
  /// The image file of `id`, if any.
  std::optional<std::string> image_path(const std::string& id) const;
  /// Stores `bytes` as image `id` with extension `ext` (REQUIRES: valid id; the caller checked
  /// the bytes are a readable image). Returns its path. An identical image already stored is
  /// kept; a different one under the same id throws Error (the server answers 409): labels may
  /// refer to it.
  std::string add_image(const std::string& id, const std::string& ext, const std::string& bytes);

  /// Every version of label `id` / `tag`, oldest first.
  std::vector<LabelVersion> versions(const std::string& id, const std::string& tag) const;
  /// The latest version (0 = `version` 0), or a given one; nullopt when there is none.
  std::optional<LabelVersion> label(const std::string& id,
                                    const std::string& tag,
                                    int version = 0) const;
  /// Tags that image `id` has labels under, each with its latest version number.
  std::vector<std::pair<std::string, int>> tags(const std::string& id) const;
  /// Saves a new version: `write(path)` writes the label file (atomically) at the version's
  /// path; then `meta` (plus version, tag, image, saved time, sha256) and the current link.
  /// Returns the new version.
  LabelVersion save_label(const std::string& id,
                          const std::string& tag,
                          const std::function<void(const std::string&)>& write,
                          nlohmann::json meta);

  /// MONAI Label's `GET /datastore/?output=all` object: name, description, images_dir,
  /// labels_dir, objects {id: {image: {ext, info}, labels: {tag: {ext, info}}}}.
  nlohmann::json objects_json() const;
  /// {total, completed (images with a `final` label), label_tags {tag: count}}.
  nlohmann::json stats_json() const;
  /// Ids of images without a label under `tag`, sorted.
  std::vector<std::string> unlabelled(const std::string& tag = "final") const;

 private:
  std::vector<int> version_numbers(const std::string& id, const std::string& tag) const;
  LabelVersion version_at(const std::string& id, const std::string& tag, int version) const;
  std::filesystem::path versions_dir(const std::string& id, const std::string& tag) const;
  std::filesystem::path current_path(const std::string& id, const std::string& tag) const;
  void link_current(const std::filesystem::path& version_file,
                    const std::filesystem::path& current) const;
  void repair();

  std::string root_;
  mutable std::mutex save_mu_;
};

}  // namespace barton::serve
