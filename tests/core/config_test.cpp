#include "core/config.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "support/test_support.h"

namespace barton {
namespace {

TEST(ConfigNode, TypedAccessWithPointers) {
  const auto c =
      ConfigNode::parse(R"({"a": {"b": [1, 2.5, "x"]}, "flag": true, "n": 3})", "inline.json");
  EXPECT_EQ(c.at("a").at("b").at(0).as<int>(), 1);
  EXPECT_DOUBLE_EQ(c.at("a").at("b").at(1).as<double>(), 2.5);
  EXPECT_EQ(c.at("a").at("b").at(2).pointer(), "/a/b/2");
  EXPECT_EQ(c.require<bool>("flag"), true);
  EXPECT_EQ(c.get_or<int>("missing", 7), 7);
}

TEST(ConfigNode, WrongTypeNamesFileAndPointer) {
  const auto c = ConfigNode::parse(R"({"train": {"lr": "fast"}})", "config_train.json");
  test::expect_error_containing(
      [&] { c.at("train").require<double>("lr"); },
      "config_train.json:/train/lr: expected a number, got string \"fast\"");
}

TEST(ConfigNode, MissingKey) {
  const auto c = ConfigNode::parse(R"({"train": {}})", "c.json");
  test::expect_error_containing([&] { c.at("train").at("loss"); },
                                "c.json:/train: missing required key 'loss'");
}

TEST(ConfigNode, UnknownKeySuggestsTheNearestAllowedOne) {
  const auto c = ConfigNode::parse(R"({"a_mni": 1})", "c.json");
  test::expect_error_containing(
      [&] {
        c.expect_only_keys({"a_min", "a_max"});
      },
      "c.json:/a_mni: unknown key 'a_mni'; did you mean 'a_min'?");
}

TEST(ConfigNode, SyntaxErrorGivesLineAndColumn) {
  test::expect_error_containing(
      [] { ConfigNode::parse("{\n  \"a\": 1,\n  \"b\": }\n", "bad.json"); }, "bad.json:3:");
}

TEST(ConfigNode, ANumberTooLargeForADoubleIsAConfigError) {
  // Found by fuzz/datalist: nlohmann throws out_of_range (not parse_error) for it, which escaped.
  test::expect_error_containing([] { ConfigNode::parse("7e77777", "big.json"); },
                                "big.json: invalid JSON: number overflow parsing '7e77777'");
  EXPECT_THROW(ConfigNode::parse(R"({"lr": -1e400})", "c.json"), ConfigError);
}

TEST(ConfigNode, PointerTokensAreEscaped) {
  const auto c = ConfigNode::parse(R"({"a/b": {"c~d": 1}})", "c.json");
  EXPECT_EQ(c.at("a/b").at("c~d").pointer(), "/a~1b/c~0d");
}

TEST(ConfigNode, IntegersRejectFractions) {
  const auto c = ConfigNode::parse(R"({"epochs": 2.5, "ok": 3.0})", "c.json");
  EXPECT_EQ(c.require<int>("ok"), 3);
  test::expect_error_containing([&] { c.require<int>("epochs"); },
                                "c.json:/epochs: expected an integer, got number 2.5");
}

}  // namespace
}  // namespace barton
