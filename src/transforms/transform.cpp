#include "transforms/transform.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/errors.h"
#include "core/strings.h"
#include "transforms/draw_log.h"

namespace barton::transforms {

std::vector<Sample> Transform::apply_multi(Sample sample, Rng& rng) const {
  apply(sample, rng);
  std::vector<Sample> out;
  out.push_back(std::move(sample));
  return out;
}

void Transform::invert(ImageItem&, const TraceEntry& entry, bool) const {
  throw NotSupported("'" + entry.transform + "' cannot be inverted");
}

KeySelection KeySelection::from_config(const ConfigNode& args) {
  KeySelection k;
  const auto keys = args.at("keys");
  if (keys.is_string()) {
    k.keys = {keys.as<std::string>()};
  } else {
    k.keys = keys.as<std::vector<std::string>>();
  }
  if (k.keys.empty()) throw keys.error("needs at least one key");
  k.allow_missing_keys = args.get_or("allow_missing_keys", false);
  return k;
}

void MapTransform::missing_key(const Sample& s, const std::string& key) const {
  throw Error(name() + ": sample has no key '" + key + "'" + did_you_mean(key, s.keys()) +
              " (keys: " + join(s.keys(), ", ") + "; set allow_missing_keys to skip it)");
}

void RandomMapTransform::apply(Sample& s, Rng& rng) const {
  const bool apply = rng.uniform() < prob_;
  Params params;
  if (apply) {
    const std::string* first = nullptr;
    for (const auto& k : keys_.keys) {
      if (s.has(k)) {
        first = &k;
        break;
      }
    }
    if (first == nullptr) {
      if (keys_.allow_missing_keys) return;
      missing_key(s, keys_.keys.front());
    }
    params = draw(rng, s, *first);
  }
  if (draw_log_enabled()) log_draw({{"transform", name_}, {"apply", apply}, {"params", params}});
  for_each_key(s, [&](const std::string& key, std::size_t i) {
    auto& img = s.image(key);
    if (apply)
      apply_key(img, params, i);
    else
      skip_key(img);
  });
}

template <typename T>
std::vector<T> per_key(const ConfigNode& args, const char* name, std::size_t n, T fallback) {
  if (args.at(name).is_null()) return std::vector<T>(n, fallback);
  const auto v = args.at(name);
  if (!v.is_array()) return std::vector<T>(n, v.as<T>());
  if (v.size() != n) {
    throw ConfigError(v.source(), v.pointer(),
                      fmt::format("expected one value or one per key ({}), got {}", n, v.size()));
  }
  std::vector<T> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(v.at(i).is_null() ? fallback : v.at(i).as<T>());
  return out;
}
template std::vector<std::string> per_key(const ConfigNode&, const char*, std::size_t, std::string);
template std::vector<bool> per_key(const ConfigNode&, const char*, std::size_t, bool);
template std::vector<double> per_key(const ConfigNode&, const char*, std::size_t, double);

Compose::Compose(std::vector<std::shared_ptr<const Transform>> steps,
                 std::vector<std::string> where)
    : steps_(std::move(steps)), where_(std::move(where)) {
  where_.resize(steps_.size());
}

bool Compose::is_random() const {
  return first_random() < steps_.size();
}

std::size_t Compose::first_random() const {
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i]->is_random()) return i;
  }
  return steps_.size();
}

void Compose::apply(Sample& sample, Rng& rng) const {
  auto out = run({sample}, rng, 0, steps_.size());
  if (out.size() != 1)
    throw Error(
        "this transform chain returns several samples per input; use it where lists are allowed");
  sample = std::move(out.front());
}

std::vector<Sample> Compose::apply_multi(Sample sample, Rng& rng) const {
  return run({std::move(sample)}, rng, 0, steps_.size());
}

std::vector<Sample> Compose::run(std::vector<Sample> samples,
                                 Rng& rng,
                                 std::size_t begin,
                                 std::size_t end) const {
  for (std::size_t i = begin; i < end && i < steps_.size(); ++i) {
    std::vector<Sample> next;
    for (auto& s : samples) {
      const std::string origin = s.origin();
      try {
        static const bool profile = std::getenv("BARTON_PROFILE_TRANSFORMS") != nullptr;
        const auto t0 = std::chrono::steady_clock::now();
        auto produced = steps_[i]->apply_multi(std::move(s), rng);
        if (profile) {
          std::fprintf(
              stderr, "[profile] %-28s %8.1f ms  %s\n", steps_[i]->name().c_str(),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                  .count(),
              origin.c_str());
        }
        for (auto& p : produced) next.push_back(std::move(p));
      } catch (const ConfigError&) {
        throw;
      } catch (const Error& e) {
        throw Error("applying transform '" + steps_[i]->name() + "'" +
                    (where_[i].empty() ? "" : " (" + where_[i] + ")") + " to " + origin + ": " +
                    e.what());
      } catch (const c10::Error& e) {
        throw Error("applying transform '" + steps_[i]->name() + "'" +
                    (where_[i].empty() ? "" : " (" + where_[i] + ")") + " to " + origin + ": " +
                    e.what_without_backtrace());
      }
    }
    samples = std::move(next);
  }
  return samples;
}

}  // namespace barton::transforms
