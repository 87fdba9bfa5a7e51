#pragma once
/// Annotation sessions (AIAA `PUT /session/`, MONAI Label `/session/`): an uploaded volume kept on
/// disk under an unguessable id, with the images each model has already prepared from it, until
/// it expires or is deleted.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/model.h"
#include "serve/multipart.h"

namespace barton::serve {

/// One session. Thread-safety: the fixed fields are set at creation; `prepared` is guarded.
struct Session {
  std::string id;          ///< UUID (lower-case hex and dashes).
  std::string dir;         ///< Its folder.
  std::string image_path;  ///< The volume: a file, or a folder of DICOM files.
  std::string name;        ///< The uploaded file's name.
  std::chrono::system_clock::time_point created;
  /// steady_clock nanoseconds of the last use (atomic: read by HTTP threads, set by the store).
  std::atomic<int64_t> last_access_ns{0};
  int expiry_s = 3600;  ///< Seconds of idleness before it expires.

  /// The image as model `model` prepared it, or null.
  std::shared_ptr<const PreparedImage> prepared_for(const std::string& model) const;
  void keep_prepared(const std::string& model, std::shared_ptr<const PreparedImage> image);
  /// MONAI Label's session_info shape (name, path, image, meta, create_ts, last_access_ts,
  /// expiry) plus AIAA's session_id.
  nlohmann::json info() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const PreparedImage>> prepared_;
};

/// True for ids of the form the store issues (so nothing else reaches the file system).
bool valid_session_id(const std::string& id);

/// Upload file names made safe: the basename, characters outside [A-Za-z0-9._-] replaced, and an
/// image extension added from the bytes (gzip: .nii.gz) when it has none.
std::string safe_upload_name(const std::string& filename, const std::string& bytes);

/// Thread-safety: all members may be called from any thread.
class SessionStore {
 public:
  /// Sessions live under `root`; `default_expiry_s` applies when a request asks for 0 or none,
  /// and no session lives longer idle than `max_expiry_s`.
  SessionStore(std::string root, int default_expiry_s, int max_expiry_s);
  /// Writes the uploaded file(s) (several: a DICOM series) and returns the new session. Throws
  /// Error when `files` is empty.
  std::shared_ptr<Session> create(const std::vector<const Part*>& files, int expiry_s);
  /// The live session `id` (touched when `touch`), or null when unknown or expired (an expired
  /// one is removed).
  std::shared_ptr<Session> get(const std::string& id, bool touch = true);
  /// Removes `id`; its info, or null when unknown.
  std::shared_ptr<Session> remove(const std::string& id);
  /// Removes every expired session; returns how many.
  std::size_t sweep();
  std::size_t size() const;

 private:
  std::string root_;
  int default_expiry_s_, max_expiry_s_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
};

/// A fresh random UUID (version 4).
std::string new_uuid();

}  // namespace barton::serve
