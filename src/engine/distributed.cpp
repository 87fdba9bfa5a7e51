#define USE_C10D_GLOO 1
#include "engine/distributed.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include <fmt/format.h>

#include "core/errors.h"

namespace barton::engine {

namespace {
const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}
int env_int(const char* name, int fallback) {
  const char* v = env(name);
  return v ? std::atoi(v) : fallback;
}
}  // namespace

DistInfo dist_from_env() {
  DistInfo d;
  if (env("WORLD_SIZE") && env("RANK")) {
    d.rank = env_int("RANK", 0);
    d.world_size = env_int("WORLD_SIZE", 1);
    d.local_rank = env_int("LOCAL_RANK", d.rank);
    d.source = "torchrun variables (RANK, WORLD_SIZE)";
  } else if (env("OMPI_COMM_WORLD_SIZE")) {
    d.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    d.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    d.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", d.rank);
    d.source = "Open MPI variables (OMPI_COMM_WORLD_*)";
  } else if (env("SLURM_NTASKS") && env("SLURM_PROCID")) {
    d.rank = env_int("SLURM_PROCID", 0);
    d.world_size = env_int("SLURM_NTASKS", 1);
    d.local_rank = env_int("SLURM_LOCALID", d.rank);
    d.source = "Slurm variables (SLURM_PROCID, SLURM_NTASKS)";
  }
  if (const char* a = env("MASTER_ADDR")) d.master_addr = a;
  d.master_port = env_int("MASTER_PORT", d.master_port);
  if (d.world_size < 1 || d.rank < 0 || d.rank >= d.world_size) {
    throw Error(fmt::format("bad distributed setup from {}: rank {} of world size {}", d.source, d.rank, d.world_size));
  }
  return d;
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

Distributed::Distributed(const DistInfo& info, std::chrono::milliseconds timeout) : info_(info), impl_(std::make_unique<Impl>()) {
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(info.master_port);
    so.isServer = info.rank == 0;
    so.numWorkers = static_cast<std::size_t>(info.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(info.master_addr, so);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // Loopback jobs bind Gloo to 127.0.0.1; multi-node jobs to the interface of this host's name.
    const bool loopback = info.master_addr == "127.0.0.1" || info.master_addr == "localhost";
    opts->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                     : c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, info.rank, info.world_size, opts);
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {} of {}: cannot join the process group at {}:{} ({}): {}", info.rank, info.world_size,
                            info.master_addr, info.master_port, info.source, e.what()));
  }
}

Distributed::~Distributed() = default;

void Distributed::broadcast(const std::vector<at::Tensor>& tensors) {
  for (const auto& t : tensors) {
    std::vector<at::Tensor> v = {t.is_contiguous() ? t : t.contiguous()};
    impl_->pg->broadcast(v)->wait();
    if (!t.is_contiguous()) t.copy_(v[0]);
  }
}

void Distributed::allreduce_mean(const std::vector<at::Tensor>& tensors, double bucket_mb) {
  const double limit = bucket_mb * 1024.0 * 1024.0;
  std::size_t i = 0;
  while (i < tensors.size()) {
    std::vector<at::Tensor> bucket;
    double bytes = 0;
    const auto dtype = tensors[i].scalar_type();
    while (i < tensors.size() && tensors[i].scalar_type() == dtype && (bucket.empty() || bytes < limit)) {
      bytes += static_cast<double>(tensors[i].numel() * tensors[i].element_size());
      bucket.push_back(tensors[i++]);
    }
    std::vector<at::Tensor> flat = {at::cat([&] {
      std::vector<at::Tensor> f;
      for (const auto& t : bucket) f.push_back(t.reshape({-1}));
      return f;
    }())};
    impl_->pg->allreduce(flat)->wait();
    flat[0].div_(static_cast<double>(info_.world_size));
    int64_t off = 0;
    for (const auto& t : bucket) {
      t.copy_(flat[0].narrow(0, off, t.numel()).view_as(t));
      off += t.numel();
    }
  }
}

double Distributed::allreduce_sum(double value) {
  std::vector<at::Tensor> v = {at::full({1}, value, at::kDouble)};
  impl_->pg->allreduce(v)->wait();
  return v[0].item<double>();
}

void Distributed::barrier() { impl_->pg->barrier()->wait(); }

}  // namespace barton::engine
