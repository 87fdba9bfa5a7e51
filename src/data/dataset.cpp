#include "data/dataset.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include <ATen/ATen.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/logging.h"
#include "transforms/draw_log.h"
#include <openssl/evp.h>

namespace barton::data {

namespace fs = std::filesystem;
using transforms::ImageItem;
using transforms::Rng;

Sample initial_sample(const DataItem& item) {
  Sample s;
  for (const auto& [k, path] : item.files) s.set(k, path);
  for (const auto& [k, text] : item.values) {
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    if (end && *end == '\0' && !text.empty())
      s.set(k, d);
    else
      s.set(k, text);
  }
  return s;
}

Rng sample_rng(uint64_t seed, uint64_t epoch, std::size_t index) {
  return Rng(transforms::mix_seed(transforms::mix_seed(seed, epoch), index));
}

// ---------------------------------------------------------------- Dataset

Dataset::Dataset(std::vector<DataItem> items, std::shared_ptr<const Compose> chain, uint64_t seed)
    : items_(std::move(items)), chain_(std::move(chain)), seed_(seed) {
  BARTON_CHECK(chain_ != nullptr, "a dataset needs a transform chain");
}

std::vector<Sample> Dataset::deterministic(std::size_t index) const {
  Rng unused(0);
  return chain_->run({initial_sample(items_.at(index))}, unused, 0, chain_->first_random());
}

std::vector<Sample> Dataset::random_part(const std::vector<Sample>& cached,
                                         std::size_t index,
                                         uint64_t epoch) const {
  Rng rng = sample_rng(seed_, epoch, index);
  transforms::DrawContext context(epoch, index);
  // MONAI deep-copies the cached sample (copy_cache); a first random step whose outputs own all
  // their storage cannot change the cache, so it gets shallow copies (no copy of whole volumes).
  const bool shallow = chain_->first_random() < chain_->size() &&
                       chain_->step(chain_->first_random()).fresh_outputs();
  std::vector<Sample> copies;
  for (const auto& s : cached) copies.push_back(shallow ? s : s.deep_copy());
  return chain_->run(std::move(copies), rng, chain_->first_random(), chain_->size());
}

void Dataset::prepare(std::vector<Sample>& cached) const {
  for (auto& s : cached) {
    s.attach_derived_cache();
    if (chain_->first_random() < chain_->size())
      chain_->step(chain_->first_random()).prepare_cached(s);
  }
}

std::vector<Sample> Dataset::get(std::size_t index, uint64_t epoch) const {
  Rng rng = sample_rng(seed_, epoch, index);
  transforms::DrawContext context(epoch, index);
  return chain_->run({initial_sample(items_.at(index))}, rng, 0, chain_->size());
}

// ---------------------------------------------------------------- CacheDataset

namespace {

// Runs fn(i) for i in [begin, end) on `workers` threads; rethrows the first error.
template <typename Fn>
void parallel_for(std::size_t begin, std::size_t end, int workers, Fn&& fn) {
  workers = std::max(1, std::min<int>(workers, static_cast<int>(end - begin)));
  std::atomic<std::size_t> next{begin};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto body = [&] {
    while (true) {
      const std::size_t i = next.fetch_add(1);
      if (i >= end) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = end;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < workers; ++t) threads.emplace_back(body);
  body();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

CacheDataset::CacheDataset(std::vector<DataItem> items,
                           std::shared_ptr<const Compose> chain,
                           uint64_t seed,
                           CacheOptions options)
    : Dataset(std::move(items), std::move(chain), seed), options_(options) {
  const auto by_rate = static_cast<int64_t>(static_cast<double>(size()) * options_.cache_rate);
  const auto n = static_cast<std::size_t>(
      std::max<int64_t>(0, std::min({options_.cache_num, by_rate, static_cast<int64_t>(size())})));
  cache_.resize(n);
  fill(0, n, options_.num_workers);
}

void CacheDataset::fill(std::size_t begin, std::size_t end, int workers) {
  parallel_for(begin, end, workers, [&](std::size_t i) {
    cache_[i] = deterministic(i);
    prepare(cache_[i]);
  });
}

std::vector<Sample> CacheDataset::get(std::size_t index, uint64_t epoch) const {
  if (index >= cache_.size()) return Dataset::get(index, epoch);
  if (chain_->first_random() == chain_->size()) {
    if (!options_.copy_cache) return cache_[index];
    std::vector<Sample> out;
    for (const auto& s : cache_[index]) out.push_back(s.deep_copy());
    return out;
  }
  return random_part(cache_[index], index, epoch);
}

// ---------------------------------------------------------------- SmartCacheDataset

SmartCacheDataset::SmartCacheDataset(std::vector<DataItem> items,
                                     std::shared_ptr<const Compose> chain,
                                     uint64_t seed,
                                     SmartCacheOptions options)
    : Dataset(std::move(items), std::move(chain), seed), options_(options) {
  order_.resize(size());
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 g(options_.seed);
    std::shuffle(order_.begin(), order_.end(), g);
  }
  const auto by_rate = static_cast<int64_t>(static_cast<double>(size()) * options_.cache_rate);
  const auto n = static_cast<std::size_t>(
      std::max<int64_t>(1, std::min({options_.cache_num, by_rate, static_cast<int64_t>(size())})));
  window_.assign(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(n));
  next_ = n % size();
  replace_num_ = std::min<std::size_t>(
      size() - n, static_cast<std::size_t>(std::ceil(n * options_.replace_rate)));
  slots_.resize(n);
  parallel_for(0, n, options_.num_init_workers, [&](std::size_t i) {
    slots_[i] = deterministic(window_[i]);
    prepare(slots_[i]);
  });
}

SmartCacheDataset::~SmartCacheDataset() {
  if (worker_.joinable()) worker_.join();
}

void SmartCacheDataset::prepare_replacements() {
  std::vector<std::pair<std::size_t, std::vector<Sample>>> out(replace_num_);
  for (std::size_t r = 0; r < replace_num_; ++r) out[r].first = order_[(next_ + r) % order_.size()];
  parallel_for(0, replace_num_, options_.num_replace_workers, [&](std::size_t r) {
    out[r].second = deterministic(out[r].first);
    prepare(out[r].second);
  });
  std::lock_guard<std::mutex> lock(mutex_);
  ready_ = std::move(out);
}

void SmartCacheDataset::start_epoch(uint64_t epoch) {
  (void)epoch;
  if (replace_num_ == 0) return;
  if (started_) {
    if (worker_.joinable()) worker_.join();
    // Replace the oldest entries (the front of the window) by the prepared ones.
    std::lock_guard<std::mutex> lock(mutex_);
    for (std::size_t r = 0; r < ready_.size(); ++r) {
      window_.erase(window_.begin());
      slots_.erase(slots_.begin());
      window_.push_back(ready_[r].first);
      slots_.push_back(std::move(ready_[r].second));
    }
    next_ = (next_ + ready_.size()) % order_.size();
    ready_.clear();
  }
  started_ = true;
  worker_ = std::thread([this] { prepare_replacements(); });
}

std::vector<Sample> SmartCacheDataset::get(std::size_t index, uint64_t epoch) const {
  std::vector<Sample> cached;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = std::find(window_.begin(), window_.end(), index);
    BARTON_INTERNAL_ASSERT(it != window_.end(),
                           "SmartCacheDataset: item {} is not in the cache window", index);
    cached = slots_[static_cast<std::size_t>(it - window_.begin())];
  }
  return random_part(cached, index, epoch);
}

// ---------------------------------------------------------------- PersistentDataset

PersistentDataset::PersistentDataset(std::vector<DataItem> items,
                                     std::shared_ptr<const Compose> chain,
                                     uint64_t seed,
                                     std::string cache_dir)
    : Dataset(std::move(items), std::move(chain), seed), cache_dir_(std::move(cache_dir)) {
  BARTON_CHECK(!chain_->fingerprint().empty(),
               "PersistentDataset needs a transform chain with a fingerprint");
}

std::string PersistentDataset::cache_path(std::size_t index) const {
  std::string key = chain_->fingerprint();
  key += "\n" + std::to_string(chain_->first_random());
  for (const auto& [field, path] : items_.at(index).files) {
    std::error_code ec;
    const auto sz = fs::file_size(path, ec);
    const auto mt = fs::last_write_time(path, ec).time_since_epoch().count();
    key += "\n" + field + "=" + path + ":" + std::to_string(ec ? 0 : sz) + ":" + std::to_string(mt);
  }
  for (const auto& [field, v] : items_.at(index).values) key += "\n" + field + "=" + v;
  return (fs::path(cache_dir_) / (sha256_hex(key) + ".bts")).string();
}

std::vector<Sample> PersistentDataset::get(std::size_t index, uint64_t epoch) const {
  const auto path = cache_path(index);
  std::vector<Sample> cached;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    try {
      cached = deserialize_samples(read_file(path), path);
    } catch (const Error& e) {
      log::warn(std::string("ignoring unreadable cache entry: ") + e.what());
      cached.clear();
    }
  }
  if (cached.empty()) {
    cached = deterministic(index);
    write_file_atomic(path, serialize_samples(cached));
  }
  return random_part(cached, index, epoch);
}

// ---------------------------------------------------------------- serialisation

namespace {

constexpr char kMagic[8] = {'B', 'T', 'N', 'S', 'M', 'P', '0', '2'};

struct Writer {
  std::string out;
  template <typename T>
  void pod(const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    out += s;
  }
  void shape(const std::vector<int64_t>& v) {
    pod<uint64_t>(v.size());
    for (auto x : v) pod(x);
  }
  void affine(const Affine& a) {
    for (double d : a) pod(d);
  }
};

struct Reader {
  std::string_view in;
  std::size_t pos = 0;
  std::string origin;
  template <typename T>
  T pod() {
    if (pos + sizeof(T) > in.size()) throw IoError(origin, "truncated cache entry");
    T v;
    std::memcpy(&v, in.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str() {
    const auto n = pod<uint64_t>();
    if (pos + n > in.size()) throw IoError(origin, "truncated cache entry");
    std::string s(in.substr(pos, n));
    pos += n;
    return s;
  }
  std::vector<int64_t> shape() {
    const auto n = pod<uint64_t>();
    if (n > 64) throw IoError(origin, "corrupt cache entry");
    std::vector<int64_t> v(n);
    for (auto& x : v) x = pod<int64_t>();
    return v;
  }
  Affine affine() {
    Affine a;
    for (double& d : a) d = pod<double>();
    return a;
  }
};

}  // namespace

std::string serialize_samples(const std::vector<Sample>& samples) {
  Writer w;
  w.out.append(kMagic, sizeof kMagic);
  w.pod<uint64_t>(samples.size());
  for (const auto& s : samples) {
    const auto keys = s.keys();
    w.pod<uint64_t>(keys.size());
    for (const auto& k : keys) {
      w.str(k);
      const auto& v = s.get(k);
      w.pod<uint8_t>(static_cast<uint8_t>(v.index()));
      if (const auto* img = std::get_if<ImageItem>(&v)) {
        const auto t = img->data.to(at::kCPU).contiguous();
        w.pod<int32_t>(static_cast<int32_t>(t.scalar_type()));
        w.shape(t.sizes().vec());
        w.out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
        w.affine(img->affine);
        w.str(img->filename);
        w.shape(img->original_shape);
        w.affine(img->original_affine);
        w.pod<uint64_t>(img->applied.size());
        for (const auto& e : img->applied) {
          w.str(e.transform);
          w.shape(e.orig_shape);
          w.affine(e.orig_affine);
          w.pod<uint64_t>(e.params.size());
          for (const auto& [pk, pv] : e.params) {
            w.str(pk);
            w.pod<uint64_t>(pv.size());
            for (double d : pv) w.pod(d);
          }
          w.pod<uint64_t>(e.strings.size());
          for (const auto& [sk, sv] : e.strings) {
            w.str(sk);
            w.str(sv);
          }
        }
      } else if (const auto* str = std::get_if<std::string>(&v)) {
        w.str(*str);
      } else if (const auto* d = std::get_if<double>(&v)) {
        w.pod(*d);
      } else {
        w.shape(std::get<std::vector<int64_t>>(v));
      }
    }
  }
  return std::move(w.out);
}

std::vector<Sample> deserialize_samples(const std::string& bytes, const std::string& origin) {
  Reader r{bytes, 0, origin};
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw IoError(origin, "not a Barton cache entry");
  }
  r.pos = sizeof kMagic;
  std::vector<Sample> out(r.pod<uint64_t>());
  for (auto& s : out) {
    const auto n = r.pod<uint64_t>();
    for (uint64_t i = 0; i < n; ++i) {
      const auto key = r.str();
      const auto tag = r.pod<uint8_t>();
      if (tag == 0) {
        ImageItem img;
        const auto dtype = static_cast<at::ScalarType>(r.pod<int32_t>());
        const auto shape = r.shape();
        auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
        const auto nbytes = static_cast<std::size_t>(t.numel() * t.element_size());
        if (r.pos + nbytes > bytes.size()) throw IoError(origin, "truncated cache entry");
        std::memcpy(t.data_ptr(), bytes.data() + r.pos, nbytes);
        r.pos += nbytes;
        img.data = t;
        img.affine = r.affine();
        img.filename = r.str();
        img.original_shape = r.shape();
        img.original_affine = r.affine();
        const auto n_applied = r.pod<uint64_t>();
        for (uint64_t a = 0; a < n_applied; ++a) {
          transforms::TraceEntry e;
          e.transform = r.str();
          e.orig_shape = r.shape();
          e.orig_affine = r.affine();
          const auto np = r.pod<uint64_t>();
          for (uint64_t p = 0; p < np; ++p) {
            const auto pk = r.str();
            std::vector<double> pv(r.pod<uint64_t>());
            for (double& d : pv) d = r.pod<double>();
            e.params[pk] = std::move(pv);
          }
          const auto ns = r.pod<uint64_t>();
          for (uint64_t q = 0; q < ns; ++q) {
            const auto sk = r.str();
            e.strings[sk] = r.str();
          }
          img.applied.push_back(std::move(e));
        }
        s.set(key, std::move(img));
      } else if (tag == 1) {
        s.set(key, r.str());
      } else if (tag == 2) {
        s.set(key, r.pod<double>());
      } else if (tag == 3) {
        s.set(key, r.shape());
      } else {
        throw IoError(origin, "corrupt cache entry");
      }
    }
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace barton::data
