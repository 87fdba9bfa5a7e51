#include "serve/admin.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include <sys/stat.h>
#include <zip.h>

namespace barton::serve {

namespace fs = std::filesystem;

namespace {

struct ZipCloser {
  void operator()(zip_t* z) const {
    if (z) zip_discard(z);
  }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

/// Opens an archive held in memory (read only). Throws Error when libzip cannot read it.
ZipPtr open_zip(const std::string& bytes) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  if (!src) {
    const std::string what = zip_error_strerror(&err);
    zip_error_fini(&err);
    throw Error("the upload is not a readable zip archive: " + what);
  }
  zip_t* z = zip_open_from_source(src, ZIP_RDONLY, &err);
  if (!z) {
    zip_source_free(src);
    const std::string what = zip_error_strerror(&err);
    zip_error_fini(&err);
    throw Error("the upload is not a readable zip archive: " + what);
  }
  zip_error_fini(&err);
  return ZipPtr(z);
}

/// A relative path that stays inside the extraction folder.
bool safe_entry_name(const std::string& name) {
  if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos) return false;
  for (const auto& part : fs::path(name)) {
    if (part == "..") return false;
  }
  return name.find(':') == std::string::npos;
}

}  // namespace

bool looks_like_zip(const std::string& bytes) {
  return bytes.size() >= 4 && bytes.compare(0, 4, std::string("PK\x03\x04", 4)) == 0;
}

bool zip_holds_mmar(const std::string& bytes) {
  if (!looks_like_zip(bytes)) return false;
  auto z = open_zip(bytes);
  const auto n = zip_get_num_entries(z.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(z.get(), static_cast<zip_uint64_t>(i), 0);
    if (!name) continue;
    const std::string s(name);
    const std::string tail = "config/config_inference.json";
    if (s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0)
      return true;
  }
  return false;
}

void extract_zip(const std::string& bytes, const std::string& dest, std::uint64_t max_bytes) {
  if (fs::exists(dest)) throw Error(dest + ": already exists");
  auto z = open_zip(bytes);
  const auto n = zip_get_num_entries(z.get(), 0);
  // Check every entry before writing anything.
  std::uint64_t declared = 0;
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    if (zip_stat_index(z.get(), static_cast<zip_uint64_t>(i), 0, &st) != 0 || !st.name)
      throw Error(fmt::format("zip entry {}: unreadable", i));
    const std::string name(st.name);
    if (!safe_entry_name(name))
      throw Error("zip entry '" + name + "': a path outside the archive's folder is refused");
    zip_uint8_t os = 0;
    zip_uint32_t attr = 0;
    if (zip_file_get_external_attributes(z.get(), static_cast<zip_uint64_t>(i), 0, &os, &attr) ==
            0 &&
        os == ZIP_OPSYS_UNIX && S_ISLNK(attr >> 16))
      throw Error("zip entry '" + name + "': symbolic links are refused");
    declared += st.size;
    if (declared > max_bytes)
      throw Error(fmt::format("the archive unpacks to more than {} MB", max_bytes >> 20));
  }
  const fs::path tmp = dest + ".partial";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    std::uint64_t total = 0;
    std::vector<char> buf(1 << 16);
    for (zip_int64_t i = 0; i < n; ++i) {
      const std::string name = zip_get_name(z.get(), static_cast<zip_uint64_t>(i), 0);
      const fs::path out = tmp / name;
      if (!name.empty() && name.back() == '/') {
        fs::create_directories(out);
        continue;
      }
      fs::create_directories(out.parent_path());
      zip_file_t* f = zip_fopen_index(z.get(), static_cast<zip_uint64_t>(i), 0);
      if (!f) throw Error("zip entry '" + name + "': " + zip_strerror(z.get()));
      std::ofstream os(out, std::ios::binary);
      zip_int64_t got = 0;
      while ((got = zip_fread(f, buf.data(), buf.size())) > 0) {
        total += static_cast<std::uint64_t>(got);
        if (total > max_bytes) {
          zip_fclose(f);
          throw Error(fmt::format("the archive unpacks to more than {} MB", max_bytes >> 20));
        }
        os.write(buf.data(), got);
      }
      zip_fclose(f);
      if (got < 0) throw Error("zip entry '" + name + "': damaged data");
      if (!os) throw Error(out.string() + ": cannot write (disk full?)");
    }
    fs::rename(tmp, dest);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

std::string find_mmar_root(const std::string& dir) {
  const auto has = [](const fs::path& p) {
    return fs::is_regular_file(p / "config" / "config_inference.json");
  };
  if (has(dir)) return dir;
  std::string found;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_directory() || !has(e.path())) continue;
    if (!found.empty()) return "";  // two MMARs: ambiguous
    found = e.path().string();
  }
  return found;
}

namespace {

/// The last segment of a dotted component name ("monai.transforms.Activationsd" -> "Activationsd").
std::string short_name(const nlohmann::json& t) {
  if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) return "";
  const auto n = t["name"].get<std::string>();
  const auto dot = n.rfind('.');
  return dot == std::string::npos ? n : n.substr(dot + 1);
}

