#pragma once
/// `barton serve`: the annotation server. NVIDIA AIAA's v1 API and MONAI Label's API over the
/// same models (docs/serve.md). HTTP threads parse, validate and queue; worker threads own the
/// models and run every tensor operation.

#include <memory>
#include <string>
#include <vector>

#include "serve/http.h"

namespace barton::serve {

struct ServerOptions {
  std::vector<std::string> models;   ///< MMAR folders, folders of MMARs, or plan files.
  std::vector<std::string> sets;     ///< `--set` overrides of every model's inference config.
  std::string datastore;             ///< Images and labels (MONAI Label's /datastore/; "" = none).
  HttpOptions http;                  ///< Address, port, TLS, upload limit.
  int workers = 1;                   ///< Worker threads (each runs one request at a time).
  std::size_t queue_capacity = 32;   ///< Requests that may wait; more get 503.
  std::size_t memory_budget_mb = 0;  ///< Loaded weights above this unload LRU models; 0 = none.
  std::string device = "auto";       ///< auto, cpu, cuda[:N].
  int session_expiry_s = 3600;       ///< Default idle expiry of a session.
  int session_max_expiry_s = 86400;  ///< The longest expiry a client may ask for.
  std::string work_dir;              ///< Sessions and request files ("" = a temp folder).
  std::string auth_file;             ///< users.json: bearer tokens required ("" = no auth).
  int token_expiry_s = 3600;         ///< How long an issued token is valid.
  std::string barton_exe;            ///< The binary whose `finetune` /train/ runs ("" = this one).
  /// The browser viewer's folder (index.html, dist/viewer.js; "" = $BARTON_VIEWER_DIR, else the
  /// source tree's viewer/ this binary was built from).
  std::string viewer_dir;
};

/// Thread-safety: start/stop from one thread.
class AnnotationServer {
 public:
  /// Describes every model (throws IoError / ConfigError naming the MMAR when one is not
  /// servable); loads none yet.
  explicit AnnotationServer(ServerOptions options);
  ~AnnotationServer();
  /// Binds and serves in the background; returns the port.
  int start();
  /// Blocks until stop().
  void wait();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The model sources under `path`: itself when it is a plan file or an MMAR (has
/// config/config_inference.json), else each such folder or plan directly inside it.
std::vector<std::string> find_model_sources(const std::string& path);

}  // namespace barton::serve
