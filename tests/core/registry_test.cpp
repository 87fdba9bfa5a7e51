#include "core/registry.h"

#include <gtest/gtest.h>

#include "core/strings.h"
#include "support/test_support.h"

namespace barton {
namespace {

struct Thing {
  virtual ~Thing() = default;
  double a_min = 0, a_max = 0;
};

Registry<Thing> make_registry() {
  Registry<Thing> r("transform");
  r.add(ComponentSpec{"ScaleIntensityRanged",
                      "maps ranges",
                      {req("keys", ArgType::kStrings, ""), req("a_min", ArgType::kFloat, ""),
                       req("a_max", ArgType::kFloat, ""), opt("clip", ArgType::kBool, "false", "")},
                      ""},
        [](const ConfigNode& args, const BuildContext&) {
          auto t = std::make_unique<Thing>();
          t->a_min = args.require<double>("a_min");
          t->a_max = args.require<double>("a_max");
          if (!(t->a_max > t->a_min)) {
            throw ConfigError(args.at("a_max").source(), args.at("a_max").pointer(),
                              "must be greater than a_min (got " + std::to_string(int(t->a_max)) +
                                  " <= " + std::to_string(int(t->a_min)) + ")");
          }
          return t;
        });
  r.add_alias("ScaleIntensityRangeD", "ScaleIntensityRanged");
  r.add_planned(
      ComponentSpec{"Spacingd", "resamples", {req("keys", ArgType::kStrings, "")}, "issue #3"});
  return r;
}

TEST(Registry, BuildsByNameAndAlias) {
  const auto r = make_registry();
  const auto spec = ConfigNode::parse(
      R"({"name": "ScaleIntensityRangeD", "args": {"keys": "image", "a_min": -57, "a_max": 164}})",
      "c.json");
  const auto t = r.create(spec);
  ASSERT_TRUE(t);
  EXPECT_DOUBLE_EQ(t->a_max, 164);
}

TEST(Registry, DisabledGivesNull) {
  const auto r = make_registry();
  EXPECT_EQ(r.create(ConfigNode::parse(R"({"name": "Nope", "disabled": true})", "c.json")).get(),
            nullptr);
}

TEST(Registry, MisspeltNameSuggestsTheClosest) {
  const auto r = make_registry();
  test::expect_error_containing(
      [&] {
        r.create(ConfigNode::parse(R"({"name": "ScaleIntensityRangd", "args": {}})",
                                   "config_train.json"));
      },
      "config_train.json:/name: unknown transform 'ScaleIntensityRangd'; did you mean "
      "'ScaleIntensityRanged'?");
}

TEST(Registry, BadArgumentTypeNamesThePointer) {
  const auto r = make_registry();
  test::expect_error_containing(
      [&] {
        r.create(ConfigNode::parse(
            R"({"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": "low", "a_max": 1}})",
            "c.json"));
      },
      "c.json:/args/a_min: expected float, got string \"low\"");
}

TEST(Registry, UnknownArgumentSuggests) {
  const auto r = make_registry();
  test::expect_error_containing(
      [&] {
        r.create(ConfigNode::parse(
            R"({"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": 0, "a_max": 1, "clp": true}})",
            "c.json"));
      },
      "c.json:/args/clp: unknown argument 'clp' for transform 'ScaleIntensityRanged'; did you mean "
      "'clip'?");
}

TEST(Registry, FactoryErrorsKeepTheirPointer) {
  const auto r = make_registry();
  test::expect_error_containing(
      [&] {
        r.create(ConfigNode::parse(
            R"({"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": 100, "a_max": 0}})",
            "inline.json"));
      },
      "inline.json:/args/a_max: must be greater than a_min");
}

TEST(Registry, PlannedComponentsSayNotYetAvailable) {
  const auto r = make_registry();
  test::expect_error_containing(
      [&] {
        r.create(ConfigNode::parse(R"({"name": "Spacingd", "args": {"keys": "image"}})", "c.json"));
      },
      "c.json:/name: transform 'Spacingd' is not yet available in this version of Barton (planned: "
      "issue #3)");
}

TEST(Registry, ValidateCollectsEveryProblem) {
  const auto r = make_registry();
  Diagnostics d;
  r.validate(
      ConfigNode::parse(R"({"name": "ScaleIntensityRanged", "argz": 1, "args": {"a_min": "x"}})",
                        "c.json"),
      d);
  ASSERT_EQ(d.errors().size(), 4u);  // unknown key argz, bad a_min, missing keys, missing a_max
}

TEST(Registry, PythonPathIsRefused) {
  const auto r = make_registry();
  test::expect_error_containing(
      [&] { r.create(ConfigNode::parse(R"({"path": "my.module.Loss", "args": {}})", "c.json")); },
      "c.json:/path: Python class paths cannot be loaded by Barton");
}

TEST(Registry, NameWithAPythonPathBuildsTheNamedComponent) {
  // {"name": "ClickInteraction", "path": "deepgrow.interaction.ClickInteraction"} in Clara.
  const auto r = make_registry();
  Diagnostics d;
  r.validate(ConfigNode::parse(R"({"name": "ScaleIntensityRanged", "path": "my.module.Scale",
                                   "args": {"keys": "image", "a_min": 0, "a_max": 1}})",
                               "c.json"),
             d);
  EXPECT_TRUE(d.errors().empty()) << (d.errors().empty() ? "" : d.errors().front().what());
}

TEST(Strings, DidYouMeanStaysQuietForFarNames) {
  EXPECT_EQ(did_you_mean("Completely", {"DiceLoss", "FocalLoss"}), "");
  EXPECT_EQ(did_you_mean("DiseLoss", {"DiceLoss", "FocalLoss"}), "; did you mean 'DiceLoss'?");
}

}  // namespace
}  // namespace barton
