#include "serve/datastore.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/logging.h"
#include "core/strings.h"
#include "data/dataset.h"
#include "io/image.h"
#include <unistd.h>

namespace barton::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kLabelExt = ".nii.gz";

bool id_chars_ok(const std::string& s, std::size_t max_len, bool allow_dot) {
  if (s.empty() || s.size() > max_len || s.front() == '.') return false;
  for (char c : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                    (allow_dot && c == '.');
    if (!ok) return false;
  }
  return s.find("..") == std::string::npos;
}

/// The version number of "0007.nii.gz" (0 for any other name: temp files, metadata).
int version_of(const std::string& filename) {
  if (!ends_with(filename, kLabelExt)) return 0;
  const auto stem = filename.substr(0, filename.size() - std::string(kLabelExt).size());
  if (stem.size() < 4 || stem.size() > 9) return 0;
  for (char c : stem)
    if (!std::isdigit(static_cast<unsigned char>(c))) return 0;
  return std::stoi(stem);
}

json read_meta(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return json::object();
  try {
    json j = json::parse(read_file(p), nullptr, false);
    return j.is_object() ? j : json::object();
  } catch (const Error&) {
    return json::object();
  }
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec);
}

}  // namespace

bool valid_datastore_id(const std::string& id) {
  return id_chars_ok(id, 128, true);
}

bool valid_label_tag(const std::string& tag) {
  return id_chars_ok(tag, 64, false);
}

Datastore::Datastore(std::string root) : root_(std::move(root)) {
  if (enabled()) repair();
}

