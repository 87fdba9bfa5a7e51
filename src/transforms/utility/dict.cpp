// Utility dictionary transforms: channel layout, types, copies, concatenation.
#include <regex>

#include <ATen/ATen.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/register.h"

namespace barton::transforms {

namespace {

/// Channel-layout transforms. Barton's images are channel-first from the moment they are loaded
/// (LoadImaged gives [C, I, J, K], 4D NIfTI time points as channels), which is what MONAI reaches
/// after LoadImaged + EnsureChannelFirstd; so these keep the data as they are.
class ChannelNoOp final : public MapTransform {
 public:
  ChannelNoOp(std::string name, KeySelection k)
      : MapTransform(std::move(k)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      if (!s.is_image(key))
        throw Error(name_ + ": '" + key + "' is not an image (load it with LoadImaged first)");
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

std::vector<std::optional<at::ScalarType>> dtypes_per_key(const ConfigNode& args,
                                                          std::size_t n,
                                                          std::optional<at::ScalarType> fallback) {
  std::vector<std::optional<at::ScalarType>> out(n, fallback);
  if (!args.given("dtype") || args.at("dtype").is_null()) return out;
  const auto v = args.at("dtype");
  if (v.is_array()) {
    if (v.size() != n) throw v.error(fmt::format("expected one dtype or one per key ({})", n));
    for (std::size_t i = 0; i < n; ++i) {
      try {
        out[i] = v.at(i).is_null() ? std::nullopt
                                   : std::optional(parse_dtype(v.at(i).as<std::string>()));
      } catch (const ConfigError&) {
        throw;
      } catch (const Error& e) {
        throw v.at(i).error(e.what());
      }
    }
    return out;
  }
  const auto one = dtype_arg(args, "dtype");
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

/// MONAI's DeleteItemsd on a sample's keys: a key is a name, or (use_re) a regex that deletes every
/// key it finds (re.search). Barton's samples hold no nested dictionaries, so a key with `sep` in
/// it (MONAI's "meta.x") is refused when the transform is built.
class DeleteItems final : public MapTransform {
 public:
  DeleteItems(KeySelection k, std::vector<bool> use_re) : MapTransform(std::move(k)) {
    for (std::size_t i = 0; i < keys_.keys.size(); ++i) {
      if (use_re[i])
        patterns_.emplace_back(keys_.keys[i], std::regex::ECMAScript);
      else
        patterns_.emplace_back();
      is_re_.push_back(use_re[i]);
    }
  }
  std::string name() const override { return "DeleteItemsd"; }
  void apply(Sample& s, Rng&) const override {
    for (std::size_t i = 0; i < keys_.keys.size(); ++i) {
      if (!is_re_[i]) {
        s.erase(keys_.keys[i]);
        continue;
      }
      for (const auto& key : s.keys()) {
        if (std::regex_search(key, patterns_[i])) s.erase(key);
      }
    }
  }

 private:
  std::vector<std::regex> patterns_;
  std::vector<bool> is_re_;
};

class ConcatItems final : public MapTransform {
 public:
  ConcatItems(KeySelection k, std::string out, int64_t dim)
      : MapTransform(std::move(k)), out_(std::move(out)), dim_(dim) {}
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
      BARTON_CHECK(img.data.size(dim_) == 1, "SqueezeDimd: dimension {} of '{}' has size {}, not 1",
                   dim_, key, img.data.size(dim_));
      img.data = img.data.squeeze(dim_);
    });
  }

