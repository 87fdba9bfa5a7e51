#include "serve/server.h"

#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/logging.h"
#include "core/strings.h"
#include "core/version.h"
#include "io/image.h"
#include "io/png.h"
#include "serve/admin.h"
#include "serve/auth.h"
#include "serve/datastore.h"
#include "serve/model_store.h"
#include "serve/polygons.h"
#include "serve/sessions.h"
#include "serve/task_queue.h"
#include "serve/train_runner.h"

namespace barton::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// The last lines of the request log, for GET /logs.
class LogRing {
 public:
  void add(std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::move(line));
    while (lines_.size() > 5000) lines_.pop_front();
  }
  std::string tail(std::size_t n) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    const std::size_t start = lines_.size() > n ? lines_.size() - n : 0;
    for (std::size_t i = start; i < lines_.size(); ++i) out += lines_[i] + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::deque<std::string> lines_;
};

/// What a worker hands back to the HTTP thread: bytes and JSON only, never tensors.
struct ModelReply {
  std::string bytes;     ///< The result image file.
  std::string filename;  ///< Its name (extension = format).
  json params;           ///< The reply's params part.
  StageTimes times;
};

/// A model task's failure with its HTTP status.
struct TaskError {
  int status;
  std::string message;
};

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// The `params` part (or body) as a JSON object; throws TaskError 400 when it is not one.
json parse_params(const Request& req) {
  const Part* p = find_part(req.parts, "params");
  if (!p || p->data.empty()) return json::object();
  json j = json::parse(p->data, nullptr, false);
  if (j.is_discarded()) throw TaskError{400, "the params part is not valid JSON"};
  if (j.is_string()) {  // a JSON string holding JSON (the Python client's str passthrough)
    j = json::parse(j.get<std::string>(), nullptr, false);
    if (j.is_discarded()) throw TaskError{400, "the params part is not valid JSON"};
  }
  if (j.is_null()) return json::object();
  if (!j.is_object()) throw TaskError{400, "params must be a JSON object"};
  return j;
}

/// The uploaded image part: `datapoint` (Python client), `image` (C++ client, OHIF), `file`
/// (MONAI Label), or else the first file part.
const Part* image_part(const Request& req) {
  for (const char* name : {"datapoint", "image", "file", "image0"})
    if (const Part* p = find_part(req.parts, name); p && !p->data.empty()) return p;
  for (const auto& p : req.parts)
    if (p.is_file() && p.name != "label") return &p;
  return nullptr;
}

/// Result file extension asked for in params.result_extension (".nii.gz" by default).
std::string result_extension(const json& params) {
  std::string ext = ".nii.gz";
  if (params.contains("result_extension") && params["result_extension"].is_string())
    ext = params["result_extension"].get<std::string>();
  if (!ext.empty() && ext[0] != '.') ext = "." + ext;
  for (const char* ok : {".nii.gz", ".nii", ".nrrd", ".mha"})
    if (ext == ok) return ext;
  throw TaskError{400, "result_extension '" + ext + "' is not one of .nii.gz, .nii, .nrrd, .mha"};
}

/// The foreground's six extreme points [x, y, z] (min and max along each axis), as AIAA's
/// segmentation reply carries them.
json extreme_points(const io::Image& label) {
  json pts = json::array();
  const auto fg = label.data[0] > 0;
  const auto idx = fg.nonzero();  // [N, 3]
  if (idx.size(0) == 0) return pts;
  for (int64_t axis = 0; axis < idx.size(1); ++axis) {
    const auto col = idx.select(1, axis);
    for (const auto& row : {idx[col.argmin().item<int64_t>()], idx[col.argmax().item<int64_t>()]}) {
      json p = json::array();
      for (int64_t d = 0; d < row.size(0); ++d) p.push_back(row[d].item<int64_t>());
      pts.push_back(p);
    }
  }
  return pts;
}

Response multipart_reply(const json& params, const ModelReply& r, const std::string& file_part) {
  Part p1;
  p1.name = "params";
  p1.data = json_text(params);
  Part p2;
  p2.name = file_part;
  p2.filename = r.filename;
  p2.content_type = "application/octet-stream";
  p2.data = r.bytes;
  auto mp = write_multipart({p1, p2});
  Response res;
  res.content_type = mp.content_type;
  res.body = std::move(mp.body);
  return res;
}

Response raw_reply(const ModelReply& r) {
  Response res;
  res.content_type = "application/octet-stream";
  res.body = r.bytes;
  res.headers["Content-Disposition"] = "attachment; filename=\"" + r.filename + "\"";
  return res;
}

/// Server-Timing (milliseconds per stage), so clients and the request log see the split.
std::string server_timing(const StageTimes& t) {
  return fmt::format(
      "read;dur={:.1f}, pre;dur={:.1f}, net;dur={:.1f}, post;dur={:.1f}, "
      "write;dur={:.1f}",
      t.read * 1e3, t.pre * 1e3, t.network * 1e3, t.post * 1e3, t.write * 1e3);
}

/// Clara 4.x's deployment form on disk: config/config_aiaa.json (not a pipeline), no
/// config_inference.json, and one TorchScript model (models/model.ts, or the only .ts file in the
/// folder or its models/). Returns the model file, or "" when `p` is not such a folder.
std::string aiaa_deployment_model(const fs::path& p) {
  if (!fs::is_regular_file(p / "config" / "config_aiaa.json") ||
      fs::exists(p / "config" / "config_inference.json") || is_pipeline_folder(p.string()))
    return "";
  if (fs::is_regular_file(p / "models" / "model.ts")) return (p / "models" / "model.ts").string();
  std::vector<std::string> found;
  for (const auto& dir : {p, p / "models"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".ts") found.push_back(e.path().string());
  }
  return found.size() == 1 ? found[0] : "";
}

