#pragma once
/// Starts the local ranks of a data-parallel run as copies of a command (torchrun's job): each
/// child gets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT (and BARTON_THREADS, its
/// share of the cores, unless set); when one fails the others are stopped.

#include <string>
#include <vector>

namespace barton::engine {

/// torchrun's options.
struct LaunchOptions {
  int nproc = 0;        ///< Ranks on this machine (0: no launch).
  int nnodes = 1;       ///< Machines.
  int node_rank = 0;    ///< This machine's index.
  int master_port = 0;  ///< 0: a free local port on one machine, 29500 on several.
  std::string master_addr = "127.0.0.1";
};

/// The options of the command line that `launch_ranks` consumes (removed from what each rank runs).
const std::vector<std::string>& launcher_flags();

/// `command` without the launcher's own flags (`--nproc 2`, `--nproc=2`, ...).
std::vector<std::string> without_launcher_flags(const std::vector<std::string>& command);

/// Runs `command` (argv[0] is replaced by this executable) once per local rank and waits for all.
/// Throws barton::Error naming the first rank that failed, after stopping the
/// others (SIGTERM, then SIGKILL after 5 s).
void launch_ranks(const LaunchOptions& options, const std::vector<std::string>& command);

/// A TCP port free on the loopback interface now (29500 if none can be found).
int free_local_port();

}  // namespace barton::engine