/// Whether a post transform acts on the prediction only ("keys": "pred" or ["pred"]).
bool on_pred(const nlohmann::json& t) {
  if (!t.contains("args") || !t["args"].contains("keys")) return false;
  const auto& k = t["args"]["keys"];
  return (k.is_string() && k == "pred") || (k.is_array() && k.size() == 1 && k[0] == "pred");
}

}  // namespace

void write_aiaa_mmar(const nlohmann::json& aiaa,
                     const std::string& model_bytes,
                     const std::string& dest) {
  using nlohmann::json;
  if (!aiaa.contains("pre_transforms") || !aiaa["pre_transforms"].is_array())
    throw Error("config_aiaa.json: /pre_transforms must be a list of transforms");
  json engine = json::object();
  if (aiaa.contains("inference") && aiaa["inference"].is_object()) {
    const auto& inf = aiaa["inference"];
    if (inf.contains("AIAA") && inf["AIAA"].is_object())
      engine = inf["AIAA"].value("args", json::object());
    else
      engine = inf.value("args", json::object());
  }
  json inferer = {{"name", "SimpleInferer"}};
  if (engine.value("scanning_window", false)) {
    if (!engine.contains("roi") || !engine["roi"].is_array())
      throw Error(
          "config_aiaa.json: /inference/AIAA/args/roi must give the scanning window's size");
    inferer = {{"name", "SlidingWindowInferer"},
               {"args",
                {{"roi_size", engine["roi"]},
                 {"overlap", engine.value("overlap", 0.25)},
                 {"sw_batch_size", engine.value("sw_batch_size", 1)}}}};
  }
  json post = json::array();
  if (aiaa.contains("post_transforms") && aiaa["post_transforms"].is_array()) {
    for (const auto& t : aiaa["post_transforms"]) {
      const auto n = short_name(t);
      if (n == "Restored" || n == "ExtremePointsd" || n == "BoundingBoxd" || n == "Writer" ||
          n == "ToNumpyd" || ((n == "AddChanneld" || n == "SqueezeDimd") && on_pred(t)))
        continue;
      if (n == "LargestCCd") {
        json args = {
            {"keys", t.contains("args") ? t["args"].value("keys", json("pred")) : json("pred")}};
        post.push_back({{"name", "KeepLargestConnectedComponentd"}, {"args", args}});
        continue;
      }
      post.push_back(t);
    }
  }
  // MONAI's module paths ("monai.transforms.Spacingd") name Barton's components by their last part.
  json pre = aiaa["pre_transforms"];
  for (auto* list : {&pre, &post})
    for (auto& t : *list)
      if (t.is_object() && t.contains("name") && t["name"].is_string() &&
          t["name"].get<std::string>().rfind("monai.", 0) == 0)
        t["name"] = short_name(t);
  const json inference = {
      {"use_gpu", true},
      {"model", {{"ts_path", "{MMAR_TORCHSCRIPT}"}}},
      {"pre_transforms", pre},
      {"inferer", inferer},
      {"post_transforms", post},
      // The evaluator MMARs carry (batch `barton infer` uses it; serving does not).
      {"dataset",
       {{"name", "Dataset"},
        {"data_list_file_path", "{DATASET_JSON}"},
        {"data_file_base_dir", "{DATA_ROOT}"},
        {"data_list_key", "test"},
        {"args", {{"transform", "@pre_transforms"}}}}},
      {"dataloader",
       {{"name", "DataLoader"},
        {"args", {{"dataset", "@dataset"}, {"batch_size", 1}, {"shuffle", false}}}}},
      {"evaluator",
       {{"name", "SupervisedEvaluator"},
        {"args",
         {{"val_data_loader", "@dataloader"},
          {"network", "@model"},
          {"inferer", "@inferer"},
          {"postprocessing", "@post_transforms"}}}}}};
  const json env = {{"DATA_ROOT", "."},
                    {"DATASET_JSON", "dataset.json"},
                    {"MMAR_CKPT_DIR", "models"},
                    {"MMAR_CKPT", "models/model.pt"},
                    {"MMAR_TORCHSCRIPT", "models/model.ts"},
                    {"MMAR_EVAL_OUTPUT_PATH", "eval"}};
  const fs::path root(dest);
  fs::create_directories(root / "config");
  fs::create_directories(root / "models");
  write_file_atomic((root / "config" / "config_aiaa.json").string(), aiaa.dump(2) + "\n");
  write_file_atomic((root / "config" / "config_inference.json").string(), inference.dump(2) + "\n");
  write_file_atomic((root / "config" / "environment.json").string(), env.dump(2) + "\n");
  write_file_atomic((root / "models" / "model.ts").string(), model_bytes);
  write_file_atomic((root / "dataset.json").string(), "{\"test\": []}\n");
}

}  // namespace barton::serve
