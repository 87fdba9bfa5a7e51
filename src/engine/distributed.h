#pragma once
/// Data-parallel training on PyTorch's own distributed backend (c10d): rendezvous through a
/// TCPStore, collectives through ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA builds; tensors
/// are moved to the rank's GPU for each collective and back where needed). Compiles against
/// LibTorch 1.13 (ProcessGroup) and 2.x (Backend). The c10d headers stay inside distributed.cpp.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace barton::engine {

/// Who this process is in a job. Read from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
/// MASTER_ADDR, MASTER_PORT), else Open MPI's (OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK), else
/// Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID); a single process when none is set.
struct DistInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single process";  ///< Which variables it came from.
  /// "gloo" (CPU tensors) or "nccl" (CUDA LibTorch builds: collectives on GPU local_rank).
  std::string backend = "gloo";
};
DistInfo dist_from_env();

/// A process group. Thread-safety: one caller thread.
class Distributed {
 public:
  /// Joins the group; every rank must call it. Throws Error naming the address when the
  /// rendezvous does not complete within `timeout`.
  Distributed(const DistInfo& info, std::chrono::milliseconds timeout);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  const std::string& backend() const { return info_.backend; }

  /// Overwrites `tensors` with rank 0's values.
  void broadcast(const std::vector<at::Tensor>& tensors);
  /// Replaces each tensor by the mean over ranks; tensors are packed into buckets of about
  /// `bucket_mb` so that few collectives run.
  void allreduce_mean(const std::vector<at::Tensor>& tensors, double bucket_mb = 25.0);
  /// Sum of a scalar over ranks.
  double allreduce_sum(double value);
  /// In-place sum of a tensor over ranks (SyncBatchNorm's statistics).
  void allreduce_sum(at::Tensor& t);
  /// Rows [N_r, C] of every rank (N_r may differ, 0 included; C is taken from the ranks that have
  /// rows), concatenated in rank order: [sum N_r, C], on every rank.
  at::Tensor allgather_rows(const at::Tensor& rows);
  /// Every rank's strings, concatenated in rank order, on every rank.
  std::vector<std::string> allgather_strings(const std::vector<std::string>& items);
  void barrier();

 private:
  friend class GradReducer;
  struct Impl;
  DistInfo info_;
  std::unique_ptr<Impl> impl_;
};

/// Gradient averaging overlapped with backward (PyTorch DDP's bucketed reducer): parameters are
/// packed into buckets of about `bucket_mb` in reverse order (the order backward produces their
/// gradients); a hook on each parameter copies its gradient into the bucket's buffer, and a
/// bucket's all-reduce starts as soon as its last gradient arrives, while backward goes on.
class GradReducer {
 public:
  GradReducer(Distributed& dist, const std::vector<at::Tensor>& params, double bucket_mb = 25.0);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;
  /// The next backward ends an optimizer step: its gradients (plus what .grad already holds from
  /// accumulated iterations), divided by `divisor`, are reduced as they arrive.
  void arm(double divisor);
  /// After that backward: waits for every bucket (starting those whose parameters got no
  /// gradient) and writes the mean over ranks into each parameter's .grad. Returns the seconds
  /// spent waiting (the communication that backward did not hide).
  double finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace barton::engine
