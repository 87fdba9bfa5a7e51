// Utility dictionary transforms: channel layout, types, copies, concatenation.
#include <ATen/ATen.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/register.h"

namespace barton::transforms {

namespace {

/// Channel-layout transforms. Barton's images are channel-first from the moment they are loaded
/// (LoadImaged gives [C, I, J, K], 4D NIfTI time points as channels), which is what MONAI reaches after
/// LoadImaged + EnsureChannelFirstd; so these keep the data as they are.
class ChannelNoOp final : public MapTransform {
 public:
  ChannelNoOp(std::string name, KeySelection k) : MapTransform(std::move(k)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      if (!s.is_image(key)) throw Error(name_ + ": '" + key + "' is not an image (load it with LoadImaged first)");
    });
  }

 private:
  std::string name_;
};

/// ToTensord / EnsureTyped / CastToTyped / ToNumpyd: optional dtype conversion.
class Cast final : public MapTransform {
 public:
  Cast(std::string name, KeySelection k, std::vector<std::optional<at::ScalarType>> dtypes)
      : MapTransform(std::move(k)), name_(std::move(name)), dtypes_(std::move(dtypes)) {}
  std::string name() const override { return name_; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      if (!s.is_image(key)) return;  // numbers and strings are already "tensors" enough
      auto& img = s.image(key);
      if (dtypes_[i]) img.data = img.data.to(*dtypes_[i]);
    });
  }

 private:
  std::string name_;
  std::vector<std::optional<at::ScalarType>> dtypes_;
};

std::vector<std::optional<at::ScalarType>> dtypes_per_key(const ConfigNode& args, std::size_t n,
                                                          std::optional<at::ScalarType> fallback) {
  std::vector<std::optional<at::ScalarType>> out(n, fallback);
  if (!args.has("dtype") || args.at("dtype").is_null()) return out;
  const auto v = args.at("dtype");
  if (v.is_array()) {
    if (v.size() != n) throw v.error(fmt::format("expected one dtype or one per key ({})", n));
    for (std::size_t i = 0; i < n; ++i) {
      try {
        out[i] = v.at(i).is_null() ? std::nullopt : std::optional(parse_dtype(v.at(i).as<std::string>()));
      } catch (const ConfigError&) {
        throw;
      } catch (const Error& e) {
        throw v.at(i).error(e.what());
      }
    }
    return out;
  }
  const auto one = dtype_arg(args, "dtype", fallback);
  return std::vector<std::optional<at::ScalarType>>(n, one);
}

/// AsChannelLastd: moves the channel axis last ([C, *S] -> [*S, C]); for exporting to tools that
/// want channel-last arrays. Later spatial transforms expect channel-first data.
class ChannelLast final : public MapTransform {
 public:
  ChannelLast(KeySelection k, int64_t dim) : MapTransform(std::move(k)), dim_(dim) {}
  std::string name() const override { return "AsChannelLastd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      img.data = img.data.movedim(dim_, -1).contiguous();
    });
  }

 private:
  int64_t dim_;
};

class CopyItems final : public MapTransform {
 public:
  CopyItems(KeySelection k, int times, std::vector<std::string> names)
      : MapTransform(std::move(k)), times_(times), names_(std::move(names)) {}
  std::string name() const override { return "CopyItemsd"; }
  void apply(Sample& s, Rng&) const override {
    std::size_t n = 0;
    for (int t = 0; t < times_; ++t) {
      for (const auto& key : keys_.keys) {
        if (!s.has(key)) {
          if (keys_.allow_missing_keys) {
            ++n;
            continue;
          }
          missing_key(s, key);
        }
        Value v = s.get(key);
        if (auto* img = std::get_if<ImageItem>(&v)) img->data = img->data.clone();
        s.set(names_.at(n++), std::move(v));
      }
    }
  }

 private:
  int times_;
  std::vector<std::string> names_;
};

class DeleteItems final : public MapTransform {
 public:
  explicit DeleteItems(KeySelection k) : MapTransform(std::move(k)) {}
  std::string name() const override { return "DeleteItemsd"; }
  void apply(Sample& s, Rng&) const override {
    for (const auto& key : keys_.keys) s.erase(key);
  }
};

