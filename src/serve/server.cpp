#include "serve/server.h"

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/logging.h"
#include "core/strings.h"
#include "core/version.h"
#include "io/image.h"
#include "serve/model_store.h"
#include "serve/sessions.h"
#include "serve/task_queue.h"

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

bool is_model_source(const fs::path& p) {
  if (fs::is_regular_file(p))
    return p.extension() == ".plan" || p.extension() == ".ts" || p.extension() == ".pt";
  return fs::exists(p / "config" / "config_inference.json");
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
                  "is neither an MMAR (config/config_inference.json), a plan, nor a folder "
                  "holding them");
  return out;
}

struct AnnotationServer::Impl {
  ServerOptions o;
  std::string work_dir;
  bool own_work_dir = false;
  ModelStore store;
  std::unique_ptr<SessionStore> sessions;
  std::unique_ptr<TaskQueue> queue;
  std::unique_ptr<HttpServer> http;
  LogRing request_log;
  std::atomic<uint64_t> requests{0}, failures{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  explicit Impl(ServerOptions opt)
      : o(std::move(opt)), store(o.device, o.memory_budget_mb * 1024 * 1024) {}

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

  /// Worker: segments the image of `session` or at `path` with `model`; writes `ext`.
  ModelReply segment(const std::string& model,
                     const std::shared_ptr<Session>& session,
                     const std::string& path,
                     const std::string& ext,
                     const std::string& stem,
                     const json& params) {
    auto lease = acquire(model);
    std::shared_ptr<const PreparedImage> image = session ? session->prepared_for(model) : nullptr;
    const bool cached = image != nullptr;
    InferResult result;
    try {
      if (!image) image = lease->prepare(session ? session->image_path : path);
      if (session && !cached) session->keep_prepared(model, image);
      result = lease->infer(*image);
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
    if (cached) result.times.read = result.times.pre = 0;
    const auto t0 = std::chrono::steady_clock::now();
    if (params.value("result_dtype", "") == "uint16") {
      result.label.data = result.label.data.to(at::kInt);
      result.label.file_dtype = "uint16";
    }
    const auto dir = fs::path(work_dir) / "requests" / new_uuid();
    fs::create_directories(dir);
    ModelReply r;
    r.filename = stem + ext;
    const auto out = dir / r.filename;
    io::write_image(result.label, out.string());
    r.bytes = read_file(out);
    std::error_code ec;
    fs::remove_all(dir, ec);
    r.times = result.times;
    r.times.write = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.params = {{"model", model},
                {"label_names", lease->info().labels},
                {"points", extreme_points(result.label)},
                {"latencies", r.times.to_json()},
                {"session_cached", cached}};
    return r;
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

  Response aiaa_segmentation(const Request& req) {
    const auto model = req.query_value("model");
    if (auto bad = check_model(model)) return *bad;
    const json params = parse_params(req);
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
    return Response::error(400, "model '" + model + "' is a " + info->type + " model; /v1/" + kind +
                                    " needs an interactive (" +
                                    (kind == "deepgrow" ? "deepgrow" : "annotation") +
                                    ") model, and none is served");
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

  std::vector<std::pair<std::string, std::string>> datastore_images() const {
    std::vector<std::pair<std::string, std::string>> out;
    if (o.datastore.empty() || !fs::is_directory(o.datastore)) return out;
    for (const auto& e : fs::directory_iterator(o.datastore)) {
      if (!e.is_regular_file() || !io::is_supported_image_path(e.path().string())) continue;
      out.emplace_back(io::image_stem(e.path().string()), e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

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
    const auto images = datastore_images();
    json j = {
        {"name", "Barton"},
        {"version", BARTON_VERSION},
        {"description", "Barton annotation server (AIAA v1 and MONAI Label APIs)"},
        {"labels", labels},
        {"models", models},
        {"trainers", json::object()},
        {"strategies", json::object()},
        {"scoring", json::object()},
        {"train_stats", json::object()},
        {"datastore", {{"total", images.size()}, {"completed", 0}, {"label_tags", json::object()}}},
        {"queue", queue_json()},
        {"memory", store.status()},
        {"sessions", sessions->size()}};
    return Response::json(json_text(j));
  }

  Response datastore(const Request&) {
    json objects = json::object();
    for (const auto& [id, path] : datastore_images()) {
      const auto name = fs::path(path).filename().string();
      objects[id] = {{"image", {{"ext", name.substr(id.size())}, {"info", json::object()}}},
                     {"labels", json::object()}};
    }
    json j = {{"name", o.datastore},
              {"description", "Barton datastore (images of --datastore)"},
              {"images_dir", o.datastore},
              {"labels_dir", ""},
              {"objects", objects}};
    return Response::json(json_text(j));
  }

  Response monailabel_infer(const Request& req) {
    const auto model = req.captures.at(0);
    if (auto bad = check_model(model)) return *bad;
    const json params = parse_params(req);
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
        for (const auto& [id, p] : datastore_images())
          if (id == image_id) path = p;
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

  /// Wraps a member handler so that a TaskError becomes its status.
  Handler wrap(Response (Impl::*fn)(const Request&)) {
    return [this, fn](const Request& req) {
      try {
        return (this->*fn)(req);
      } catch (const TaskError& e) {
        return Response::error(e.status, e.message);
      }
    };
  }

  void add_routes() {
    auto& h = *http;
    h.route("GET", "/", wrap(&Impl::status_page));
    h.route("GET", "/v1/models", wrap(&Impl::models));
    h.route("POST", "/v1/segmentation", wrap(&Impl::aiaa_segmentation));
    h.route("POST", "/v1/inference", wrap(&Impl::aiaa_segmentation));
    h.route("POST", "/v1/deepgrow",
            [this](const Request& r) { return aiaa_interactive(r, "deepgrow"); });
    h.route("POST", "/v1/dextr3d",
            [this](const Request& r) { return aiaa_interactive(r, "dextr3d"); });
    h.route("PUT", "/session/", wrap(&Impl::session_create));
    h.route("GET", "/session/{id}", wrap(&Impl::session_get));
    h.route("DELETE", "/session/{id}", wrap(&Impl::session_delete));
    h.route("GET", "/logs", wrap(&Impl::logs));
    h.route("GET", "/info/", wrap(&Impl::info));
    h.route("GET", "/datastore/", wrap(&Impl::datastore));
    h.route("POST", "/infer/{model}", wrap(&Impl::monailabel_infer));
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
  for (const auto& m : im.o.models)
    for (const auto& src : find_model_sources(m)) {
      auto info = describe_model(src);
      if (im.store.find(info.name))
        throw Error("two models are named '" + info.name + "' (" + src + " and " +
                    im.store.find(info.name)->source + ")");
      im.store.add(std::move(info));
    }
  if (im.o.work_dir.empty()) {
    im.work_dir = (fs::temp_directory_path() / fmt::format("barton-serve-{}", new_uuid())).string();
    im.own_work_dir = true;
  } else {
    im.work_dir = im.o.work_dir;
  }
  fs::create_directories(im.work_dir);
  im.sessions = std::make_unique<SessionStore>((fs::path(im.work_dir) / "sessions").string(),
                                               im.o.session_expiry_s, im.o.session_max_expiry_s);
}

AnnotationServer::~AnnotationServer() {
  stop();
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
