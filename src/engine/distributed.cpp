#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include "engine/distributed.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef USE_C10D_NCCL  // CUDA LibTorch builds (Torch's CMake config defines it)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <cstring>

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

// LibTorch 2.x splits ProcessGroup into a front and per-device Backends; Gloo and NCCL are Backends.
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PgBase> pg;
  at::Device device = at::kCPU;  ///< Where collectives run: CPU for Gloo, this rank's GPU for NCCL.
  /// A contiguous copy on the collective's device (or the tensor itself when it already is one).
  at::Tensor on_device(const at::Tensor& t) const {
    auto c = t.is_contiguous() ? t : t.contiguous();
    return c.device() == device ? c : c.to(device);
  }
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
    if (info.backend == "nccl") {
#ifdef USE_C10D_NCCL
      impl_->device = at::Device(at::kCUDA, static_cast<at::DeviceIndex>(info.local_rank));
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = timeout;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, info.rank, info.world_size, nopts);
      return;
#else
      throw Error("this LibTorch has no NCCL (a CPU build): use the gloo backend");
#endif
    }
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
    std::vector<at::Tensor> v = {impl_->on_device(t)};
    impl_->pg->broadcast(v)->wait();
    if (!v[0].is_same(t)) t.copy_(v[0]);
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
    std::vector<at::Tensor> flat = {impl_->on_device(at::cat([&] {
      std::vector<at::Tensor> f;
      for (const auto& t : bucket) f.push_back(t.reshape({-1}));
      return f;
    }()))};
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
  std::vector<at::Tensor> v = {impl_->on_device(at::full({1}, value, at::kDouble))};
  impl_->pg->allreduce(v)->wait();
  return v[0].item<double>();
}

void Distributed::allreduce_sum(at::Tensor& t) {
  std::vector<at::Tensor> v = {impl_->on_device(t)};
  impl_->pg->allreduce(v)->wait();
  if (!v[0].is_same(t)) t.copy_(v[0]);
}

void Distributed::barrier() { impl_->pg->barrier()->wait(); }

at::Tensor Distributed::allgather_rows(const at::Tensor& rows_in) {
  const auto w = static_cast<std::size_t>(info_.world_size);
  at::Tensor rows = rows_in.defined() ? rows_in.contiguous().cpu() : at::empty({0, 0}, at::kDouble);
  if (rows.dim() == 1) rows = rows.unsqueeze(1);
  // Row counts, column counts and dtypes first.
  const auto dev = at::TensorOptions().device(impl_->device);
  std::vector<at::Tensor> in = {impl_->on_device(at::tensor({rows.size(0), rows.size(1), static_cast<int64_t>(rows.scalar_type())}, at::kLong))};
  std::vector<std::vector<at::Tensor>> out(1);
  for (std::size_t r = 0; r < w; ++r) out[0].push_back(at::empty({3}, dev.dtype(at::kLong)));
  impl_->pg->allgather(out, in)->wait();
  for (auto& t : out[0]) t = t.cpu();
  int64_t max_rows = 0, cols = 0;
  auto dtype = rows.scalar_type();
  for (const auto& t : out[0]) {
    max_rows = std::max(max_rows, t[0].item<int64_t>());
    if (t[0].item<int64_t>() > 0) {
      cols = t[1].item<int64_t>();
      dtype = static_cast<at::ScalarType>(t[2].item<int64_t>());
    }
  }
  if (max_rows == 0) return at::empty({0, cols}, at::TensorOptions().dtype(dtype));
  auto padded = at::zeros({max_rows, cols}, at::TensorOptions().dtype(dtype));
  if (rows.size(0) > 0) padded.narrow(0, 0, rows.size(0)).copy_(rows);
  std::vector<at::Tensor> din = {impl_->on_device(padded)};
  std::vector<std::vector<at::Tensor>> dout(1);
  for (std::size_t r = 0; r < w; ++r) dout[0].push_back(at::empty({max_rows, cols}, dev.dtype(dtype)));
  impl_->pg->allgather(dout, din)->wait();
  std::vector<at::Tensor> parts;
  for (std::size_t r = 0; r < w; ++r) parts.push_back(dout[0][r].cpu().narrow(0, 0, out[0][r][0].item<int64_t>()));
  return at::cat(parts);
}

std::vector<std::string> Distributed::allgather_strings(const std::vector<std::string>& items) {
  std::string bytes;
  for (const auto& s : items) {
    bytes += s;
    bytes.push_back('\0');
  }
  auto t = at::empty({static_cast<int64_t>(bytes.size()), 1}, at::kByte);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  const auto all = allgather_rows(t).contiguous();
  std::vector<std::string> out;
  std::string cur;
  const auto* p = static_cast<const char*>(all.data_ptr());
  for (int64_t i = 0; i < all.numel(); ++i) {
    if (p[i] == '\0') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(p[i]);
    }
  }
  return out;
}

}  // namespace barton::engine
