#include "mmar/idioms.h"

#include <gtest/gtest.h>

#include "core/errors.h"

namespace barton::mmar {
namespace {

TEST(Idioms, RecognisesClaraPatterns) {
  auto i = parse_idiom("#@model.parameters()");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->kind, IdiomKind::kParameters);
  EXPECT_EQ(i->target, "model");
  i = parse_idiom("#monai.handlers.from_engine(['loss'], first=True)");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->kind, IdiomKind::kFromEngine);
  EXPECT_EQ(i->keys, std::vector<std::string>{"loss"});
  EXPECT_TRUE(i->first);
  i = parse_idiom("#monai.handlers.from_engine([\"pred\", \"label\"])");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->keys, (std::vector<std::string>{"pred", "label"}));
  EXPECT_FALSE(i->first);
  EXPECT_EQ(parse_idiom("lambda x: None")->kind, IdiomKind::kLambdaNone);
  EXPECT_EQ(parse_idiom("lambda x: x")->kind, IdiomKind::kLambdaIdentity);
  EXPECT_EQ(parse_idiom("lambda x: x[0]")->index, 0);
  i = parse_idiom("lambda x: x[0]['loss']");
  EXPECT_EQ(i->kind, IdiomKind::kLambdaKey);
  EXPECT_EQ(i->keys[0], "loss");
  EXPECT_EQ(parse_idiom("@optimizer")->target, "optimizer");
  EXPECT_FALSE(parse_idiom("models/model.pt"));
}

TEST(Idioms, RefusesOtherPythonSayingWhatToWrite) {
  try {
    parse_idiom("lambda x: x * 2");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "Python code is not evaluated by Barton: 'lambda x: x * 2'; write"),
              std::string::npos);
  }
  EXPECT_THROW(parse_idiom("#torch.optim.Adam(params)"), Error);
}

}  // namespace
}  // namespace barton::mmar
