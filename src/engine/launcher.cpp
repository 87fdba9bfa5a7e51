#include "engine/launcher.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "core/errors.h"
#include "core/logging.h"
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace barton::engine {

const std::vector<std::string>& launcher_flags() {
  static const std::vector<std::string> flags = {"--nproc", "--nnodes", "--node-rank",
                                                 "--master-addr", "--master-port"};
  return flags;
}

std::vector<std::string> without_launcher_flags(const std::vector<std::string>& command) {
  const auto& flags = launcher_flags();
  auto is_flag = [&](const std::string& s) {
    return std::find(flags.begin(), flags.end(), s) != flags.end();
  };
  std::vector<std::string> out;
  for (std::size_t i = 0; i < command.size(); ++i) {
    const auto& x = command[i];
    if (is_flag(x)) {
      ++i;  // and its value
      continue;
    }
    const auto eq = x.find('=');
    if (eq != std::string::npos && is_flag(x.substr(0, eq))) continue;
    out.push_back(x);
  }
  return out;
}

int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 29500;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

namespace {

/// Forks and execs one rank; returns its pid.
pid_t start_rank(
    const LaunchOptions& o, int local, int world, int port, std::vector<std::string> command) {
  const int rank = o.node_rank * o.nproc + local;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const pid_t pid = fork();
  if (pid < 0) throw Error("cannot start rank " + std::to_string(rank) + ": fork failed");
  if (pid > 0) return pid;
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
  setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  if (!std::getenv("BARTON_THREADS"))
    setenv("BARTON_THREADS", std::to_string(std::max(1, cores / o.nproc)).c_str(), 1);
  std::vector<char*> argv;
  for (auto& x : command) argv.push_back(x.data());
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  _exit(127);
}

/// Stops the ranks still running: SIGTERM, up to 5 s to exit, then SIGKILL.
void stop_all(std::map<pid_t, int>& ranks) {
  for (const auto& [p, r] : ranks) kill(p, SIGTERM);
  int status = 0;
  for (int i = 0; i < 50 && !ranks.empty(); ++i) {
    for (auto r = ranks.begin(); r != ranks.end();) {
      if (waitpid(r->first, &status, WNOHANG) == r->first)
        r = ranks.erase(r);
      else
        ++r;
    }
    usleep(100000);
  }
  for (const auto& [p, r] : ranks) kill(p, SIGKILL);
}

}  // namespace

void launch_ranks(const LaunchOptions& o, const std::vector<std::string>& command) {
  const int world = o.nnodes * o.nproc;
  const int port = o.master_port > 0 ? o.master_port : (o.nnodes == 1 ? free_local_port() : 29500);
  std::map<pid_t, int> ranks;
  for (int local = 0; local < o.nproc; ++local)
    ranks[start_rank(o, local, world, port, command)] = o.node_rank * o.nproc + local;
  log::info(fmt::format("Started {} rank(s) of {} on this machine (rendezvous {}:{})", o.nproc,
                        world, o.master_addr, port));
  int failures = 0;
  std::string first;
  while (!ranks.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    const auto it = ranks.find(pid);
    if (it == ranks.end()) continue;
    const int rank = it->second;
    ranks.erase(it);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    if (failures++ > 0) continue;
    first = WIFSIGNALED(status)
                ? fmt::format("rank {} was killed by signal {}", rank, WTERMSIG(status))
                : fmt::format("rank {} exited with status {}", rank, WEXITSTATUS(status));
    stop_all(ranks);
  }
  if (failures > 0) throw Error(first + "; the other ranks were stopped");
}

}  // namespace barton::engine