std::vector<std::pair<std::string, std::string>> Datastore::images() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  if (!enabled() || !fs::is_directory(root_, ec)) return out;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name.front() == '.' || !e.is_regular_file(ec) ||
        !io::is_supported_image_path(e.path().string()))
      continue;
    out.emplace_back(io::image_stem(e.path().string()), e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> Datastore::image_path(const std::string& id) const {
  if (!valid_datastore_id(id)) return std::nullopt;
  for (const auto& [i, p] : images())
    if (i == id) return p;
  return std::nullopt;
}

std::string Datastore::add_image(const std::string& id,
                                 const std::string& ext,
                                 const std::string& bytes) {
  if (!enabled()) throw Error("the server has no datastore (--datastore)");
  if (!valid_datastore_id(id)) throw Error("invalid image id '" + id + "'");
  std::lock_guard<std::mutex> lock(save_mu_);
  if (const auto existing = image_path(id)) {
    if (read_file(*existing) == bytes) return *existing;
    throw Error("image '" + id + "' is already in the datastore (" + *existing +
                ") with other content; labels may refer to it, so it is not replaced: upload "
                "under another id");
  }
  const auto path = fs::path(root_) / (id + ext);
  write_file_atomic(path, bytes);
  return path.string();
}

fs::path Datastore::versions_dir(const std::string& id, const std::string& tag) const {
  return fs::path(root_) / "labels" / tag / ".versions" / id;
}

fs::path Datastore::current_path(const std::string& id, const std::string& tag) const {
  return fs::path(root_) / "labels" / tag / (id + kLabelExt);
}

std::vector<int> Datastore::version_numbers(const std::string& id, const std::string& tag) const {
  std::vector<int> out;
  if (!enabled() || !valid_datastore_id(id) || !valid_label_tag(tag)) return out;
  const auto dir = versions_dir(id, tag);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (const int v = version_of(e.path().filename().string()); v > 0) out.push_back(v);
  std::sort(out.begin(), out.end());
  return out;
}

LabelVersion Datastore::version_at(const std::string& id, const std::string& tag, int v) const {
  const auto dir = versions_dir(id, tag);
  LabelVersion lv;
  lv.version = v;
  lv.path = (dir / fmt::format("{:04d}{}", v, kLabelExt)).string();
  lv.meta = read_meta(dir / fmt::format("{:04d}.json", v));
  return lv;
}

std::vector<LabelVersion> Datastore::versions(const std::string& id, const std::string& tag) const {
  std::vector<LabelVersion> out;
  for (int v : version_numbers(id, tag)) out.push_back(version_at(id, tag, v));
  return out;
}

std::optional<LabelVersion> Datastore::label(const std::string& id,
                                             const std::string& tag,
                                             int version) const {
  const auto all = version_numbers(id, tag);
  if (all.empty()) return std::nullopt;
  if (version == 0) return version_at(id, tag, all.back());
  if (std::binary_search(all.begin(), all.end(), version)) return version_at(id, tag, version);
  return std::nullopt;
}

std::vector<std::pair<std::string, int>> Datastore::tags(const std::string& id) const {
  std::vector<std::pair<std::string, int>> out;
  const auto labels = fs::path(root_) / "labels";
  std::error_code ec;
  if (!enabled() || !fs::is_directory(labels, ec)) return out;
  for (const auto& t : fs::directory_iterator(labels, ec)) {
    const auto tag = t.path().filename().string();
    if (!valid_label_tag(tag)) continue;
    const auto v = version_numbers(id, tag);
    if (!v.empty()) out.emplace_back(tag, v.back());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Datastore::link_current(const fs::path& version_file, const fs::path& current) const {
  // A hard link under a temporary name renamed over the current file: atomic, and the version
  // file itself is never opened for writing again.
  const auto tmp = current.parent_path() / fmt::format(".{}.link-{}", current.filename().string(),
                                                       static_cast<long>(::getpid()));
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(version_file, tmp, ec);
  if (ec) {  // a file system without hard links: an atomic copy
    write_file_atomic(current, read_file(version_file));
    return;
  }
  fs::rename(tmp, current, ec);
  if (ec) {
    fs::remove(tmp);
    throw IoError(current.string(), "cannot update the current label: " + ec.message());
  }
}

LabelVersion Datastore::save_label(const std::string& id,
                                   const std::string& tag,
                                   const std::function<void(const std::string&)>& write,
                                   json meta) {
  if (!enabled()) throw Error("the server has no datastore (--datastore)");
  if (!valid_datastore_id(id)) throw Error("invalid image id '" + id + "'");
  if (!valid_label_tag(tag)) throw Error("invalid label tag '" + tag + "'");
  std::lock_guard<std::mutex> lock(save_mu_);
  const auto dir = versions_dir(id, tag);
  fs::create_directories(dir);
  const auto existing = version_numbers(id, tag);
  LabelVersion lv;
  lv.version = existing.empty() ? 1 : existing.back() + 1;
  const auto file = dir / fmt::format("{:04d}{}", lv.version, kLabelExt);
  lv.path = file.string();
  write(lv.path);
  if (!fs::exists(file)) throw InternalError("the label writer wrote nothing at " + lv.path);
  if (!meta.is_object()) meta = json::object();
  meta["version"] = lv.version;
  meta["tag"] = tag;
  meta["image"] = id;
  meta["saved"] = utc_now();
  meta["sha256"] = data::sha256_hex(read_file(file));
  write_file_atomic(dir / fmt::format("{:04d}.json", lv.version), meta.dump(2) + "\n");
  lv.meta = std::move(meta);
  link_current(file, current_path(id, tag));
  return lv;
}

void Datastore::repair() {
  const auto labels = fs::path(root_) / "labels";
  std::error_code ec;
  if (!fs::is_directory(labels, ec)) return;
  // Temporary files of writes a killed server never finished (never at a final name). Only old
  // ones: another server on the same folder may be writing the new ones.
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::minutes(10);
  std::size_t removed = 0;
  for (auto it = fs::recursive_directory_iterator(labels, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    const bool temp = starts_with(name, ".tmp.") || name.find(".link-") != std::string::npos;
    std::error_code e2;
    if (temp && it->is_regular_file(e2) && fs::last_write_time(it->path(), e2) < cutoff &&
        fs::remove(it->path(), e2))
      ++removed;
  }
  if (removed > 0)
    log::info(fmt::format("datastore: removed {} temporary file(s) of interrupted saves", removed));
  for (const auto& t : fs::directory_iterator(labels, ec)) {
    const auto tag = t.path().filename().string();
    if (!valid_label_tag(tag) || !fs::is_directory(t.path() / ".versions", ec)) continue;
    for (const auto& d : fs::directory_iterator(t.path() / ".versions", ec)) {
      const auto id = d.path().filename().string();
      const auto latest = label(id, tag);
      if (!latest) continue;
      const auto current = current_path(id, tag);
      if (same_file(latest->path, current)) continue;
      log::warn(
          fmt::format("datastore: {} was not the latest version of label '{}' ({}): "
                      "linked again (a save was interrupted)",
                      current.string(), id, tag));
      link_current(latest->path, current);
    }
  }
}

json Datastore::objects_json() const {
  json objects = json::object();
  for (const auto& [id, path] : images()) {
    const auto name = fs::path(path).filename().string();
    json labels = json::object();
    for (const auto& [tag, latest] : tags(id)) {
      const auto lv = label(id, tag);
      json info = lv ? lv->meta : json::object();
      info["versions"] = latest;
      labels[tag] = {{"ext", kLabelExt}, {"info", info}};
    }
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    objects[id] = {
        {"image",
         {{"ext", name.substr(id.size())}, {"info", {{"name", name}, {"bytes", ec ? 0 : size}}}}},
        {"labels", labels}};
  }
  return {{"name", root_},
          {"description", "Barton datastore: images, and labels per tag with every version kept"},
          {"images_dir", root_},
          {"labels_dir", (fs::path(root_) / "labels").string()},
          {"objects", objects}};
}

json Datastore::stats_json() const {
  std::map<std::string, int> counts;
  const auto all = images();
  int completed = 0;
  for (const auto& [id, path] : all) {
    for (const auto& [tag, v] : tags(id)) {
      ++counts[tag];
      if (tag == "final") ++completed;
    }
  }
  json label_tags = json::object();
  for (const auto& [tag, n] : counts) label_tags[tag] = n;
  return {{"total", all.size()}, {"completed", completed}, {"label_tags", label_tags}};
}

std::vector<std::string> Datastore::unlabelled(const std::string& tag) const {
  std::vector<std::string> out;
  for (const auto& [id, path] : images())
    if (version_numbers(id, tag).empty()) out.push_back(id);
  return out;
}

}  // namespace barton::serve