bool is_model_source(const fs::path& p) {
  if (fs::is_regular_file(p))
    return p.extension() == ".plan" || p.extension() == ".ts" || p.extension() == ".pt";
  return fs::exists(p / "config" / "config_inference.json") || is_pipeline_folder(p.string()) ||
         !aiaa_deployment_model(p).empty();
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> find_model_sources(const std::string& path) {
  if (!fs::exists(path)) throw IoError(path, "no such MMAR, plan or folder of models");
  if (is_model_source(path)) return {path};
  std::vector<std::string> out;
  if (fs::is_directory(path))
    for (const auto& e : fs::directory_iterator(path))
      if (is_model_source(e.path())) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  if (out.empty())
    throw IoError(path,
                  "is neither an MMAR (config/config_inference.json), a Clara deployment "
                  "(config/config_aiaa.json and a TorchScript model), a pipeline, a plan, nor a "
                  "folder holding them");
  return out;
}

struct AnnotationServer::Impl {
  ServerOptions o;
  std::string work_dir;
  bool own_work_dir = false;
  ModelStore store;
  Datastore datastore;
  std::unique_ptr<Authenticator> auth;  ///< Null without --auth.
  std::unique_ptr<SessionStore> sessions;
  /// TTA uncertainty per (model, image id): the image's stamp (path, size, mtime) and score.
  std::mutex score_mu;
  std::map<std::string, std::pair<std::string, double>> tta_scores;
  std::unique_ptr<TrainRunner> trainer;
  std::unique_ptr<TaskQueue> queue;
  std::unique_ptr<HttpServer> http;
  LogRing request_log;
  std::atomic<uint64_t> requests{0}, failures{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  explicit Impl(ServerOptions opt)
      : o(std::move(opt)),
        store(o.device, o.memory_budget_mb * 1024 * 1024),
        datastore(o.datastore) {
    if (!o.auth_file.empty()) auth = std::make_unique<Authenticator>(o.auth_file, o.token_expiry_s);
  }

  // --- worker side ---------------------------------------------------------------------------

  /// Runs `fn` on a worker; 503 when the queue is full. Waits for the answer.
  Response on_worker(std::function<Response()> fn) {
    auto promise = std::make_shared<std::promise<Response>>();
    auto future = promise->get_future();
    const bool queued = queue->try_submit([promise, fn = std::move(fn)] {
      try {
        promise->set_value(fn());
      } catch (const TaskError& e) {
        promise->set_value(Response::error(e.status, e.message));
      } catch (const std::exception& e) {
        promise->set_value(Response::error(500, e.what()));
      }
    });
    if (!queued)
      return Response::error(503, fmt::format("the server is busy: {} requests are waiting "
                                              "(--queue {}); retry later",
                                              queue->waiting(), queue->capacity()));
    try {
      return future.get();
    } catch (const std::future_error&) {
      return Response::error(503, "the server is stopping");
    }
  }

  /// Worker: runs `fn` on `model`'s prepared image (the session's, or read from `path` and kept
  /// by the session); model errors become their statuses (an out-of-memory error unloads the
  /// model). `cached`: the image came from the session.
  InferResult with_prepared(
      const std::string& model,
      const std::shared_ptr<Session>& session,
      const std::string& path,
      bool& cached,
      const std::function<InferResult(ServedModel&, const PreparedImage&)>& fn) {
    auto lease = acquire(model);
    std::shared_ptr<const PreparedImage> image = session ? session->prepared_for(model) : nullptr;
    cached = image != nullptr;
    try {
      if (!image) image = lease->prepare(session ? session->image_path : path);
      if (session && !cached) session->keep_prepared(model, image);
      auto result = fn(*lease, *image);
      if (cached) {  // read and pre-processed before: an interactive click still crops and scales
        result.times.read = 0;
        result.times.pre = result.click_pre;
      }
      return result;
    } catch (const c10::Error& e) {
      const std::string what = e.what();
      if (what.find("out of memory") != std::string::npos) {
        store.unload(model);  // what it held goes with it; the next request reloads
        throw TaskError{503, "out of memory running model '" + model + "'; retry later"};
      }
      throw TaskError{500, "model '" + model + "': " + e.what_without_backtrace()};
    } catch (const Error& e) {
      throw TaskError{422, e.what()};
    }
  }

  /// Worker: a pipeline model: its first stage (a 3-D DeepGrow or segmentation model) on the
  /// clicks, then its 2-D DeepGrow model refining every slice of that mask.
  InferResult run_pipeline(const ModelInfo& p,
                           const std::shared_ptr<Session>& session,
                           const std::string& path,
                           const json& params,
                           bool& cached) {
    const auto [first, refiner] = pipeline_stages(p);
    bool c1 = false, c2 = false;
    const auto coarse =
        with_prepared(first, session, path, c1, [&](ServedModel& m, const PreparedImage& img) {
          return m.interactive() ? m.infer_clicks(img, m.clicks_from(params)) : m.infer(img);
        });
    ServedModel::SliceOptions so;
    so.batch_size = p.pipeline_batch_size;
    so.min_point_density = p.pipeline_min_point_density;
    auto fine =
        with_prepared(refiner, session, path, c2, [&](ServedModel& m, const PreparedImage& img) {
          return m.refine_slices(img, coarse.label, m.clicks_from(params), so);
        });
    cached = c1 && c2;
    fine.times.read += coarse.times.read;
    fine.times.pre += coarse.times.pre;
    fine.click_pre += coarse.click_pre;
    fine.times.network += coarse.times.network;
    fine.times.post += coarse.times.post;
    return fine;
  }

  /// A pipeline's (first stage, 2-D refiner). Throws TaskError 500 when they are not served.
  std::pair<std::string, std::string> pipeline_stages(const ModelInfo& p) {
    std::string first, refiner;
    for (const auto& name : p.pipeline) {
      const auto m = store.find(name);
      if (!m)
        throw TaskError{500, "pipeline '" + p.name + "' needs model '" + name +
                                 "', which this server does not serve"};
      (m->slice_axis >= 0 && refiner.empty() ? refiner : first) = name;
    }
    if (first.empty() || refiner.empty())
      throw TaskError{
          500, "pipeline '" + p.name + "' needs a 2-D DeepGrow model and a 3-D model to refine"};
    return {first, refiner};
  }

  /// Worker: segments the image of `session` or at `path` with `model`; writes `ext`.
  ModelReply segment(const std::string& model,
                     const std::shared_ptr<Session>& session,
                     const std::string& path,
                     const std::string& ext,
                     const std::string& stem,
                     const json& params) {
    bool cached = false;
    const auto info = store.find(model);
    InferResult result;
    if (info && info->type == "pipeline") {
      result = run_pipeline(*info, session, path, params, cached);
    } else {
      result = with_prepared(
          model, session, path, cached, [&](ServedModel& m, const PreparedImage& img) {
            return m.interactive() ? m.infer_clicks(img, m.clicks_from(params)) : m.infer(img);
          });
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (params.value("result_dtype", "") == "uint16") {
      result.label.data = result.label.data.to(at::kInt);
      result.label.file_dtype = "uint16";
    }
    ModelReply r;
    r.filename = stem + ext;
    r.bytes = image_bytes(result.label, r.filename);
    r.times = result.times;
    r.times.write = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.params = {{"model", model},
                {"label_names", info ? info->labels : std::vector<std::string>{}},
                {"points", extreme_points(result.label)},
                {"latencies", r.times.to_json()},
                {"session_cached", cached}};
    if (result.refined_slices >= 0) r.params["refined_slices"] = result.refined_slices;
    if (!result.crop.empty()) {
      json crop = json::array();
      for (const auto& [a, b] : result.crop) crop.push_back({a, b});
      r.params["crop"] = crop;
    }
    return r;
  }

  /// Worker: `image` as the bytes of a file named `filename` (its extension picks the format),
  /// written through a request folder that is removed again.
  std::string image_bytes(const io::Image& image, const std::string& filename) const {
    const auto dir = fs::path(work_dir) / "requests" / new_uuid();
    fs::create_directories(dir);
    io::write_image(image, (dir / filename).string());
    auto bytes = read_file(dir / filename);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return bytes;
  }

  /// The MMAR made of a Clara 4.x deployment folder `src` (config_aiaa.json + the TorchScript
  /// `model`) under WORK_DIR/aiaa-models/<folder name>, as PUT /admin/model makes one.
  std::string deployment_as_mmar(const std::string& src, const std::string& model) {
    const auto file = fs::path(src) / "config" / "config_aiaa.json";
    json aiaa;
    try {
      aiaa = json::parse(read_file(file));
    } catch (const json::exception& e) {
      throw ConfigError(file.string(), "", std::string("not JSON: ") + e.what());
    }
    const auto dest = fs::path(work_dir) / "aiaa-models" / fs::path(src).filename();
    std::error_code ec;
    fs::remove_all(dest, ec);
    try {
      write_aiaa_mmar(aiaa, read_file(model), dest.string());
    } catch (const Error& e) {
      throw Error(file.string() + ": " + e.what());
    }
    return dest.string();
  }

  ModelStore::Lease acquire(const std::string& model) {
    try {
      return store.acquire(model);
    } catch (const Error& e) {
      throw TaskError{store.find(model) ? 500 : 404, e.what()};
    }
  }

  // --- helpers for the HTTP side --------------------------------------------------------------

  /// Writes an uploaded part to a request folder; returns its path (removed by the guard).
  struct Upload {
    std::string dir, path;
    ~Upload() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  };
  std::unique_ptr<Upload> save_upload(const Part& part) {
    auto u = std::make_unique<Upload>();
    u->dir = (fs::path(work_dir) / "uploads" / new_uuid()).string();
    fs::create_directories(u->dir);
    u->path = (fs::path(u->dir) / safe_upload_name(part.filename, part.data)).string();
    write_file_atomic(u->path, part.data);
    return u;
  }

  /// The model named by `name`, or a 404 / 400 response.
  std::optional<Response> check_model(const std::string& name) {
    if (name.empty()) return Response::error(400, "the request names no model (?model=NAME)");
    if (!store.find(name)) return Response::error(404, "no model named '" + name + "'");
    return std::nullopt;
  }

  // --- AIAA v1 ---------------------------------------------------------------------------------

  Response models(const Request& req) {
    if (req.has_query("model")) {
      const auto m = store.find(req.query_value("model"));
      if (!m) return Response::error(404, "no model named '" + req.query_value("model") + "'");
      return Response::json(json_text(m->aiaa_json()));
    }
    const auto label = req.query_value("label"), type = req.query_value("type");
    json arr = json::array();
    for (const auto& m : store.list()) {
      if (!type.empty() && m.type != type) continue;
      if (!label.empty()) {
        bool match = false;
        for (const auto& l : m.labels) {
          const auto a = to_lower(l), b = to_lower(label);
          match = match || a.find(b) != std::string::npos || b.find(a) != std::string::npos;
        }
        if (!match) continue;
      }
      arr.push_back(m.aiaa_json());
    }
    return Response::json(json_text(arr));
  }

  /// A request to an interactive model must carry well-formed clicks (400 otherwise).
  std::optional<Response> check_clicks(const std::string& model, const json& params) {
    auto info = store.find(model);
    if (info && info->type == "pipeline") {  // its first stage takes the clicks
      try {
        info = store.find(pipeline_stages(*info).first);
      } catch (const TaskError&) {
        return std::nullopt;  // the worker answers with what is missing
      }
    }
    if (!info) return std::nullopt;
    if (info->type == "deepedit") {  // no clicks is its automatic segmentation
      try {
        Clicks::for_labels(params, info->click_labels);
      } catch (const Error& e) {
        return Response::error(400, e.what());
      }
      return std::nullopt;
    }
    if (info->type != "deepgrow" && info->type != "annotation") return std::nullopt;
    try {
      if (Clicks::for_model(params, info->type).empty())
        return Response::error(400, "model '" + model +
                                        "' is interactive: give params.foreground and/or "
                                        "params.background as [[x, y, z], ...] voxel indices");
    } catch (const Error& e) {
      return Response::error(400, e.what());
    }
    return std::nullopt;
  }

  Response aiaa_segmentation(const Request& req) {
    const auto model = req.query_value("model");
    if (auto bad = check_model(model)) return *bad;
    const json params = parse_params(req);
    if (auto bad = check_clicks(model, params)) return *bad;
    std::shared_ptr<Session> session;
    std::unique_ptr<Upload> upload;
    if (req.has_query("session_id")) {
      session = sessions->get(req.query_value("session_id"));
      if (!session)
        return Response::error(440, "session '" + req.query_value("session_id") +
                                        "' is unknown or expired; create a new one");
    } else {
      const Part* part = image_part(req);
      if (!part)
        return Response::error(
            400, "no image: send a file part 'datapoint' or 'image', or a session_id");
      upload = save_upload(*part);
    }
    const auto ext = result_extension(params);
    const std::string path = upload ? upload->path : "";
    const bool raw = req.query_value("output") == "image";
    auto res = on_worker([&, ext] {
      const auto r = segment(model, session, path, ext, "result", params);
      auto out = raw ? raw_reply(r) : multipart_reply(r.params, r, "image");
      out.headers["Server-Timing"] = server_timing(r.times);
      return out;
    });
    return res;
  }

  Response aiaa_interactive(const Request& req, const std::string& kind) {
    const auto model = req.query_value("model");
    if (auto bad = check_model(model)) return *bad;
    const auto info = store.find(model);
    return Response::error(
        400, "model '" + model + "' is a " + info->type + " model; /v1/" + kind + " needs " +
                 (kind == "deepgrow" ? "a deepgrow" : "an annotation (DEXTR3D)") + " model");
  }

  Response session_create(const Request& req) {
    std::vector<const Part*> files;
    std::vector<const Part*> numbered;
    for (const auto& p : req.parts) {
      if (p.name == "params" || p.data.empty()) continue;
      if (p.name == "image" || p.name == "datapoint" || p.name == "files")
        files.push_back(&p);
      else if (p.name.rfind("image", 0) == 0)
        numbered.push_back(&p);
    }
    // OHIF's DICOM series: image0..imageN, in number order.
    std::sort(numbered.begin(), numbered.end(), [](const Part* a, const Part* b) {
      return std::stol("0" + a->name.substr(5)) < std::stol("0" + b->name.substr(5));
    });
    files.insert(files.end(), numbered.begin(), numbered.end());
    if (files.empty())
      return Response::error(400, "PUT /session/ needs the image as a file part 'image'");
    int expiry = 0;
    if (req.has_query("expiry")) {
      try {
        expiry = std::stoi(req.query_value("expiry"));
      } catch (const std::exception&) {
        return Response::error(400, "expiry must be a whole number of seconds");
      }
    }
    sessions->sweep();
    const auto s = sessions->create(files, expiry);
    json j = s->info();
    j["session_info"] = s->info();
    return Response::json(json_text(j));
  }

  Response session_get(const Request& req) {
    const auto s = sessions->get(req.captures.at(0), req.query_value("update_ts") != "false");
    if (!s)
      return Response::error(404, "session '" + req.captures.at(0) + "' is unknown or expired");
    return Response::json(json_text(s->info()));
  }

  Response session_delete(const Request& req) {
    const auto s = sessions->remove(req.captures.at(0));
    if (!s)
      return Response::error(404, "session '" + req.captures.at(0) + "' is unknown or expired");
    return Response::json(json_text(s->info()));
  }

  Response logs(const Request& req) {
    std::size_t n = 300;
    try {
      if (req.has_query("lines")) n = std::stoul(req.query_value("lines"));
    } catch (const std::exception&) {
      return Response::error(400, "lines must be a whole number");
    }
    Response r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = request_log.tail(n);
    return r;
  }

  // --- MONAI Label -------------------------------------------------------------------------------

  json queue_json() const {
    return {{"workers", queue->workers()},
            {"running", queue->running()},
            {"waiting", queue->waiting()},
            {"capacity", queue->capacity()}};
  }

  Response info(const Request&) {
    json models = json::object();
    json labels = json::array();
    for (const auto& m : store.list()) {
      json lab = json::object();
      for (std::size_t i = 0; i < m.labels.size(); ++i) {
        lab[m.labels[i]] = i + 1;
        if (std::find(labels.begin(), labels.end(), m.labels[i]) == labels.end())
          labels.push_back(m.labels[i]);
      }
      models[m.name] = {{"type", m.type},
                        {"labels", lab},
                        {"dimension", m.dimension},
                        {"description", m.description},
                        {"config", json::object()}};
    }
    json j = {{"name", "Barton"},
              {"version", BARTON_VERSION},
              {"description", "Barton annotation server (AIAA v1 and MONAI Label APIs)"},
              {"labels", labels},
              {"models", models},
              {"trainers", trainers_json()},
              {"strategies", strategies_json()},
              {"scoring", json::object()},
              {"train_stats", train_stats_json()},
              {"datastore", datastore.stats_json()},
              {"queue", queue_json()},
              {"memory", store.status()},
              {"sessions", sessions->size()}};
    return Response::json(json_text(j));
  }

  // --- polygons (AIAA) ---------------------------------------------------------------------------

  /// params[key] as polygons ([[[a, b], ...], ...]); throws TaskError 400 naming the key.
  static std::vector<Polygon> polygons_of(const json& j, const std::string& where) {
    std::vector<Polygon> out;
    if (!j.is_array()) throw TaskError{400, where + " must be a list of polygons"};
    for (const auto& poly : j) {
      if (!poly.is_array()) throw TaskError{400, where + " must be a list of polygons"};
      Polygon p;
      for (const auto& pt : poly) {
        if (!pt.is_array() || pt.size() != 2 || !pt[0].is_number() || !pt[1].is_number())
          throw TaskError{400, where + ": each point must be [a, b] numbers"};
        p.push_back({static_cast<int>(std::lround(pt[0].get<double>())),
                     static_cast<int>(std::lround(pt[1].get<double>()))});
      }
      out.push_back(std::move(p));
    }
    return out;
  }

  static json polygons_json(const std::vector<Polygon>& polys) {
    json out = json::array();
    for (const auto& p : polys) {
      json pj = json::array();
      for (const auto& pt : p) pj.push_back({pt[0], pt[1]});
      out.push_back(pj);
    }
    return out;
  }

  static int int_param(const json& params, const std::string& key, int fallback) {
    if (!params.contains(key)) return fallback;
    const auto& v = params[key];
    if (!v.is_number_integer()) throw TaskError{400, key + " must be a whole number"};
    return v.get<int>();
  }

  /// The non-zero voxels of channel 0 of a 3-D image, slice `k` as a Grid indexed [j][i] (the
  /// [j, i] order in which AIAA's 3-D polygons come).
  static Grid slice_grid(const at::Tensor& fg, int64_t k) {
    const auto s = fg.select(2, k).t().contiguous();  // [J, I]
    Grid g(static_cast<int>(s.size(0)), static_cast<int>(s.size(1)));
    std::memcpy(g.m.data(), s.data_ptr<uint8_t>(), g.m.size());
    return g;
  }

  Response mask2polygon(const Request& req) {
    const json params = parse_params(req);
    const int ratio = int_param(params, "more_points", 1);
    const Part* part = image_part(req);
    if (!part) return Response::error(400, "no mask: send the mask as a file part 'datapoint'");
    auto upload = save_upload(*part);
    return on_worker([&] {
      io::Image mask;
      try {
        mask = io::read_image(upload->path);
      } catch (const Error& e) {
        throw TaskError{422, e.what()};
      }
      if (mask.spatial_dims() != 3) throw TaskError{400, "mask2polygon takes a 3-D mask"};
      const auto fg = (mask.data[0] > 0).to(at::kByte).contiguous();
      json slices = json::array();
      for (int64_t k = 0; k < fg.size(2); ++k)
        slices.push_back(polygons_json(mask_to_polygons(slice_grid(fg, k), ratio)));
      return Response::json(json_text(slices));  // plain JSON: the clients parse it as such
    });
  }

  Response fixpolygon(const Request& req) {
    const json params = parse_params(req);
    const Part* part = image_part(req);
    if (!part) return Response::error(400, "no image: send the slice or volume as 'datapoint'");
    const bool three_d =
        int_param(params, "dimension", params.contains("slice_index") ? 3 : 2) == 3;
    const int pi = int_param(params, "polygon_index", 0), vi = int_param(params, "vertex_index", 0);
    const int neighbours = std::max(0, int_param(params, "propagate_neighbor", 0));
    std::array<double, 2> offset{0, 0};
    const auto& off = params.value("vertex_offset", json::array({0, 0}));
    if (!off.is_array() || off.size() != 2 || !off[0].is_number() || !off[1].is_number())
      return Response::error(400, "vertex_offset must be [a, b] numbers");
    offset = {off[0].get<double>(), off[1].get<double>()};
    if (!params.contains("poly")) return Response::error(400, "params has no 'poly'");
    const auto check_index = [&](const std::vector<Polygon>& polys, const std::string& where) {
      if (pi < 0 || pi >= static_cast<int>(polys.size()) || vi < 0 ||
          vi >= static_cast<int>(polys[static_cast<std::size_t>(pi)].size()))
        throw TaskError{400, fmt::format("{} has no polygon {} with a vertex {}", where, pi, vi)};
    };
    if (!three_d) {
      auto polys = polygons_of(params["poly"], "poly");
      check_index(polys, "poly");
      const auto [w, h] = [&] {
        try {
          return io::png_size(part->filename, part->data);
        } catch (const Error& e) {
          throw TaskError{422, e.what()};
        }
      }();
      move_vertex(polys, pi, vi, offset, neighbours, w, h);
      const auto grid = polygons_to_mask(polys, w, h);  // [x][y]
      std::vector<uint8_t> rows(static_cast<std::size_t>(w) * h);
      for (int x = 0; x < w; ++x)
        for (int y = 0; y < h; ++y)
          rows[static_cast<std::size_t>(y) * w + x] = grid.at(x, y) ? 255 : 0;
      ModelReply r;
      r.bytes = io::encode_png_gray8(rows.data(), w, h);
      r.filename = "mask.png";
      return multipart_reply({{"poly", polygons_json(polys)}}, r, "image");
    }
    if (!params["poly"].is_array()) return Response::error(400, "poly must be a list per slice");
    std::vector<std::vector<Polygon>> slices;
    for (std::size_t k = 0; k < params["poly"].size(); ++k)
      slices.push_back(polygons_of(params["poly"][k], fmt::format("poly[{}]", k)));
    const int s = int_param(params, "slice_index", 0);
    const int n3 = std::max(0, int_param(params, "propagate_neighbor_3d", 0));
    if (s < 0 || s >= static_cast<int>(slices.size()))
      return Response::error(
          400, fmt::format("slice_index {} is outside poly's {} slices", s, slices.size()));
    check_index(slices[static_cast<std::size_t>(s)], fmt::format("poly[{}]", s));
    auto upload = save_upload(*part);
    return on_worker([&] {
      io::Image vol;
      try {
        vol = io::read_image(upload->path);
      } catch (const Error& e) {
        throw TaskError{422, e.what()};
      }
      if (vol.spatial_dims() != 3) throw TaskError{400, "3-D fixpolygon takes a 3-D volume"};
      const auto I = vol.data.size(1), J = vol.data.size(2), K = vol.data.size(3);
      if (static_cast<int64_t>(slices.size()) != K)
        throw TaskError{400,
                        fmt::format("poly has {} slices; the volume has {}", slices.size(), K)};
      const int U = static_cast<int>(J), V = static_cast<int>(I);
      move_vertex(slices[static_cast<std::size_t>(s)], pi, vi, offset, neighbours, U, V);
      for (int d = 1; d <= n3; ++d) {
        const double wgt = 1.0 - static_cast<double>(d) / (n3 + 1);
        for (int t : {s - d, s + d}) {
          if (t < 0 || t >= static_cast<int>(K)) continue;
          auto& polys = slices[static_cast<std::size_t>(t)];
          if (pi < static_cast<int>(polys.size()) &&
              vi < static_cast<int>(polys[static_cast<std::size_t>(pi)].size()))
            move_vertex(polys, pi, vi, {offset[0] * wgt, offset[1] * wgt}, neighbours, U, V);
        }
      }
      io::Image out;
      auto data = at::zeros({1, I, J, K}, at::kByte);
      auto acc = data.accessor<uint8_t, 4>();
      json poly_out = json::array();
      for (int64_t k = 0; k < K; ++k) {
        const auto& polys = slices[static_cast<std::size_t>(k)];
        poly_out.push_back(polygons_json(polys));
        const auto grid = polygons_to_mask(polys, U, V);
        for (int j = 0; j < U; ++j)
          for (int i = 0; i < V; ++i) acc[0][i][j][k] = grid.at(j, i);
      }
      out.data = data;
      out.affine = vol.affine;
      out.file_dtype = "uint8";
      ModelReply r;
      r.filename = "mask.nii.gz";
      r.bytes = image_bytes(out, r.filename);
      return multipart_reply({{"poly", poly_out}}, r, "image");
    });
  }

  // --- datastore ---------------------------------------------------------------------------------

  std::optional<Response> need_datastore() const {
    if (!datastore.enabled())
      return Response::error(400, "the server has no datastore: start it with --datastore DIR");
    return std::nullopt;
  }

  /// The image id named by query `key` (validated), or an error response.
  std::variant<std::string, Response> query_id(const Request& req, const std::string& key) const {
    return checked_id(req.query_value(key), key);
  }

  /// `id` when it is a valid datastore id, else a 400 naming query `key`.
  static std::variant<std::string, Response> checked_id(const std::string& id,
                                                        const std::string& key) {
    if (id.empty()) return Response::error(400, "the request names no image (?" + key + "=ID)");
    if (!valid_datastore_id(id))
      return Response::error(400, "'" + id +
                                      "' is not a valid image id (1-128 characters of "
                                      "A-Z a-z 0-9 . _ -, not starting with '.')");
    return id;
  }

  std::variant<std::string, Response> query_tag(const Request& req) const {
    auto tag = req.query_value("tag");
    if (tag.empty()) tag = "final";
    if (!valid_label_tag(tag))
      return Response::error(400, "'" + tag +
                                      "' is not a valid label tag (1-64 characters of "
                                      "A-Z a-z 0-9 _ -)");
    return tag;
  }

  static Response file_reply(const std::string& path, const std::string& filename) {
    ModelReply r;
    r.bytes = read_file(path);
    r.filename = filename;
    return raw_reply(r);
  }

  std::string username(const Request& req) const {
    if (!auth) return "";
    const auto who = auth->check(req.header("authorization"));
    return who ? who->username : "";
  }

  Response datastore_list(const Request& req) {
    if (auto bad = need_datastore()) return *bad;
    if (req.query_value("output") == "stats")
      return Response::json(json_text(datastore.stats_json()));
    return Response::json(json_text(datastore.objects_json()));
  }

  Response datastore_image_get(const Request& req) {
    if (auto bad = need_datastore()) return *bad;
    auto id = query_id(req, "image");
    if (auto* r = std::get_if<Response>(&id)) return *r;
    const auto& image_id = std::get<std::string>(id);
    const auto path = datastore.image_path(image_id);
    if (!path) return Response::error(404, "no image '" + image_id + "' in the datastore");
    return file_reply(*path, fs::path(*path).filename().string());
  }

  Response datastore_image_put(const Request& req) {
    if (auto bad = need_datastore()) return *bad;
    const Part* part = image_part(req);
    if (!part) return Response::error(400, "no image: send the image as a file part 'file'");
    const auto name = safe_upload_name(part->filename, part->data);
    std::string ext;
    for (const char* e : {".nii.gz", ".nii", ".nrrd", ".mha"})
      if (ext.empty() && ends_with(name, e)) ext = e;
    if (ext.empty())
      return Response::error(
          400, "'" + part->filename + "': datastore images are .nii.gz, .nii, .nrrd or .mha files");
    // MONAI Label names the image by ?image=ID, else by its file name.
    auto id = checked_id(req.has_query("image") ? req.query_value("image")
                                                : name.substr(0, name.size() - ext.size()),
                         "image");
    if (auto* r = std::get_if<Response>(&id)) return *r;
    const auto image_id = std::get<std::string>(id);
    auto upload = save_upload(*part);
    return on_worker([&] {
      try {
        io::read_image(upload->path);  // a corrupt image never enters the datastore
      } catch (const Error& e) {
        throw TaskError{422, e.what()};
      }
      try {
        const auto path = datastore.add_image(image_id, ext, part->data);
        return Response::json(json_text({{"image", image_id}, {"path", path}}));
      } catch (const IoError& e) {
        throw TaskError{500, e.what()};
      } catch (const Error& e) {
        throw TaskError{409, e.what()};
      }
    });
  }

  Response datastore_label_get(const Request& req) {
    if (auto bad = need_datastore()) return *bad;
    auto id = query_id(req, req.has_query("label") ? "label" : "image");
    if (auto* r = std::get_if<Response>(&id)) return *r;
    auto tag = query_tag(req);
    if (auto* r = std::get_if<Response>(&tag)) return *r;
    const auto& label_id = std::get<std::string>(id);
    int version = 0;
    if (req.has_query("version")) {
      try {
        std::size_t used = 0;
        version = std::stoi(req.query_value("version"), &used);
        if (used != req.query_value("version").size() || version < 1)
          throw std::invalid_argument("");
      } catch (const std::exception&) {
        return Response::error(400, "version must be a whole number from 1");
      }
    }
    const auto lv = datastore.label(label_id, std::get<std::string>(tag), version);
    if (!lv)
      return Response::error(
          404, fmt::format("no label '{}' with tag '{}'{}", label_id, std::get<std::string>(tag),
                           version ? fmt::format(" version {}", version) : ""));
    auto r = file_reply(lv->path, label_id + ".nii.gz");
    r.headers["X-Label-Version"] = std::to_string(lv->version);
    return r;
  }

  /// Worker: the uploaded label as a label map on `image`'s grid; throws TaskError.
  static io::Image label_on_grid(const io::Image& image,
                                 const std::string& upload_path,
                                 const Part& part) {
    io::Image lab;
    const auto shape = image.spatial_shape();
    if (ends_with(to_lower(part.filename), ".bin")) {
      // OHIF's scribble/label upload: raw uint8 voxels in the image's file order (I fastest).
      int64_t voxels = 1;
      for (auto d : shape) voxels *= d;
      if (static_cast<int64_t>(part.data.size()) != voxels)
        throw TaskError{400, fmt::format("the raw label '{}' has {} bytes; the image has {} voxels "
                                         "(one uint8 per voxel)",
                                         part.filename, part.data.size(), voxels)};
      std::vector<int64_t> rev(shape.rbegin(), shape.rend());
      auto t = at::from_blob(const_cast<char*>(part.data.data()), rev, at::kByte).clone();
      std::vector<int64_t> perm;
      for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) perm.push_back(d);
      lab.data = t.permute(perm).unsqueeze(0).contiguous();
      lab.affine = image.affine;
    } else {
      try {
        lab = io::read_image(upload_path);
      } catch (const Error& e) {
        throw TaskError{422, e.what()};
      }
    }
    const auto fmt_shape = [](const std::vector<int64_t>& v) {
      std::string out;
      for (auto d : v) out += (out.empty() ? "" : "x") + std::to_string(d);
      return out;
    };
    if (lab.channels() != 1 || lab.spatial_shape() != shape)
      throw TaskError{
          400, fmt::format("the label is {} with {} channel(s); image grid is {}: a "
                           "label must be one channel on the image's own grid",
                           fmt_shape(lab.spatial_shape()), lab.channels(), fmt_shape(shape))};
    double diff = 0;
    for (std::size_t i = 0; i < 16; ++i)
      diff = std::max(diff, std::abs(lab.affine[i] - image.affine[i]));
    if (diff > 1e-2)
      throw TaskError{400, fmt::format("the label's geometry (affine) differs from the image's "
                                       "by up to {:.3g}: it was not drawn on this image",
                                       diff)};
    auto d = lab.data.to(at::kDouble);
    if (d.numel() > 0) {
      if ((d - d.round()).abs().max().item<double>() > 1e-3 || d.min().item<double>() < 0)
        throw TaskError{400, "label values must be whole numbers from 0"};
      const double top = d.max().item<double>();
      if (top > 65535) throw TaskError{400, "label values above 65535 are not label indices"};
      lab.file_dtype = top > 255 ? "uint16" : "uint8";
      lab.data = top > 255 ? d.round().to(at::kInt) : d.round().to(at::kByte);
    }
    lab.affine = image.affine;
    lab.meta.clear();
    return lab;
  }

  Response datastore_label_put(const Request& req) {
    if (auto bad = need_datastore()) return *bad;
    auto id = query_id(req, "image");
    if (auto* r = std::get_if<Response>(&id)) return *r;
    auto tag_v = query_tag(req);
    if (auto* r = std::get_if<Response>(&tag_v)) return *r;
    const auto image_id = std::get<std::string>(id);
    const auto tag = std::get<std::string>(tag_v);
    const auto image_path = datastore.image_path(image_id);
    if (!image_path) return Response::error(404, "no image '" + image_id + "' in the datastore");
    const Part* part = find_part(req.parts, "label");
    if (!part || part->data.empty()) part = find_part(req.parts, "file");
    if (!part || part->data.empty())
      return Response::error(400, "no label: send the label file as the part 'label'");
    const json params = parse_params(req);
    auto upload = save_upload(*part);
    json meta = {{"client_id", params.value("client_id", json())},
                 {"user", username(req)},
                 {"uploaded_name", fs::path(part->filename).filename().string()},
                 {"params", params}};
    return on_worker([&] {
      io::Image image;
      try {
        image = io::read_image(*image_path);
      } catch (const Error& e) {
        throw TaskError{500, std::string("the datastore image cannot be read: ") + e.what()};
      }
      const auto lab = label_on_grid(image, upload->path, *part);
      const auto lv = datastore.save_label(
          image_id, tag, [&](const std::string& path) { io::write_image(lab, path); }, meta);
      return Response::json(json_text({{"image", image_id},
                                       {"label", image_id},
                                       {"tag", tag},
                                       {"version", lv.version},
                                       {"sha256", lv.meta.value("sha256", "")}}));
    });
  }

  // --- active learning ---------------------------------------------------------------------------

  static json strategies_json() {
    return {{"random", {{"description", "a random image without a final label"}}},
            {"first", {{"description", "the first image (by id) without a final label"}}},
            {"tta",
             {{"description",
               "the image without a final label whose segmentation is least certain: mean "
               "voxel variance of the class probabilities over the image and its flips "
               "(test-time augmentation); params.model names the model"}}}};
  }

  /// The JSON body of a MONAI Label call (or its params part); {} when empty.
  static json body_json(const Request& req) {
    if (!req.parts.empty()) return parse_params(req);
    if (trim(req.body).empty()) return json::object();
    json j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !(j.is_object() || j.is_null()))
      throw TaskError{400, "the request body must be a JSON object"};
    return j.is_null() ? json::object() : j;
  }

  Response activelearning(const Request& req) {
    if (auto bad = need_datastore()) return *bad;
    const auto strategy = req.captures.at(0);
    if (!strategies_json().contains(strategy))
      return Response::error(404,
                             "no active-learning strategy '" + strategy + "' (random, first, tta)");
    const json params = body_json(req);
    const auto ids = datastore.unlabelled("final");
    if (ids.empty()) return Response::json("{}");
    std::string pick;
    json extra = json::object();
    if (strategy == "first") {
      pick = ids.front();
    } else if (strategy == "random") {
      std::mt19937_64 rng(params.contains("seed") && params["seed"].is_number_integer()
                              ? params["seed"].get<uint64_t>()
                              : std::random_device{}());
      pick = ids[std::uniform_int_distribution<std::size_t>(0, ids.size() - 1)(rng)];
    } else {
      std::string model = params.value("model", "");
      if (model.empty())
        for (const auto& m : store.list())
          if (model.empty() && m.type == "segmentation") model = m.name;
      if (auto bad = check_model(model)) return *bad;
      auto scores = on_worker([&] { return tta_scores_for(model, ids); });
      if (scores.status != 200) return scores;
      const json j = json::parse(scores.body);
      double best = -1;
      for (const auto& [id, score] : j.items())
        if (score.get<double>() > best) {
          best = score.get<double>();
          pick = id;
        }
      extra = {{"score", best}, {"model", model}, {"scores", j}};
    }
    const auto path = datastore.image_path(pick).value_or("");
    json reply = {{"id", pick},
                  {"name", fs::path(path).filename().string()},
                  {"path", path},
                  {"strategy", strategy},
                  {"remaining", ids.size()}};
    reply.update(extra);
    return Response::json(json_text(reply));
  }

  /// Worker: TTA scores of `ids` under `model` as a JSON object {id: score}, cached per image
  /// file (path, size, modification time).
  Response tta_scores_for(const std::string& model, const std::vector<std::string>& ids) {
    auto lease = acquire(model);
    json out = json::object();
    std::map<std::string, std::string> paths;  // one listing of the folder, not one per id
    for (const auto& [id, path] : datastore.images()) paths[id] = path;
    for (const auto& id : ids) {
      const auto path = paths.count(id) ? std::optional<std::string>(paths.at(id)) : std::nullopt;
      if (!path) continue;
      std::error_code ec;
      const auto stamp = fmt::format(
          "{}|{}|{}", *path, fs::file_size(*path, ec),
          static_cast<long long>(fs::last_write_time(*path, ec).time_since_epoch().count()));
      const auto key = model + "\n" + id;
      {
        std::lock_guard<std::mutex> lock(score_mu);
        const auto it = tta_scores.find(key);
        if (it != tta_scores.end() && it->second.first == stamp) {
          out[id] = it->second.second;
          continue;
        }
      }
      double score = 0;
      try {
        score = lease->tta_uncertainty(*lease->prepare(*path));
      } catch (const Error& e) {
        throw TaskError{422, e.what()};
      }
      std::lock_guard<std::mutex> lock(score_mu);
      tta_scores[key] = {stamp, score};
      out[id] = score;
    }
    return Response::json(json_text(out));
  }

  // --- training ----------------------------------------------------------------------------------

  /// The checkpoint an MMAR serves and fine-tunes from: MMAR_CKPT of its environment.json
  /// (models/model.pt by default), as an absolute path.
  static std::string served_checkpoint(const std::string& mmar) {
    std::string rel = "models/model.pt";
    const auto env = fs::path(mmar) / "config" / "environment.json";
    std::error_code ec;
    if (fs::exists(env, ec)) {
      const json j = json::parse(read_file(env), nullptr, false);
      if (j.is_object() && j.contains("MMAR_CKPT") && j["MMAR_CKPT"].is_string())
        rel = j["MMAR_CKPT"].get<std::string>();
    }
    const fs::path p(rel);
    return (p.is_absolute() ? p : fs::path(mmar) / p).lexically_normal().string();
  }

  static bool trainable(const ModelInfo& m) {
    std::error_code ec;
    return fs::exists(fs::path(m.source) / "config" / "config_train.json", ec);
  }

  Response train_start(const Request& req) {
    if (auto bad = need_datastore()) return *bad;
    const json params = body_json(req);
    std::string model = req.captures.empty() ? params.value("model", "") : req.captures.at(0);
    if (model.empty())
      for (const auto& m : store.list())
        if (model.empty() && trainable(m)) model = m.name;
    if (auto bad = check_model(model)) return *bad;
    const auto info = *store.find(model);
    if (!trainable(info))
      return Response::error(400, "model '" + model + "' (" + info.source +
                                      ") is not an MMAR with config/config_train.json: it cannot "
                                      "be fine-tuned");
    const auto ckpt = served_checkpoint(info.source);
    if (!fs::exists(ckpt))
      return Response::error(
          400, "model '" + model + "' has no checkpoint to start from (" + ckpt + ")");
    // Each image's newest final label, by the version file itself (never rewritten), so the run
    // records exactly what it learned from.
    std::vector<json> items, sources;
    for (const auto& [id, path] : datastore.images()) {
      const auto lv = datastore.label(id, "final");
      if (!lv) continue;
      items.push_back({{"image", path}, {"label", lv->path}});
      sources.push_back({{"image", id},
                         {"tag", "final"},
                         {"version", lv->version},
                         {"sha256", lv->meta.value("sha256", "")}});
    }
    if (items.size() < 2)
      return Response::error(400, fmt::format("fine-tuning needs at least 2 images with a final "
                                              "label in the datastore; it has {}",
                                              items.size()));
    const double split = params.value("val_split", 0.2);
    if (!(split > 0 && split < 1)) return Response::error(400, "val_split must be between 0 and 1");
    const auto n_val = std::clamp<std::size_t>(
        static_cast<std::size_t>(std::lround(static_cast<double>(items.size()) * split)), 1,
        items.size() - 1);
    TrainRequest r;
    r.model = model;
    r.mmar = info.source;
    r.ckpt = ckpt;
    r.device = o.device;
    const auto epochs =
        params.contains("max_epochs") ? params["max_epochs"] : params.value("epochs", json(0));
    if (!epochs.is_number_integer() || epochs.get<int>() < 0)
      return Response::error(400, "max_epochs must be a whole number");
    r.epochs = epochs.get<int>();
    r.datalist = {{"training", json(std::vector<json>(items.begin(), items.end() - n_val))},
                  {"validation", json(std::vector<json>(items.end() - n_val, items.end()))}};
    r.sources = {{"model", model},
                 {"checkpoint", ckpt},
                 {"items", sources},
                 {"user", username(req)},
                 {"params", params}};
    const auto stamp = utc_now("%Y%m%dT%H%M%SZ");
    r.run_dir =
        (fs::path(info.source) / "models" / "serve_train" / (stamp + "-" + new_uuid().substr(0, 8)))
            .string();
    const auto publish = params.value("publish", json(true));
    if (!publish.is_boolean()) return Response::error(400, "publish must be true or false");
    r.publish = publish.get<bool>();
    std::optional<json> started;
    try {
      started = trainer->start(r);
    } catch (const Error& e) {
      throw TaskError{500, e.what()};
    }
    if (!started) {
      const auto st = trainer->status();
      return Response::error(
          429,
          "a training task is running (" +
              (st ? st->value("id", "") + ", model " + st->value("model", "") : std::string("?")) +
              "); wait for it or stop it with DELETE /train/");
    }
    return Response::json(json_text(*started));
  }

  Response train_status(const Request& req) {
    if (req.query_value("check_if_running") == "true") {
      if (!trainer->running()) return Response::error(404, "no training task is running");
      return Response::json(json_text(*trainer->status()));
    }
    const auto st = trainer->status();
    if (!st) return Response::error(404, "no training task has run since the server started");
    return Response::json(json_text(*st));
  }

  Response train_stop(const Request&) {
    const auto st = trainer->stop();
    if (!st) return Response::error(404, "no training task has run since the server started");
    return Response::json(json_text(*st));
  }

  /// Monitor thread, when a run ends: a successful run's best model replaces the served
  /// checkpoint (the old one kept beside it) and the model is reloaded on its next request.
  void publish(json& s) {
    const auto id = s.value("id", "");
    s["published"] = false;
    if (s.value("status", "") != "DONE" || !s.value("publish", true)) return;
    const auto model = s.value("model", "");
    const auto info = store.find(model);
    if (!info) return;
    const auto best = fs::path(s.value("run_dir", "")) / "models" / "model.pt";
    if (!fs::exists(best)) {
      s["publish_error"] = "the run wrote no models/model.pt (no validation ran?)";
      return;
    }
    const auto target = served_checkpoint(info->source);
    const auto kept = target + ".before-" + id;
    if (fs::exists(target)) write_file_atomic(kept, read_file(target));
    write_file_atomic(target, read_file(best));
    store.unload(model);
    {
      std::lock_guard<std::mutex> lock(score_mu);
      for (auto it = tta_scores.begin(); it != tta_scores.end();)
        it = it->first.rfind(model + "\n", 0) == 0 ? tta_scores.erase(it) : std::next(it);
    }
    s["published"] = true;
    s["published_to"] = target;
    s["previous_kept_as"] = kept;
  }

  json train_stats_json() const {
    json out = json::object();
    const auto st = trainer ? trainer->status() : std::nullopt;
    if (st && st->contains("train_stats")) {
      const auto& t = (*st)["train_stats"];
      out[st->value("model", "")] = {{"best_metric", t.value("best_validation_metric", 0.0)},
                                     {"epoch", t.value("best_validation_epoch", 0)},
                                     {"total_epochs", t.value("total_epochs", 0)},
                                     {"total_time", t.value("total_time", 0.0)},
                                     {"status", st->value("status", "")}};
    }
    return out;
  }

  json trainers_json() const {
    json out = json::object();
    for (const auto& m : store.list())
      if (trainable(m))
        out[m.name] = {{"description", "fine-tune " + m.name +
                                           " (barton finetune) on the "
                                           "datastore's final labels"}};
    return out;
  }

  // --- authentication ----------------------------------------------------------------------------

  Response auth_info(const Request&) {
    // Like MONAI Label's server, no /auth/ routes without auth: its client reads any non-200 as
    // "no auth".
    if (!auth) return Response::error(404, "authentication is not enabled (--auth)");
    return Response::json(json_text({{"enabled", true},
                                     {"client_id", "barton"},
                                     {"token_type", "bearer"},
                                     {"token_endpoint", "/auth/token"}}));
  }

  Response auth_token(const Request& req) {
    if (!auth) return Response::error(404, "authentication is not enabled (--auth)");
    auto form = parse_form(req.body);
    for (const auto& p : req.parts)
      if (p.filename.empty()) form.emplace(p.name, p.data);
    const auto get = [&](const std::string& k) {
      const auto it = form.find(k);
      return it == form.end() ? std::string() : it->second;
    };
    const auto grant = get("grant_type");
    if (!grant.empty() && grant != "password")
      return Response::error(400, "grant_type must be 'password'");
    if (get("username").empty())
      return Response::error(400,
                             "send username and password as a form "
                             "(application/x-www-form-urlencoded)");
    Authenticator::Token token;
    switch (auth->login(get("username"), get("password"), &token)) {
      case Authenticator::LoginResult::kOk:
        return Response::json(json_text({{"access_token", token.access_token},
                                         {"token_type", token.token_type},
                                         {"expires_in", token.expires_in}}));
      case Authenticator::LoginResult::kLocked:
        return Response::error(429, "too many failed logins for this user; wait a minute");
      case Authenticator::LoginResult::kWrong:
        break;
    }
    auto r = Response::error(401, "wrong user name or password");
    r.headers["WWW-Authenticate"] = "Bearer";
    return r;
  }

  Response auth_token_valid(const Request& req) {
    if (!auth) return Response::error(404, "authentication is not enabled (--auth)");
    const auto who = auth->check(req.header("authorization"));
    if (!who) {
      auto r = Response::error(401, "the token is missing, unknown or expired");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    return Response::json(
        json_text({{"valid", true}, {"username", who->username}, {"role", role_name(who->role)}}));
  }

  Response auth_logout(const Request& req) {
    if (!auth) return Response::error(404, "authentication is not enabled (--auth)");
    if (!auth->revoke(req.header("authorization")))
      return Response::error(401, "the token is missing or unknown");
    return Response::json(json_text({{"revoked", true}}));
  }

  /// With --auth: 401 without a valid token, 403 when its user's role is below `need`.
  std::optional<Response> authorize(const Request& req, Role need) const {
    if (!auth) return std::nullopt;
    const auto who = auth->check(req.header("authorization"));
    if (!who) {
      auto r = Response::error(401,
                               "a valid bearer token is required (POST /auth/token, then "
                               "send 'Authorization: Bearer <token>')");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    if (who->role < need)
      return Response::error(403,
                             fmt::format("user '{}' has the role {}; this needs {}", who->username,
                                         role_name(who->role), role_name(need)));
    return std::nullopt;
  }

  Response monailabel_infer(const Request& req) {
    const auto model = req.captures.at(0);
    if (auto bad = check_model(model)) return *bad;
    const json params = parse_params(req);
    if (auto bad = check_clicks(model, params)) return *bad;
    std::shared_ptr<Session> session;
    std::unique_ptr<Upload> upload;
    std::string path, stem = "result";
    const auto image_id = req.query_value("image");
    if (req.has_query("session_id")) session = sessions->get(req.query_value("session_id"));
    if (!session) {
      if (const Part* part = image_part(req)) {
        upload = save_upload(*part);
        path = upload->path;
      } else if (!image_id.empty()) {
        if (!valid_datastore_id(image_id))
          return Response::error(400, "'" + image_id + "' is not a valid image id");
        path = datastore.image_path(image_id).value_or("");
        if (path.empty())
          return Response::error(404, "no image '" + image_id + "' in the datastore");
      } else {
        return Response::error(400, "no image: give ?image=ID, a session_id or a file part 'file'");
      }
    }
    if (!image_id.empty()) stem = image_id;
    for (auto& c : stem)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
    const auto ext = result_extension(params);
    const auto output = req.query_value("output", "image");
    return on_worker([&, ext] {
      const auto r = segment(model, session, path, ext, stem, params);
      Response out;
      if (output == "json") {
        out = Response::json(json_text(r.params));
      } else if (req.has_query("output") && output == "image") {
        out = raw_reply(r);
      } else {
        out = multipart_reply(r.params, r, "image");
      }
      out.headers["Server-Timing"] = server_timing(r.times);
      return out;
    });
  }

  Response status_page(const Request&) {
    std::string rows;
    const auto st = store.status();
    for (const auto& m : store.list()) {
      const bool loaded =
          std::find(st["loaded"].begin(), st["loaded"].end(), m.name) != st["loaded"].end();
      std::string labels;
      for (const auto& l : m.labels) labels += (labels.empty() ? "" : ", ") + l;
      rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                          html_escape(m.name), html_escape(m.type), html_escape(labels),
                          loaded ? "loaded" : "not loaded", html_escape(m.source));
    }
    const auto q = queue_json();
    Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = fmt::format(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Barton</title></head><body>"
        "<h1>Barton annotation server</h1><p>version {}; up {:.0f} s; {} requests, {} failed</p>"
        "<h2>Models</h2><table border=\"1\"><tr><th>name</th><th>type</th><th>labels</th>"
        "<th>state</th><th>source</th></tr>\n{}</table>"
        "<h2>Queue</h2><p>{} workers, {} running, {} waiting (capacity {})</p>"
        "<h2>Memory</h2><p>loaded weights {} bytes, budget {} bytes, {} loads, {} evictions</p>"
        "<h2>Sessions</h2><p>{} open</p>"
        "<p>APIs: <a href=\"/v1/models\">/v1/models</a> (AIAA), <a href=\"/info/\">/info/</a> "
        "(MONAI Label), <a href=\"/logs?lines=100\">/logs</a></p></body></html>\n",
        BARTON_VERSION,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        requests.load(), failures.load(), rows, q["workers"].get<int>(),
        q["running"].get<std::size_t>(), q["waiting"].get<std::size_t>(),
        q["capacity"].get<std::size_t>(), st["loaded_bytes"].get<std::size_t>(),
        st["budget_bytes"].get<std::size_t>(), st["loads"].get<uint64_t>(),
        st["evictions"].get<uint64_t>(), sessions->size());
    return r;
  }

  /// Wraps a member handler: checks the caller's token and role (with --auth; `open` routes
  /// need none) and turns a TaskError into its status.
  Handler wrap(Response (Impl::*fn)(const Request&), Role need = Role::kUser, bool open = false) {
    return [this, fn, need, open](const Request& req) {
      try {
        if (!open)
          if (auto denied = authorize(req, need)) return *denied;
        return (this->*fn)(req);
      } catch (const TaskError& e) {
        return Response::error(e.status, e.message);
      }
    };
  }

  Response deepgrow(const Request& r) {
    const auto model = r.query_value("model");
    if (auto bad = check_model(model)) return *bad;
    const auto type = store.find(model)->type;
    if (type != "deepgrow" && type != "pipeline") return aiaa_interactive(r, "deepgrow");
    return aiaa_segmentation(r);
  }
  Response dextr3d(const Request& r) {
    const auto model = r.query_value("model");
    if (auto bad = check_model(model)) return *bad;
    if (store.find(model)->type != "annotation") return aiaa_interactive(r, "dextr3d");
    return aiaa_segmentation(r);
  }

  // --- model administration (Clara AIAA's /admin/model/{name}) ---------------------------------

  fs::path admin_dir() const { return fs::path(work_dir) / "admin-models"; }

  /// The MMAR root or plan file of an uploaded model's folder; empty when it holds neither.
  static std::string admin_source(const fs::path& dir) {
    if (fs::is_regular_file(dir / "model.plan")) return (dir / "model.plan").string();
    if (fs::is_directory(dir / "mmar")) return find_mmar_root((dir / "mmar").string());
    return "";
  }

  bool uploaded(const std::string& name) const { return fs::is_directory(admin_dir() / name); }

  Response admin_model_get(const Request& req) {
    const auto& name = req.captures.at(0);
    const auto info = store.find(name);
    if (!info) return Response::error(404, "no model named '" + name + "'");
    // Clara answers the model's config_aiaa.json; Barton adds where the model comes from.
    json j = info->aiaa_json();
    const auto cfg = fs::path(info->source) / "config" / "config_aiaa.json";
    if (fs::is_regular_file(cfg)) {
      try {
        j = json::parse(read_file(cfg.string()));
      } catch (const json::exception&) {
      }
    }
    j["name"] = name;
    j["source"] = info->source;
    j["uploaded"] = uploaded(name);
    return Response::json(json_text(j));
  }

  std::mutex admin_mu;  ///< One model change at a time.

  Response admin_model_put(const Request& req) {
    const auto& name = req.captures.at(0);
    std::lock_guard<std::mutex> lock(admin_mu);
    if (!valid_datastore_id(name))
      return Response::error(400, "'" + name +
                                      "' is not a valid model name (letters, digits, "
                                      "'_', '-', '.'; no path)");
    if (req.parts.empty())
      return Response::error(501,
                             "NGC pulls ({\"path\", \"version\"}) need the internet, which this "
                             "server does not use: upload the MMAR as a zip (file part "
                             "'data') or a Barton plan instead");
    const Part* data = find_part(req.parts, "data");
    if (!data || data->data.empty()) data = find_part(req.parts, "file");
    if (!data || data->data.empty())
      return Response::error(400,
                             "PUT /admin/model/NAME needs a file part 'data': an MMAR as a "
                             "zip archive, or a Barton plan (barton export)");
    const Part* config = find_part(req.parts, "config");
    json aiaa;
    if (config && !config->data.empty()) {
      try {
        aiaa = json::parse(config->data);
      } catch (const json::exception& e) {
        return Response::error(400, std::string("part 'config' is not JSON: ") + e.what());
      }
      if (!aiaa.is_object()) return Response::error(400, "part 'config' must be a JSON object");
    }
    fs::create_directories(admin_dir());
    const fs::path staging = admin_dir() / (".new-" + new_uuid());
    std::error_code ec;
    try {
      fs::create_directories(staging);
      if (zip_holds_mmar(data->data)) {
        extract_zip(data->data, (staging / "mmar").string(),
                    std::max<std::uint64_t>(o.http.max_body_bytes, 1) * 8);
        const auto root = find_mmar_root((staging / "mmar").string());
        if (root.empty())
          throw TaskError{400,
                          "the archive holds no MMAR (one folder with "
                          "config/config_inference.json)"};
        if (!aiaa.is_null())
          write_file_atomic((fs::path(root) / "config" / "config_aiaa.json").string(),
                            aiaa.dump(2) + "\n");
      } else if (looks_like_zip(data->data) && !aiaa.is_null()) {
        // Clara 4.x: config_aiaa.json + a TorchScript model, made into an MMAR.
        write_aiaa_mmar(aiaa, data->data, (staging / "mmar").string());
      } else if (looks_like_zip(data->data)) {
        write_file_atomic((staging / "model.plan").string(), data->data);
      } else {
        throw TaskError{400, "part 'data' is neither a zip archive (an MMAR) nor a Barton plan"};
      }
      describe_model(admin_source(staging), name, o.sets);  // refuses what cannot be served
      const fs::path final_dir = admin_dir() / name;
      // ".old-<uuid>-<name>": a server killed between the two renames finds it at the next start
      // and puts it back (load_uploaded_models).
      const fs::path old = admin_dir() / (".old-" + new_uuid() + "-" + name);
      const bool replaced = fs::exists(final_dir) || store.find(name).has_value();
      if (fs::exists(final_dir)) fs::rename(final_dir, old);
      fs::rename(staging, final_dir);
      auto info = describe_model(admin_source(final_dir), name, o.sets);
      fs::remove_all(old, ec);
      json j = {
          {"name", name}, {"type", info.type}, {"source", info.source}, {"replaced", replaced}};
      store.add(std::move(info));
      log::info(fmt::format("serve: model '{}' {} from an upload", name,
                            replaced ? "replaced" : "added"));
      return Response::json(json_text(j));
    } catch (const TaskError& e) {
      fs::remove_all(staging, ec);
      return Response::error(e.status, e.message);
    } catch (const std::exception& e) {
      fs::remove_all(staging, ec);
      return Response::error(422, e.what());
    }
  }

  Response admin_model_patch(const Request& req) {
    const auto& name = req.captures.at(0);
    std::lock_guard<std::mutex> lock(admin_mu);
    const auto info = store.find(name);
    if (!info) return Response::error(404, "no model named '" + name + "'");
    if (!uploaded(name) || fs::is_regular_file(info->source))
      return Response::error(409, "model '" + name +
                                      "' was not uploaded as an MMAR through PUT "
                                      "/admin/model: its files are not the server's to change");
    json aiaa;
    try {
      aiaa = json::parse(req.body);
    } catch (const json::exception& e) {
      return Response::error(400, std::string("the body is not JSON: ") + e.what());
    }
    if (!aiaa.is_object())
      return Response::error(400, "the body must be a config_aiaa.json object");
    const auto cfg = fs::path(info->source) / "config" / "config_aiaa.json";
    const auto before = fs::is_regular_file(cfg) ? read_file(cfg.string()) : std::string();
    write_file_atomic(cfg.string(), aiaa.dump(2) + "\n");
    try {
      auto fresh = describe_model(info->source, name, o.sets);
      json j = {{"name", name}, {"type", fresh.type}, {"source", fresh.source}};
      store.add(std::move(fresh));
      return Response::json(json_text(j));
    } catch (const std::exception& e) {
      if (before.empty())
        fs::remove(cfg);
      else
        write_file_atomic(cfg.string(), before);  // the model keeps its config
      return Response::error(422, e.what());
    }
  }

  Response admin_model_delete(const Request& req) {
    const auto& name = req.captures.at(0);
    std::lock_guard<std::mutex> lock(admin_mu);
    if (!store.remove(name)) return Response::error(404, "no model named '" + name + "'");
    std::error_code ec;
    const bool files = uploaded(name);
    if (files) fs::remove_all(admin_dir() / name, ec);
    log::info("serve: model '" + name + "' deleted");
    return Response::json(json_text({{"deleted", name}, {"files_removed", files}}));
  }

  /// At start: the models uploaded before (a --work-dir kept across runs).
  void load_uploaded_models() {
    if (!fs::is_directory(admin_dir())) return;
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(admin_dir())) entries.push_back(e.path());
    for (const auto& path : entries) {
      const auto name = path.filename().string();
      std::error_code ec;
      if (name.rfind(".new-", 0) == 0) {
        fs::remove_all(path, ec);  // an upload a killed server did not finish
        continue;
      }
      if (name.rfind(".old-", 0) == 0) {
        // ".old-<36-character uuid>-<name>": the model a killed server was replacing; it is the
        // one to serve when the replacement never got its place.
        const auto model = name.size() > 42 ? name.substr(42) : std::string();
        if (!model.empty() && valid_datastore_id(model) && !fs::exists(admin_dir() / model))
          fs::rename(path, admin_dir() / model, ec);
        else
          fs::remove_all(path, ec);
      }
    }
    for (const auto& e : fs::directory_iterator(admin_dir())) {
      const auto name = e.path().filename().string();
      if (name.rfind(".", 0) == 0) continue;
      if (!e.is_directory() || store.find(name)) continue;
      try {
        store.add(describe_model(admin_source(e.path()), name, o.sets));
      } catch (const std::exception& x) {
        log::warn("serve: uploaded model '" + name + "' is not served: " + x.what());
      }
    }
  }

  // --- the browser viewer (viewer/: index.html and the NiiVue bundle npm builds into dist/) ------

  std::string viewer_dir() const {
    if (!o.viewer_dir.empty()) return o.viewer_dir;
    if (const char* env = std::getenv("BARTON_VIEWER_DIR"); env && *env) return env;
#ifdef BARTON_SOURCE_VIEWER_DIR
    return BARTON_SOURCE_VIEWER_DIR;
#else
    return "viewer";
#endif
  }

  Response viewer_file(const std::string& rel, const std::string& type) const {
    const auto path = fs::path(viewer_dir()) / rel;
    if (!fs::is_regular_file(path))
      return Response::error(404, "the viewer is not built: " + path.string() +
                                      " is missing (run `make viewer`, or --viewer-dir)");
    Response r;
    r.content_type = type;
    r.body = read_file(path);
    r.headers["Cache-Control"] = "no-cache";
    return r;
  }
  Response viewer_page(const Request&) {
    return viewer_file("index.html", "text/html; charset=utf-8");
  }
  Response viewer_asset(const Request& req) {
    if (req.captures.at(0) != "viewer.js") return Response::error(404, "no such viewer file");
    return viewer_file("dist/viewer.js", "text/javascript; charset=utf-8");
  }

  void add_routes() {
    auto& h = *http;
    const Role annotator = Role::kAnnotator;
    h.route("GET", "/", wrap(&Impl::status_page));
    h.route("GET", "/viewer", wrap(&Impl::viewer_page, Role::kUser, true));
    h.route("GET", "/viewer/", wrap(&Impl::viewer_page, Role::kUser, true));
    h.route("GET", "/viewer/{file}", wrap(&Impl::viewer_asset, Role::kUser, true));
    h.route("GET", "/v1/models", wrap(&Impl::models));
    h.route("POST", "/v1/segmentation", wrap(&Impl::aiaa_segmentation));
    h.route("POST", "/v1/inference", wrap(&Impl::aiaa_segmentation));
    h.route("POST", "/v1/deepgrow", wrap(&Impl::deepgrow));
    h.route("POST", "/v1/dextr3d", wrap(&Impl::dextr3d));
    h.route("POST", "/v1/mask2polygon", wrap(&Impl::mask2polygon));
    h.route("POST", "/v1/fixpolygon", wrap(&Impl::fixpolygon));
    h.route("PUT", "/session/", wrap(&Impl::session_create));
    h.route("GET", "/session/{id}", wrap(&Impl::session_get));
    h.route("DELETE", "/session/{id}", wrap(&Impl::session_delete));
    h.route("GET", "/logs", wrap(&Impl::logs));
    h.route("GET", "/info/", wrap(&Impl::info));
    h.route("GET", "/datastore/", wrap(&Impl::datastore_list));
    h.route("PUT", "/datastore/", wrap(&Impl::datastore_image_put, annotator));
    h.route("GET", "/datastore/image", wrap(&Impl::datastore_image_get));
    h.route("PUT", "/datastore/image", wrap(&Impl::datastore_image_put, annotator));
    h.route("GET", "/datastore/label", wrap(&Impl::datastore_label_get));
    h.route("PUT", "/datastore/label", wrap(&Impl::datastore_label_put, annotator));
    h.route("POST", "/infer/{model}", wrap(&Impl::monailabel_infer));
    h.route("POST", "/activelearning/{strategy}", wrap(&Impl::activelearning));
    h.route("POST", "/train/", wrap(&Impl::train_start, Role::kAdmin));
    h.route("POST", "/train/{model}", wrap(&Impl::train_start, Role::kAdmin));
    h.route("GET", "/train/", wrap(&Impl::train_status));
    h.route("DELETE", "/train/", wrap(&Impl::train_stop, Role::kAdmin));
    h.route("GET", "/admin/model/{name}", wrap(&Impl::admin_model_get, Role::kAdmin));
    h.route("PUT", "/admin/model/{name}", wrap(&Impl::admin_model_put, Role::kAdmin));
    h.route("PATCH", "/admin/model/{name}", wrap(&Impl::admin_model_patch, Role::kAdmin));
    h.route("DELETE", "/admin/model/{name}", wrap(&Impl::admin_model_delete, Role::kAdmin));
    h.route("GET", "/auth/", wrap(&Impl::auth_info, Role::kUser, true));
    h.route("POST", "/auth/token", wrap(&Impl::auth_token, Role::kUser, true));
    h.route("GET", "/auth/token/valid", wrap(&Impl::auth_token_valid, Role::kUser, true));
    h.route("DELETE", "/auth/token", wrap(&Impl::auth_logout, Role::kUser, true));
  }

  void log_request(const Request& req, const Response& res, double seconds) {
    ++requests;
    if (res.status >= 400) ++failures;
    const auto timing = res.headers.count("Server-Timing") ? res.headers.at("Server-Timing") : "";
    auto line = fmt::format("{} {} {} {} {} {:.3f}s {}B{}", req.remote, req.method, req.path,
                            req.version, res.status, seconds, res.body.size(),
                            timing.empty() ? "" : " [" + timing + "]");
    if (res.status >= 400 && res.content_type == "application/json") line += " " + res.body;
    log::info("serve: " + line);
    request_log.add(line);
  }
};

AnnotationServer::AnnotationServer(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& im = *impl_;
  if (im.o.work_dir.empty()) {
    im.work_dir = (fs::temp_directory_path() / fmt::format("barton-serve-{}", new_uuid())).string();
    im.own_work_dir = true;
  } else {
    im.work_dir = im.o.work_dir;
  }
  fs::create_directories(im.work_dir);
  for (const auto& m : im.o.models)
    for (const auto& src : find_model_sources(m)) {
      // A Clara 4.x deployment folder is served as the MMAR made of it, under its own name.
      const auto ts = aiaa_deployment_model(src);
      auto info = ts.empty() ? describe_model(src, "", im.o.sets)
                             : describe_model(im.deployment_as_mmar(src, ts),
                                              fs::path(src).filename().string(), im.o.sets);
      if (im.store.find(info.name))
        throw Error("two models are named '" + info.name + "' (" + src + " and " +
                    im.store.find(info.name)->source + ")");
      im.store.add(std::move(info));
    }
  im.load_uploaded_models();
  for (const auto& set : im.o.sets)
    if (const auto name = set_model(set); name && !im.store.find(*name))
      throw Error("--set " + set + ": no model named '" + *name + "' is served");
  for (const auto& m : im.store.list()) {
    if (m.type != "pipeline") continue;
    try {
      im.pipeline_stages(m);
    } catch (const TaskError& e) {
      throw Error(m.source + "/config/config_aiaa.json: " + e.message);
    }
  }
  auto* impl = impl_.get();
  im.trainer = std::make_unique<TrainRunner>(
      im.o.barton_exe.empty() ? current_executable() : im.o.barton_exe,
      [impl](json& s) { impl->publish(s); });
  im.sessions = std::make_unique<SessionStore>((fs::path(im.work_dir) / "sessions").string(),
                                               im.o.session_expiry_s, im.o.session_max_expiry_s);
}

AnnotationServer::~AnnotationServer() {
  stop();
  impl_->trainer.reset();  // stops a running fine-tune; its monitor may still publish
  if (impl_->own_work_dir) {
    std::error_code ec;
    fs::remove_all(impl_->work_dir, ec);
  }
}

int AnnotationServer::start() {
  auto& im = *impl_;
  im.queue = std::make_unique<TaskQueue>(im.o.workers, im.o.queue_capacity);
  auto http_options = im.o.http;
  auto* impl = impl_.get();
  http_options.on_done = [impl](const Request& q, const Response& r, double s) {
    impl->log_request(q, r, s);
  };
  im.http = std::make_unique<HttpServer>(http_options);
  im.add_routes();
  return im.http->start();
}

void AnnotationServer::wait() {
  if (impl_->http) impl_->http->wait();
}

void AnnotationServer::stop() {
  if (impl_->http) impl_->http->stop();
  if (impl_->queue) impl_->queue->stop();
}

}  // namespace barton::serve
