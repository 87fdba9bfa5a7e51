// barton serve: the annotation server (AIAA v1 and MONAI Label APIs) over MMARs and plans.
#include <csignal>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/errors.h"
#include "serve/server.h"

namespace barton::cli {

namespace {

serve::AnnotationServer* g_server = nullptr;

extern "C" void stop_on_signal(int) {
  // Stopping joins threads, which a signal handler must not do: hand it to a detached thread.
  if (g_server) std::thread([] { g_server->stop(); }).detach();
}

struct ServeArgs {
  serve::ServerOptions o;
  std::size_t max_upload_mb = 1024;
  std::string auth;
};

}  // namespace

void setup_serve(CLI::App& sub, Runner& runner) {
  auto a = std::make_shared<ServeArgs>();
  sub.add_option("--models", a->o.models,
                 "MMAR folders, plans, or folders holding them (each MMAR is one model, named "
                 "after its folder)")
      ->required();
  sub.add_option("--datastore", a->o.datastore,
                 "Folder of images that MONAI Label clients name by id (?image=ID)");
  sub.add_option("--host", a->o.http.host, "Address to listen on (default 127.0.0.1)");
  sub.add_option("--port", a->o.http.port, "Port (default 5000; 0 picks a free one)");
  sub.add_option("--workers", a->o.workers, "Worker threads that run the models (default 1)");
  sub.add_option("--queue", a->o.queue_capacity,
                 "Requests that may wait for a worker; more get 503 (default 32)");
  sub.add_option("--http-threads", a->o.http.threads, "Connection threads (default 8)");
  sub.add_option("--max-upload-mb", a->max_upload_mb,
                 "Largest request body in MiB; larger ones get 413 (default 1024)");
  sub.add_option("--memory-budget-mb", a->o.memory_budget_mb,
                 "Unload least-recently-used models when loaded weights exceed this (default: no "
                 "limit)");
  sub.add_option("--device", a->o.device, "auto, cpu, cuda or cuda:N (default auto)");
  sub.add_option("--session-expiry", a->o.session_expiry_s,
                 "Seconds an idle session lives when the client asks for none (default 3600)");
  sub.add_option("--tls-cert", a->o.http.tls_cert, "PEM certificate: serve HTTPS");
  sub.add_option("--tls-key", a->o.http.tls_key, "PEM private key for --tls-cert");
  sub.add_option("--work-dir", a->o.work_dir,
                 "Where sessions and request files go (default: a temporary folder)");
  sub.add_option("--auth", a->auth, "users.json with salted password hashes (not built yet)");
  runner = [a]() -> int {
    if (!a->auth.empty())
      throw NotSupported("--auth: bearer-token authentication is not built yet (issue #17)");
    a->o.http.max_body_bytes = a->max_upload_mb * 1024 * 1024;
    serve::AnnotationServer server(a->o);
    const int port = server.start();
    std::cout << fmt::format("barton serve: listening on {}://{}:{}",
                             a->o.http.tls_cert.empty() ? "http" : "https", a->o.http.host, port)
              << std::endl;
    g_server = &server;
    std::signal(SIGINT, stop_on_signal);
    std::signal(SIGTERM, stop_on_signal);
    server.wait();
    g_server = nullptr;
    std::cout << "barton serve: stopped" << std::endl;
    return 0;
  };
}

}  // namespace barton::cli
