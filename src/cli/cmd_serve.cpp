// barton serve: the annotation server (AIAA v1 and MONAI Label APIs) over MMARs and plans.
#include <csignal>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/errors.h"
#include "serve/auth.h"
#include "serve/server.h"
#include <pthread.h>
#include <signal.h>

namespace barton::cli {

namespace {

struct ServeArgs {
  serve::ServerOptions o;
  std::size_t max_upload_mb = 1024;
};

}  // namespace

void setup_serve(CLI::App& sub, Runner& runner) {
  auto a = std::make_shared<ServeArgs>();
  sub.add_option("--models", a->o.models,
                 "MMAR folders, plans, or folders holding them (each MMAR is one model, named "
                 "after its folder)")
      ->required();
  sub.add_option("--set", a->o.sets,
                 "Override in every model's inference config: KEY=VALUE or /json/pointer=VALUE; "
                 "NAME:KEY=VALUE overrides model NAME's only")
      ->take_all();
  sub.add_option("--datastore", a->o.datastore,
                 "Folder of images that MONAI Label clients name by id (?image=ID)");
  sub.add_option("--viewer-dir", a->o.viewer_dir,
                 "The browser viewer's folder (default: $BARTON_VIEWER_DIR, else the source tree's "
                 "viewer/)");
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
  sub.add_option("--auth", a->o.auth_file,
                 "users.json with salted password hashes and roles (`barton serve-user` writes "
                 "it): every route then needs a bearer token from POST /auth/token");
  sub.add_option("--token-expiry", a->o.token_expiry_s,
                 "Seconds an issued token stays valid (default 3600)");
  runner = [a]() -> int {
    a->o.http.max_body_bytes = a->max_upload_mb * 1024 * 1024;
    // SIGINT and SIGTERM are blocked here, before the server starts its threads (they inherit the
    // mask), and taken by sigwait below: stopping joins threads, which no signal handler may do,
    // and a handler that starts a thread can deadlock on the allocator under load.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    serve::AnnotationServer server(a->o);
    const int port = server.start();
    std::cout << fmt::format("barton serve: listening on {}://{}:{}",
                             a->o.http.tls_cert.empty() ? "http" : "https", a->o.http.host, port)
              << std::endl;
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    server.stop();
    std::cout << "barton serve: stopped" << std::endl;
    return 0;
  };
}

namespace {
struct UserArgs {
  std::string file, user;
  std::vector<std::string> roles;
  int iterations = 600000;
};
}  // namespace

void setup_serve_user(CLI::App& sub, Runner& runner) {
  auto a = std::make_shared<UserArgs>();
  sub.add_option("--auth", a->file, "The users file (created when missing, mode 0600)")->required();
  sub.add_option("--user", a->user, "User name")->required();
  sub.add_option("--role", a->roles, "user, annotator, reviewer or admin (repeatable)")->required();
  sub.add_option("--iterations", a->iterations,
                 "PBKDF2-SHA256 iterations (default 600000; at least 1000)");
  sub.footer(
      "The password is the first line of standard input, e.g.\n"
      "  printf '%s\\n' \"$PASSWORD\" | barton serve-user --auth users.json --user ana "
      "--role annotator");
  runner = [a]() -> int {
    serve::AuthUser u;
    u.username = a->user;
    for (const auto& r : a->roles) {
      const auto role = serve::parse_role(r);
      if (!role)
        throw ConfigError("--role", "",
                          "unknown role '" + r + "' (user, annotator, reviewer, admin)");
      u.roles.push_back(*role);
    }
    std::string password;
    std::getline(std::cin, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.size() < 8)
      throw Error("the password (first line of standard input) must have at least 8 characters");
    u.password = serve::hash_password(password, a->iterations);
    serve::write_user(a->file, u);
    std::string roles;
    for (auto r : u.roles) roles += std::string(roles.empty() ? "" : ", ") + serve::role_name(r);
    std::cout << fmt::format("barton serve-user: {} ({}) written to {}", u.username, roles, a->file)
              << std::endl;
    return 0;
  };
}

}  // namespace barton::cli
