#include "transforms/sample.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "core/errors.h"
#include "core/strings.h"

namespace barton::transforms {

std::vector<int64_t> ImageItem::spatial_shape() const {
  std::vector<int64_t> out;
  for (int64_t d = 1; d < data.dim(); ++d) out.push_back(data.size(d));
  return out;
}

bool Sample::is_image(const std::string& key) const {
  const auto it = values_.find(key);
  return it != values_.end() && std::holds_alternative<ImageItem>(it->second);
}

ImageItem& Sample::image(const std::string& key) {
  return const_cast<ImageItem&>(static_cast<const Sample*>(this)->image(key));
}

const ImageItem& Sample::image(const std::string& key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) {
    throw Error("sample has no key '" + key + "'" + did_you_mean(key, keys()) +
                " (keys: " + join(keys(), ", ") + ")");
  }
  if (!std::holds_alternative<ImageItem>(it->second))
    throw Error("sample key '" + key + "' is not an image");
  return std::get<ImageItem>(it->second);
}

const Value& Sample::get(const std::string& key) const {
  const auto it = values_.find(key);
  if (it == values_.end())
    throw Error("sample has no key '" + key + "'" + did_you_mean(key, keys()));
  return it->second;
}

std::vector<std::string> Sample::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values_) out.push_back(k);
  return out;
}

std::string Sample::origin() const {
  for (const auto& [k, v] : values_) {
    if (const auto* img = std::get_if<ImageItem>(&v); img && !img->filename.empty())
      return img->filename;
  }
  for (const auto& [k, v] : values_) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
  }
  return "<sample>";
}

bool DerivedCache::same(const Entry& e, const std::vector<at::Tensor>& sources) {
  if (e.sources.size() != sources.size()) return false;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (e.sources[i].unsafeGetTensorImpl() != sources[i].unsafeGetTensorImpl()) return false;
    if (sources[i].defined() && e.versions[i] != sources[i]._version()) return false;
  }
  return true;
}

DerivedCache::Entry DerivedCache::entry(const std::vector<at::Tensor>& sources,
                                        std::shared_ptr<const void> value) {
  Entry e{sources, {}, std::move(value)};
  for (const auto& t : sources) e.versions.push_back(t.defined() ? t._version() : 0);
  return e;
}

Sample Sample::deep_copy() const {
  Sample out = *this;
  out.derived_.reset();
  for (auto& [k, v] : out.values_) {
    if (auto* img = std::get_if<ImageItem>(&v)) img->data = img->data.clone();
  }
  return out;
}

double Rng::uniform(double lo, double hi) {
  return lo + (hi - lo) * std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
}

int64_t Rng::randint(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return std::uniform_int_distribution<int64_t>(lo, hi - 1)(engine_);
}

double Rng::normal(double mean, double std) {
  return std::normal_distribution<double>(mean, std)(engine_);
}

at::Generator Rng::torch_generator() {
  return at::make_generator<at::CPUGeneratorImpl>(engine_());
}

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace barton::transforms
