#include "serve/sessions.h"

#include <algorithm>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"

namespace barton::serve {

namespace fs = std::filesystem;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool expired(const Session& s, int64_t now) {
  return now - s.last_access_ns.load() > int64_t{s.expiry_s} * 1000000000;
}

double epoch_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

/// Removes a session's files (it is already out of the store).
void discard(const Session& s) {
  std::error_code ec;
  fs::remove_all(s.dir, ec);
}

}  // namespace

std::string new_uuid() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t a, b;
  {
    std::lock_guard<std::mutex> lock(mu);
    a = rng();
    b = rng();
  }
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xffff,
                     b >> 48, b & 0xffffffffffffULL);
}

bool valid_session_id(const std::string& id) {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string safe_upload_name(const std::string& filename, const std::string& bytes) {
  std::string base = filename;
  const auto slash = base.find_last_of("/\\");
  if (slash != std::string::npos) base = base.substr(slash + 1);
  for (auto& c : base)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  while (!base.empty() && base.front() == '.') base.erase(0, 1);
  if (base.empty()) base = "image";
  static const char* known[] = {".nii.gz", ".nii", ".nrrd", ".nhdr",
                                ".mha",    ".mhd", ".dcm",  ".png"};
  for (const char* k : known)
    if (ends_with(base, k)) return base;
  const bool gz = bytes.size() > 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
                  static_cast<unsigned char>(bytes[1]) == 0x8b;
  const bool dicm = bytes.size() > 132 && bytes.compare(128, 4, "DICM") == 0;
  const bool nrrd = bytes.rfind("NRRD", 0) == 0;
  return base + (gz ? ".nii.gz" : dicm ? ".dcm" : nrrd ? ".nrrd" : ".nii");
}

std::shared_ptr<const PreparedImage> Session::prepared_for(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = prepared_.find(model);
  return it == prepared_.end() ? nullptr : it->second;
}

void Session::keep_prepared(const std::string& model, std::shared_ptr<const PreparedImage> image) {
  std::lock_guard<std::mutex> lock(mu_);
  prepared_[model] = std::move(image);
}

nlohmann::json Session::info() const {
  nlohmann::json j;
  j["session_id"] = id;
  j["name"] = name;
  j["path"] = dir;
  j["image"] = image_path;
  j["meta"] = nlohmann::json::object();
  j["create_ts"] = static_cast<int64_t>(epoch_seconds(created));
  const double idle = static_cast<double>(now_ns() - last_access_ns.load()) / 1e9;
  j["last_access_ts"] =
      static_cast<int64_t>(epoch_seconds(std::chrono::system_clock::now()) - idle);
  j["expiry"] = expiry_s;
  return j;
}

SessionStore::SessionStore(std::string root, int default_expiry_s, int max_expiry_s)
    : root_(std::move(root)), default_expiry_s_(default_expiry_s), max_expiry_s_(max_expiry_s) {
  fs::create_directories(root_);
}

std::shared_ptr<Session> SessionStore::create(const std::vector<const Part*>& files, int expiry_s) {
  if (files.empty()) throw Error("the session upload holds no file part");
  auto s = std::make_shared<Session>();
  s->id = new_uuid();
  s->dir = (fs::path(root_) / s->id).string();
  s->created = std::chrono::system_clock::now();
  s->last_access_ns = now_ns();
  s->expiry_s = expiry_s > 0 ? std::min(expiry_s, max_expiry_s_) : default_expiry_s_;
  fs::create_directories(s->dir);
  s->name = files.front()->filename;
  if (files.size() == 1) {
    const auto name = safe_upload_name(files.front()->filename, files.front()->data);
    s->image_path = (fs::path(s->dir) / name).string();
    write_file_atomic(s->image_path, files.front()->data);
  } else {
    // A DICOM series: every part a slice file in one folder.
    s->image_path = (fs::path(s->dir) / "series").string();
    fs::create_directories(s->image_path);
    for (std::size_t i = 0; i < files.size(); ++i)
      write_file_atomic(fs::path(s->image_path) / fmt::format("slice_{:05d}.dcm", i),
                        files[i]->data);
  }
  std::lock_guard<std::mutex> lock(mu_);
  sessions_[s->id] = s;
  return s;
}

std::shared_ptr<Session> SessionStore::get(const std::string& id, bool touch) {
  if (!valid_session_id(id)) return nullptr;
  std::shared_ptr<Session> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) return nullptr;
    if (!expired(*it->second, now_ns())) {
      if (touch) it->second->last_access_ns = now_ns();
      return it->second;
    }
    gone = it->second;
    sessions_.erase(it);
  }
  discard(*gone);
  return nullptr;
}

std::shared_ptr<Session> SessionStore::remove(const std::string& id) {
  if (!valid_session_id(id)) return nullptr;
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) return nullptr;
    s = it->second;
    sessions_.erase(it);
  }
  discard(*s);
  return s;
}

std::size_t SessionStore::sweep() {
  std::vector<std::shared_ptr<Session>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = now_ns();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (expired(*it->second, now)) {
        gone.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& s : gone) discard(*s);
  return gone.size();
}

std::size_t SessionStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

}  // namespace barton::serve