 private:
  int64_t dim_;
};

ComponentSpec as_channel_lastd_spec() {
  return dict_spec("AsChannelLastd", "Moves channel_dim to the end.",
                   {keys_spec(), opt("channel_dim", A::kInt, "0", "Current channel axis."),
                    allow_missing_spec()});
}

ComponentSpec to_tensord_spec() {
  return dict_spec(
      "ToTensord", "Converts values to tensors.",
      {keys_spec(), dtype_spec("null"), opt("device", A::kString, "null", "Target device."),
       opt("wrap_sequence", A::kBool, "true", "Wrap sequences into one tensor."),
       opt("track_meta", A::kBool, "null", "MONAI compatibility."), allow_missing_spec()});
}

ComponentSpec ensure_typed_spec() {
  return dict_spec(
      "EnsureTyped", "Ensures tensors of a given type and device.",
      {keys_spec(), opt("data_type", A::kString, "\"tensor\"", "tensor or numpy."),
       dtype_spec("null"), opt("device", A::kString, "null", "Target device."),
       opt("wrap_sequence", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("track_meta", A::kBool, "null", "MONAI compatibility."), allow_missing_spec()});
}

ComponentSpec to_numpyd_spec() {
  return dict_spec("ToNumpyd", "Converts to arrays (a no-op in Barton: tensors throughout).",
                   {keys_spec(), allow_missing_spec()});
}

ComponentSpec cast_to_typed_spec() {
  return dict_spec("CastToTyped", "Casts to dtype.",
                   {keys_spec(), dtype_spec(), allow_missing_spec()});
}

ComponentSpec concat_itemsd_spec() {
  return dict_spec("ConcatItemsd", "Concatenates keys along dim into `name`.",
                   {keys_spec(), req("name", A::kString, "Output key."),
                    opt("dim", A::kInt, "0", "Axis."), allow_missing_spec()});
}

ComponentSpec copy_itemsd_spec() {
  return dict_spec(
      "CopyItemsd", "Copies keys to new names.",
      {keys_spec(), opt("times", A::kInt, "1", "Copies per key."),
       req("names", A::kStrings, "New keys: len(keys) x times names, copies of each key in turn."),
       allow_missing_spec()});
}

ComponentSpec delete_itemsd_spec() {
  return dict_spec("DeleteItemsd", "Deletes keys.",
                   {keys_spec(), opt("sep", A::kString, "\".\"", "Nested key separator."),
                    opt("use_re", A::kBools, "false", "Keys are regexes.")});
}

ComponentSpec squeeze_dimd_spec() {
  return dict_spec(
      "SqueezeDimd", "Removes a size-1 axis.",
      {keys_spec(), opt("dim", A::kInt, "0", "Axis."),
       opt("update_meta", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       allow_missing_spec()});
}

ComponentSpec ensure_channel_firstd_spec() {
  return dict_spec(
      "EnsureChannelFirstd", "Makes the channel axis first, adding one if the image has none.",
      {keys_spec(), meta_keys_spec(), meta_postfix_spec(),
       opt("strict_check", A::kBool, "true", "Refuse ambiguous layouts."), allow_missing_spec(),
       opt("channel_dim", A::kInt, "null", "Channel axis of the input; null reads the metadata.")});
}

ComponentSpec add_channeld_spec() {
  return dict_spec("AddChanneld",
                   "Adds a leading channel axis (deprecated in MONAI; use EnsureChannelFirstd).",
                   {keys_spec(), allow_missing_spec()});
}

ComponentSpec as_channel_firstd_spec() {
  return dict_spec("AsChannelFirstd", "Moves channel_dim to the front.",
                   {keys_spec(), opt("channel_dim", A::kInt, "-1", "Current channel axis."),
                    allow_missing_spec()});
}

}  // namespace

void register_utility(TransformRegistry& r) {
  for (const auto& spec :
       {ensure_channel_firstd_spec(), add_channeld_spec(), as_channel_firstd_spec()}) {
    r.add(spec, [n = spec.name](const ConfigNode& a, const BuildContext&) {
      return std::make_unique<ChannelNoOp>(n, KeySelection::from_config(a));
    });
  }
  r.add(as_channel_lastd_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<ChannelLast>(KeySelection::from_config(a),
                                         a.require<int64_t>("channel_dim"));
  });
  r.add(to_tensord_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    return std::make_unique<Cast>("ToTensord", std::move(k), dtypes_per_key(a, n, std::nullopt));
  });
  r.add(ensure_typed_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    if (a.given("data_type") && a.at("data_type").as<std::string>() != "tensor") {
      throw ConfigError(a.at("data_type").source(), a.at("data_type").pointer(),
                        "Barton keeps every image as a tensor; data_type must be \"tensor\"");
    }
    return std::make_unique<Cast>("EnsureTyped", std::move(k), dtypes_per_key(a, n, std::nullopt));
  });
  r.add(to_numpyd_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    return std::make_unique<Cast>("ToNumpyd", std::move(k),
                                  std::vector<std::optional<at::ScalarType>>(n));
  });
  r.add(cast_to_typed_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto n = k.keys.size();
    return std::make_unique<Cast>("CastToTyped", std::move(k), dtypes_per_key(a, n, at::kFloat));
  });
  r.add(copy_itemsd_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const int times = a.require<int>("times");
    if (times < 1) throw a.at("times").error("must be at least 1");
    std::vector<std::string> names;
    if (a.given("names")) {
      names = a.at("names").is_string() ? std::vector<std::string>{a.at("names").as<std::string>()}
                                        : a.at("names").as<std::vector<std::string>>();
    }
    const auto need = k.keys.size() * static_cast<std::size_t>(times);
    if (names.size() != need) {
      throw ConfigError(
          a.source(), a.pointer() + "/names",
          fmt::format("needs keys x times = {} new names, got {}", need, names.size()));
    }
    return std::make_unique<CopyItems>(std::move(k), times, std::move(names));
  });
  r.add(delete_itemsd_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto k = KeySelection::from_config(a);
    const auto sep = a.require<std::string>("sep");
    const auto use_re = per_key<bool>(a, "use_re", k.keys.size(), false);
    for (std::size_t i = 0; i < k.keys.size(); ++i) {
      if (!sep.empty() && k.keys[i].find(sep) != std::string::npos) {
        throw a.at("keys").error("'" + k.keys[i] + "' names a nested key ('" + sep +
                                 "'); Barton's samples hold no nested dictionaries");
      }
      if (!use_re[i]) continue;
      try {
        std::regex check(k.keys[i], std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw a.at("keys").error("'" + k.keys[i] +
                                 "' is not a valid regular expression: " + e.what());
      }
    }
    return std::make_unique<DeleteItems>(std::move(k), use_re);
  });
  r.add(concat_itemsd_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<ConcatItems>(KeySelection::from_config(a),
                                         a.require<std::string>("name"), a.require<int64_t>("dim"));
  });
  r.add(squeeze_dimd_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<SqueezeDim>(KeySelection::from_config(a), a.require<int64_t>("dim"));
  });
}

}  // namespace barton::transforms
