// Every registered component against its own spec: built with only its required arguments, a
// factory must find every optional argument it reads (the registry fills the spec's defaults, so a
// name the spec lacks or a default the factory refuses shows here); every argument is documented.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/handler.h"
#include "engine/inferer.h"
#include "engine/metric.h"
#include "losses/loss.h"
#include "mmar/registries.h"
#include "nets/network.h"
#include "optim/optim.h"
#include "support/test_support.h"
#include "transforms/transform.h"

namespace barton {
namespace {

/// A value of the argument's type for a required argument (the sweep checks defaults, not values).
nlohmann::ordered_json sample_value(ArgType t) {
  switch (t) {
    case ArgType::kBool:
    case ArgType::kBools:
      return true;
    case ArgType::kInt:
      return 2;
    case ArgType::kInts:
      return {8, 8, 8};
    case ArgType::kFloat:
      return 1.0;
    case ArgType::kFloats:
      return {1.0, 1.0, 1.0};
    case ArgType::kString:
    case ArgType::kStrings:
      return "image";
    case ArgType::kObject:
      return nlohmann::ordered_json::object();
    case ArgType::kReference:
    case ArgType::kCallable:
      return "@undefined_in_this_test";
    case ArgType::kAny:
      return 2;
  }
  return nullptr;
}

/// The problems a factory reports about arguments the sweep did not give: each one is a default
/// that the spec and the factory disagree on, or a name the factory reads that its spec lacks.
template <typename Base>
std::vector<std::string> default_problems(const Registry<Base>& r) {
  std::vector<std::string> problems;
  for (const auto& name : r.names()) {
    if (!r.available(name)) continue;
    const ComponentSpec* spec = r.find(name);
    nlohmann::ordered_json conf{{"name", name}, {"args", nlohmann::ordered_json::object()}};
    std::set<std::string> given;
    for (const auto& a : spec->args) {
      if (!a.required) continue;
      conf["args"][a.name] = sample_value(a.type);
      given.insert(a.name);
    }
    try {
      r.create(ConfigNode::from_json(conf, "sweep.json"));
    } catch (const ConfigError& e) {
      const std::string prefix = "/args/";
      std::string arg;
      if (e.pointer().rfind(prefix, 0) == 0) {
        arg = e.pointer().substr(prefix.size());
        arg = arg.substr(0, arg.find('/'));
      }
      const bool missing = e.message().find("missing required key") != std::string::npos;
      if (missing || (!arg.empty() && !given.count(arg))) {
        problems.push_back(r.kind() + " " + name + ": " + e.what());
      }
    } catch (const std::exception&) {
      // Values the sweep made up may be refused in other ways; only argument problems count here.
    }
  }
  return problems;
}

TEST(Components, EveryFactoryReadsItsDefaultsFromItsSpec) {
  const auto& r = builtin_registries();
  std::vector<std::string> problems;
  auto add = [&](std::vector<std::string> p) {
    problems.insert(problems.end(), p.begin(), p.end());
  };
  add(default_problems(r.transforms));
  add(default_problems(r.networks));
  add(default_problems(r.losses));
  add(default_problems(r.optimizers));
  add(default_problems(r.lr_schedulers));
  add(default_problems(r.datasets));
  add(default_problems(r.dataloaders));
  add(default_problems(r.inferers));
  add(default_problems(r.metrics));
  add(default_problems(r.handlers));
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  EXPECT_TRUE(problems.empty()) << all;
}

TEST(Components, EveryArgumentIsDocumented) {
  for (const RegistryBase* r : builtin_registries().all()) {
    for (const auto& name : r->names()) {
      const ComponentSpec* s = r->find(name);
      EXPECT_FALSE(s->summary.empty()) << r->kind() << " " << name;
      for (const auto& a : s->args) {
        EXPECT_FALSE(a.doc.empty()) << r->kind() << " " << name << "." << a.name;
        if (!a.default_json.empty()) {
          EXPECT_NO_THROW((void)nlohmann::json::parse(a.default_json))
              << r->kind() << " " << name << "." << a.name;
        }
      }
    }
  }
}

}  // namespace
}  // namespace barton
