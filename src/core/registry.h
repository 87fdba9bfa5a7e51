#pragma once
/// Component registries (docs/architecture.md; docs/adr/0001). A component is named in JSON as
/// {"name": "<Registered>", "args": {...}, "disabled": bool}. Each registry entry carries a
/// ComponentSpec: the argument table that `barton list-components` prints and that
/// `barton config check` validates against, and, once the component is implemented, a factory.
/// Entries without a factory are "planned": configs that name them resolve and check, and
/// building them reports "not yet available" by name.

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/errors.h"

namespace barton {

/// The JSON shapes an argument may take. "Or list" types accept a scalar or an array of it,
/// as MONAI's Sequence-or-scalar arguments do.
enum class ArgType {
  kAny,
  kBool,
  kInt,
  kFloat,
  kString,
  kBools,    ///< bool or list of bool
  kInts,     ///< int or list of int
  kFloats,   ///< number or list of numbers
  kStrings,  ///< string or list of strings
  kObject,
  kReference,  ///< "@name" (or a Clara idiom resolving to a reference)
  kCallable,   ///< output/batch transform: a recognised Clara idiom or lambda string
};

/// Human-readable type ("int | list[int]").
std::string arg_type_name(ArgType type);

/// One constructor argument of a component.
struct ArgSpec {
  std::string name;
  ArgType type = ArgType::kAny;
  std::string default_json;  ///< JSON text of the default; empty when required.
  std::string doc;
  bool required = false;
};

/// Shorthand constructors for spec tables.
ArgSpec req(std::string name, ArgType type, std::string doc);
ArgSpec opt(std::string name, ArgType type, std::string default_json, std::string doc);

/// What a registry knows about one component.
struct ComponentSpec {
  std::string name;     ///< Registered (MONAI / Clara) name.
  std::string summary;  ///< One line.
  std::vector<ArgSpec> args;
  std::string provided_by;           ///< For planned components: the issue that provides them.
  std::vector<std::string> aliases;  ///< Other names of the component (MONAI's XD / XDict, ...).
  /// (name, default JSON text) of every optional argument: what Registry::create() fills in, so a
  /// factory reads each argument's default from its spec and never writes one itself.
  std::vector<std::pair<std::string, std::string>> defaults() const;
};

/// A dictionary transform's spec: MONAI registers each one as Xd, XD and XDict.
ComponentSpec dict_spec(std::string name, std::string summary, std::vector<ArgSpec> args);

/// What a factory may need beyond its arguments: the MMAR root (relative paths), the components
/// built so far ("@pre_transforms" for Invertd), the run's seed.
struct BuildContext {
  std::string mmar_root = ".";
  /// Returns the built object for a reference name ("pre_transforms"), or an empty std::any.
  std::function<std::any(const std::string& name)> lookup;
  uint64_t seed = 0;
};

/// Collects problems instead of throwing, so `config check` can report all of them at once.
class Diagnostics {
 public:
  void add(const ConfigError& e) { errors_.push_back(e); }
  void add(const ConfigNode& at, std::string message) {
    errors_.emplace_back(at.source(), at.pointer(), std::move(message));
  }
  const std::vector<ConfigError>& errors() const { return errors_; }
  bool empty() const { return errors_.empty(); }

 private:
  std::vector<ConfigError> errors_;
};

/// Type-erased view of a registry: its kind and specs. Thread-safety: read-only after setup.
class RegistryBase {
 public:
  explicit RegistryBase(std::string kind) : kind_(std::move(kind)) {}
  virtual ~RegistryBase() = default;

  const std::string& kind() const { return kind_; }
  /// Sorted names, implemented and planned.
  std::vector<std::string> names() const;
  const ComponentSpec* find(std::string_view name) const;
  virtual bool available(std::string_view name) const = 0;

  /// Checks a component object: allowed keys, known name (with "did you mean"), argument names,
  /// types and required arguments. Problems go to `diag`. `extra_keys` are additional keys allowed
  /// beside name/args/disabled (e.g. "rank", "log_label").
  void validate(const ConfigNode& spec,
                Diagnostics& diag,
                const std::vector<std::string>& extra_keys = {}) const;

  /// validate() that throws the first problem.
  void validate_or_throw(const ConfigNode& spec,
                         const std::vector<std::string>& extra_keys = {}) const {
    Diagnostics diag;
    validate(spec, diag, extra_keys);
    if (!diag.empty()) throw diag.errors().front();
  }

  /// Adds a planned entry (no factory yet). Throws InternalError on duplicates.
  void add_planned(ComponentSpec spec);
  /// Makes `alias` another name of `canonical` (MONAI's XD / XDict spellings, BasicUnet...).
  void add_alias(std::string alias, std::string canonical);
  /// The registered name for `name` (itself, or what an alias stands for); "" if unknown.
  std::string canonical_name(std::string_view name) const;
  /// Aliases that point at `canonical`, sorted.
  std::vector<std::string> aliases_of(std::string_view canonical) const;

 protected:
  void add_spec(ComponentSpec spec);
  [[noreturn]] void throw_unknown(const ConfigNode& name_node, const std::string& name) const;
  [[noreturn]] void throw_unavailable(const ConfigNode& name_node, const ComponentSpec& s) const;

  std::string kind_;
  std::map<std::string, ComponentSpec, std::less<>> specs_;
  std::map<std::string, std::string, std::less<>> aliases_;
};

/// Registry of components deriving from Base.
template <typename Base>
class Registry final : public RegistryBase {
 public:
  using Factory =
      std::function<std::unique_ptr<Base>(const ConfigNode& args, const BuildContext& ctx)>;
  explicit Registry(std::string kind) : RegistryBase(std::move(kind)) {}

  /// Registers an implemented component. Throws InternalError if `spec.name` exists.
  void add(ComponentSpec spec, Factory factory) {
    const std::string name = spec.name;
    add_spec(std::move(spec));
    factories_.emplace(name, std::move(factory));
  }

  /// Attaches the implementation of an already catalogued (planned) component.
  void implement(std::string_view name, Factory factory) {
    const auto canonical = canonical_name(name);
    BARTON_INTERNAL_ASSERT(!canonical.empty(), "{} '{}' has no spec in the catalogue", kind_, name);
    BARTON_INTERNAL_ASSERT(!factories_.count(canonical), "{} '{}' implemented twice", kind_, name);
    factories_.emplace(canonical, std::move(factory));
  }

  bool available(std::string_view name) const override {
    return factories_.find(canonical_name(name)) != factories_.end();
  }

  /// Builds from {"name", "args", "disabled"}; returns nullptr when disabled.
  /// Throws ConfigError at the offending JSON Pointer (validation problems, unknown or
  /// not-yet-available names).
  std::unique_ptr<Base> create(const ConfigNode& spec,
                               const BuildContext& ctx = {},
                               const std::vector<std::string>& extra_keys = {}) const {
    if (spec.is_object() && spec.has("disabled") && spec.at("disabled").as<bool>()) return nullptr;
    Diagnostics diag;
    validate(spec, diag, extra_keys);
    if (!diag.empty()) throw diag.errors().front();
    const auto name = canonical_name(spec.require<std::string>("name"));
    const auto it = factories_.find(name);
    if (it == factories_.end()) throw_unavailable(spec.at("name"), *find(name));
    return it->second(spec.at_or_empty("args").with_defaults(find(name)->defaults()), ctx);
  }

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

}  // namespace barton