class ConcatItems final : public MapTransform {
 public:
  ConcatItems(KeySelection k, std::string out, int64_t dim) : MapTransform(std::move(k)), out_(std::move(out)), dim_(dim) {}
  std::string name() const override { return "ConcatItemsd"; }
  void apply(Sample& s, Rng&) const override {
    std::vector<at::Tensor> parts;
    const ImageItem* first = nullptr;
    for_each_key(s, [&](const std::string& key, std::size_t) {
      const auto& img = s.image(key);
      if (!first) first = &img;
      parts.push_back(img.data);
    });
    BARTON_CHECK(first != nullptr, "ConcatItemsd: none of the keys is present");
    ImageItem out = *first;
    out.data = at::cat(parts, dim_);
    s.set(out_, std::move(out));
  }

 private:
  std::string out_;
  int64_t dim_;
};

class SqueezeDim final : public MapTransform {
 public:
  SqueezeDim(KeySelection k, int64_t dim) : MapTransform(std::move(k)), dim_(dim) {}
  std::string name() const override { return "SqueezeDimd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      BARTON_CHECK(img.data.size(dim_) == 1, "SqueezeDimd: dimension {} of '{}' has size {}, not 1", dim_, key,
                   img.data.size(dim_));
      img.data = img.data.squeeze(dim_);
    });
  }

 private:
  int64_t dim_;
};

}  // namespace

void register_utility(TransformRegistry& r) {
  for (const char* n : {"EnsureChannelFirstd", "AddChanneld", "AsChannelFirstd"}) {
    r.implement(n, [n](const ConfigNode& a, const BuildContext&) {
      return std::make_unique<ChannelNoOp>(n, KeySelection::from_config(a));
    });
  }
  r.implement("AsChannelLastd", [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<ChannelLast>(KeySelection::from_config(a), a.get_or<int64_t>("channel_dim", 0));
  });
  r.implement("ToTensord", [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    return std::make_unique<Cast>("ToTensord", std::move(k), dtypes_per_key(a, n, std::nullopt));
  });
  r.implement("EnsureTyped", [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    if (a.has("data_type") && a.at("data_type").as<std::string>() != "tensor") {
      throw ConfigError(a.at("data_type").source(), a.at("data_type").pointer(),
                        "Barton keeps every image as a tensor; data_type must be \"tensor\"");
    }
    return std::make_unique<Cast>("EnsureTyped", std::move(k), dtypes_per_key(a, n, std::nullopt));
  });
  r.implement("ToNumpyd", [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    return std::make_unique<Cast>("ToNumpyd", std::move(k), std::vector<std::optional<at::ScalarType>>(n));
  });
  r.implement("CastToTyped", [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    return std::make_unique<Cast>("CastToTyped", std::move(k), dtypes_per_key(a, n, at::kFloat));
  });
  r.implement("CopyItemsd", [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const int times = a.get_or("times", 1);
    if (times < 1) throw a.at("times").error("must be at least 1");
    std::vector<std::string> names;
    if (a.given("names")) {
      names = a.at("names").is_string() ? std::vector<std::string>{a.at("names").as<std::string>()}
                                        : a.at("names").as<std::vector<std::string>>();
    }
    const auto need = k.keys.size() * static_cast<std::size_t>(times);
    if (names.size() != need) {
      throw ConfigError(a.source(), a.pointer() + "/names",
                        fmt::format("needs keys x times = {} new names, got {}", need, names.size()));
    }
    return std::make_unique<CopyItems>(std::move(k), times, std::move(names));
  });
  r.implement("DeleteItemsd", [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<DeleteItems>(KeySelection::from_config(a));
  });
  r.implement("ConcatItemsd", [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<ConcatItems>(KeySelection::from_config(a), a.require<std::string>("name"), a.get_or<int64_t>("dim", 0));
  });
  r.implement("SqueezeDimd", [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<SqueezeDim>(KeySelection::from_config(a), a.get_or<int64_t>("dim", 0));
  });
}

}  // namespace barton::transforms
