#include "serve/train_runner.h"

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/logging.h"
#include "core/strings.h"
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace barton::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// The last `n` lines of a text file ("" when unreadable).
std::string tail_lines(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  const std::streamoff take = std::min<std::streamoff>(size, 16384);
  in.seekg(size - take);
  std::string text(static_cast<std::size_t>(take), '\0');
  in.read(text.data(), take);
  std::size_t pos = text.size();
  for (std::size_t lines = 0; pos > 0 && lines <= n;) {
    --pos;
    if (text[pos] == '\n' && pos + 1 < text.size()) ++lines;
    if (lines > n) {
      ++pos;
      break;
    }
  }
  return text.substr(pos);
}

}  // namespace

std::string current_executable() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw IoError("/proc/self/exe", "cannot find the running executable: " + ec.message());
  return p.string();
}

TrainRunner::TrainRunner(std::string barton_exe, std::function<void(json&)> on_done)
    : exe_(std::move(barton_exe)), on_done_(std::move(on_done)) {}

TrainRunner::~TrainRunner() {
  pid_t pid;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pid = pid_;
    stop_asked_ = true;
  }
  if (pid > 0) {
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (pid_ <= 0) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  if (monitor_.joinable()) monitor_.join();
}

std::optional<json> TrainRunner::start(const TrainRequest& r) {
  std::unique_lock<std::mutex> lock(mu_);
  if (pid_ > 0) return std::nullopt;
  if (monitor_.joinable()) {  // the previous run has ended: its monitor is finishing
    lock.unlock();
    monitor_.join();
    lock.lock();
    if (pid_ > 0) return std::nullopt;
  }
  fs::create_directories(r.run_dir);
  const auto datalist = (fs::path(r.run_dir) / "datalist.json").string();
  write_file_atomic(datalist, r.datalist.dump(2) + "\n");
  write_file_atomic(fs::path(r.run_dir) / "sources.json", r.sources.dump(2) + "\n");
  const auto log_path = (fs::path(r.run_dir) / "train.log").string();
  std::vector<std::string> args = {
      exe_,
      "finetune",
      r.mmar,
      "--ckpt",
      r.ckpt,
      "--device",
      r.device.empty() ? "auto" : r.device,
      "--set",
      "DATASET_JSON=" + datalist,
      "MMAR_CKPT_DIR=" + (fs::path(r.run_dir) / "models").string(),
      "MMAR_EVAL_OUTPUT_PATH=" + (fs::path(r.run_dir) / "eval").string()};
  if (r.epochs > 0) args.push_back("epochs=" + std::to_string(r.epochs));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  // The server's sockets and files stay with the server (a child holding the listening socket
  // would keep the port busy after the server stops).
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, exe_.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw IoError(exe_, std::string("cannot start the training process: ") + strerror(rc));

  std::string command;
  for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
  json s = {{"id", fs::path(r.run_dir).filename().string()},
            {"model", r.model},
            {"status", "RUNNING"},
            {"start_ts", utc_now()},
            {"pid", pid},
            {"run_dir", r.run_dir},
            {"publish", r.publish},
            {"command", command},
            {"training", r.datalist["training"].size()},
            {"validation", r.datalist["validation"].size()}};
  pid_ = pid;
  stop_asked_ = false;
  status_ = s;
  monitor_ = std::thread([this, pid] { monitor(pid); });
  log::info(fmt::format("serve: training '{}' started (pid {}): {}", r.model, pid, command));
  return s;
}

void TrainRunner::monitor(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  json s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = *status_;
    const bool ok = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
    s["status"] = ok ? "DONE" : stop_asked_ ? "STOPPED" : "FAILED";
    s["end_ts"] = utc_now();
    s["exit"] = WIFEXITED(wstatus) ? fmt::format("exit code {}", WEXITSTATUS(wstatus))
                                   : fmt::format("signal {}", WTERMSIG(wstatus));
    s.erase("pid");
  }
  const auto stats = fs::path(s["run_dir"].get<std::string>()) / "models" / "train_stats.json";
  std::error_code ec;
  if (fs::exists(stats, ec)) {
    try {
      s["train_stats"] = json::parse(read_file(stats));
    } catch (const std::exception&) {
      s["train_stats"] = json::object();
    }
  }
  if (on_done_) {
    try {
      on_done_(s);
    } catch (const std::exception& e) {
      s["published"] = false;
      s["publish_error"] = e.what();
    }
  }
  log::info(fmt::format("serve: training '{}' ended: {} ({})", s["model"].get<std::string>(),
                        s["status"].get<std::string>(), s["exit"].get<std::string>()));
  std::lock_guard<std::mutex> lock(mu_);
  status_ = s;
  pid_ = -1;
}

json TrainRunner::with_log_tail(json s) const {
  s["log_tail"] =
      tail_lines((fs::path(s["run_dir"].get<std::string>()) / "train.log").string(), 20);
  return s;
}

std::optional<json> TrainRunner::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!status_) return std::nullopt;
  return with_log_tail(*status_);
}

bool TrainRunner::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_ > 0;
}

std::optional<json> TrainRunner::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!status_) return std::nullopt;
  if (pid_ > 0) {
    stop_asked_ = true;
    ::kill(pid_, SIGTERM);
    json s = *status_;
    s["status"] = "STOPPING";
    return with_log_tail(s);
  }
  return with_log_tail(*status_);
}

}  // namespace barton::serve
