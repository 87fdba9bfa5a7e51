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
#include <mutex>

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
    throw Error(fmt::format("bad distributed setup from {}: rank {} of world size {}", d.source,
                            d.rank, d.world_size));
  }
  return d;
}

// LibTorch 2.x splits ProcessGroup into a front and per-device Backends; Gloo and NCCL are
// Backends.
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

Distributed::Distributed(const DistInfo& info, std::chrono::milliseconds timeout)
    : info_(info), impl_(std::make_unique<Impl>()) {
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
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, info.rank,
                                                              info.world_size, nopts);
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
    impl_->pg =
        c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, info.rank, info.world_size, opts);
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {} of {}: cannot join the process group at {}:{} ({}): {}",
                            info.rank, info.world_size, info.master_addr, info.master_port,
                            info.source, e.what()));
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
    while (i < tensors.size() && tensors[i].scalar_type() == dtype &&
           (bucket.empty() || bytes < limit)) {
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

void Distributed::barrier() {
  impl_->pg->barrier()->wait();
}

at::Tensor Distributed::allgather_rows(const at::Tensor& rows_in) {
  const auto w = static_cast<std::size_t>(info_.world_size);
  at::Tensor rows = rows_in.defined() ? rows_in.contiguous().cpu() : at::empty({0, 0}, at::kDouble);
  if (rows.dim() == 1) rows = rows.unsqueeze(1);
  // Row counts, column counts and dtypes first.
  const auto dev = at::TensorOptions().device(impl_->device);
  std::vector<at::Tensor> in = {impl_->on_device(at::tensor(
      {rows.size(0), rows.size(1), static_cast<int64_t>(rows.scalar_type())}, at::kLong))};
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
  for (std::size_t r = 0; r < w; ++r)
    dout[0].push_back(at::empty({max_rows, cols}, dev.dtype(dtype)));
  impl_->pg->allgather(dout, din)->wait();
  std::vector<at::Tensor> parts;
  for (std::size_t r = 0; r < w; ++r)
    parts.push_back(dout[0][r].cpu().narrow(0, 0, out[0][r][0].item<int64_t>()));
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

// ---------------------------------------------------------------------------------------------
// GradReducer

struct GradReducer::State {
  Distributed* dist = nullptr;
  std::vector<at::Tensor> params;
  struct Bucket {
    std::vector<std::size_t> members;  ///< Indices into params.
    std::vector<int64_t> offsets;
    at::Tensor flat;  ///< On the collective's device.
    int ready = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  std::vector<std::pair<std::size_t, std::size_t>> where;  ///< param -> (bucket, slot)
  std::vector<bool> seen;
  bool armed = false;
  double divisor = 1;
  std::mutex mutex;

  void launch(Bucket& b) {
    std::vector<at::Tensor> v = {b.flat};
    b.work = dist->impl_->pg->allreduce(v);
  }
  void on_grad(std::size_t i, const at::Tensor& g) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || seen[i]) return;
    seen[i] = true;
    auto& b = buckets[where[i].first];
    const auto& p = params[i];
    auto full = p.grad().defined() ? p.grad() + g : g;
    b.flat.narrow(0, b.offsets[where[i].second], p.numel()).copy_(full.reshape({-1}).div(divisor));
    if (++b.ready == static_cast<int>(b.members.size())) launch(b);
  }
};

GradReducer::GradReducer(Distributed& dist, const std::vector<at::Tensor>& params, double bucket_mb)
    : s_(std::make_unique<State>()) {
  s_->dist = &dist;
  s_->params = params;
  s_->where.resize(params.size());
  s_->seen.assign(params.size(), false);
  const double limit = bucket_mb * 1024.0 * 1024.0;
  State::Bucket cur;
  double bytes = 0;
  int64_t off = 0;
  auto close = [&] {
    if (cur.members.empty()) return;
    const auto& p0 = params[cur.members.front()];
    cur.flat = at::zeros({off}, p0.options().device(dist.impl_->device));
    s_->buckets.push_back(std::move(cur));
    cur = State::Bucket();
    bytes = 0;
    off = 0;
  };
  for (std::size_t k = params.size(); k-- > 0;) {
    const auto& p = params[k];
    if (!cur.members.empty() &&
        (bytes >= limit || p.scalar_type() != params[cur.members.front()].scalar_type()))
      close();
    s_->where[k] = {s_->buckets.size(), cur.members.size()};
    cur.members.push_back(k);
    cur.offsets.push_back(off);
    off += p.numel();
    bytes += static_cast<double>(p.numel() * p.element_size());
  }
  close();
  for (std::size_t k = 0; k < params.size(); ++k) {
    if (!params[k].requires_grad()) continue;  // never gets a gradient: zeros at finish()
    auto* st = s_.get();
    s_->params[k].register_hook([st, k](const at::Tensor& g) {
      st->on_grad(k, g);
      return g;
    });
  }
}

GradReducer::~GradReducer() = default;

void GradReducer::arm(double divisor) {
  std::lock_guard<std::mutex> lock(s_->mutex);
  s_->armed = true;
  s_->divisor = divisor;
  std::fill(s_->seen.begin(), s_->seen.end(), false);
  for (auto& b : s_->buckets) {
    b.ready = 0;
    b.work.reset();
  }
}

double GradReducer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(s_->mutex);
  const double world = static_cast<double>(s_->dist->world_size());
  for (auto& b : s_->buckets) {
    if (!b.work) {
      // Parameters without a gradient in this backward contribute what .grad holds (or zeros).
      for (std::size_t j = 0; j < b.members.size(); ++j) {
        const auto i = b.members[j];
        if (s_->seen[i]) continue;
        const auto& p = s_->params[i];
        auto slot = b.flat.narrow(0, b.offsets[j], p.numel());
        if (p.grad().defined())
          slot.copy_(p.grad().reshape({-1}).div(s_->divisor));
        else
          slot.zero_();
      }
      s_->launch(b);
    }
  }
  at::NoGradGuard no_grad;
  for (auto& b : s_->buckets) {
    b.work->wait();
    b.flat.div_(world);
    for (std::size_t j = 0; j < b.members.size(); ++j) {
      auto& p = s_->params[b.members[j]];
      const auto avg = b.flat.narrow(0, b.offsets[j], p.numel()).view_as(p);
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      p.mutable_grad().copy_(avg);
    }
  }
  s_->armed = false;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace barton::engine
