// The annotation server's datastore (label versions, ids, repair after an interrupted save) and
// its authentication (salted hashes, users file, tokens, lockout), without a server.
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "serve/auth.h"
#include "serve/datastore.h"
#include "support/test_support.h"
#include <sys/stat.h>

namespace barton {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using serve::Datastore;

void writer_of(const std::string& bytes, const std::string& path) {
  write_file_atomic(path, bytes);
}

TEST(DatastoreIds, OnlySafeNamesAreIds) {
  for (const char* ok : {"case_3", "spleen_10.v2", "A-b_9"})
    EXPECT_TRUE(serve::valid_datastore_id(ok)) << ok;
  for (const char* bad : {"", "..", "../x", "a/b", ".hidden", "a..b", "a b", "a\\b", "x%2f"})
    EXPECT_FALSE(serve::valid_datastore_id(bad)) << bad;
  EXPECT_FALSE(serve::valid_datastore_id(std::string(129, 'a')));
  EXPECT_TRUE(serve::valid_label_tag("final"));
  EXPECT_FALSE(serve::valid_label_tag("fin.al"));
  EXPECT_FALSE(serve::valid_label_tag("../final"));
}

TEST(Datastore, EverySavedLabelIsANewVersionAndTheCurrentFileIsTheLatest) {
  test::TempDir dir;
  write_file_atomic(dir.file("case_1.nii.gz"), "image one");
  write_file_atomic(dir.file("case_2.nii.gz"), "image two");
  Datastore ds(dir.path());
  ASSERT_EQ(ds.images().size(), 2u);
  EXPECT_EQ(ds.unlabelled(), (std::vector<std::string>{"case_1", "case_2"}));

  const auto v1 = ds.save_label(
      "case_1", "final", [](const std::string& p) { writer_of("first", p); }, {{"user", "ana"}});
  const auto v2 = ds.save_label(
      "case_1", "final", [](const std::string& p) { writer_of("second", p); }, {{"user", "ben"}});
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v2.version, 2);
  // Version 1 is still there, unchanged; the current file is version 2.
  EXPECT_EQ(read_file(ds.label("case_1", "final", 1)->path), "first");
  EXPECT_EQ(read_file(ds.label("case_1", "final")->path), "second");
  EXPECT_EQ(read_file(dir.path() + "/labels/final/case_1.nii.gz"), "second");
  EXPECT_EQ(ds.label("case_1", "final", 1)->meta["user"], "ana");
  EXPECT_EQ(ds.label("case_1", "final")->meta["version"], 2);
  EXPECT_EQ(ds.label("case_1", "final")->meta["sha256"].get<std::string>().size(), 64u);
  EXPECT_FALSE(ds.label("case_1", "final", 3));
  EXPECT_FALSE(ds.label("case_2", "final"));
  EXPECT_EQ(ds.unlabelled(), (std::vector<std::string>{"case_2"}));

  ds.save_label("case_2", "original", [](const std::string& p) { writer_of("model", p); }, {});
  const auto stats = ds.stats_json();
  EXPECT_EQ(stats["total"], 2);
  EXPECT_EQ(stats["completed"], 1);
  EXPECT_EQ(stats["label_tags"], (json{{"final", 1}, {"original", 1}}));
  const auto objects = ds.objects_json()["objects"];
  EXPECT_EQ(objects["case_1"]["image"]["ext"], ".nii.gz");
  EXPECT_EQ(objects["case_1"]["labels"]["final"]["info"]["versions"], 2);
  EXPECT_EQ(objects["case_2"]["labels"]["original"]["ext"], ".nii.gz");
}

TEST(Datastore, AnInterruptedSaveIsRepairedWhenTheStoreOpens) {
  test::TempDir dir;
  write_file_atomic(dir.file("c.nii.gz"), "image");
  {
    Datastore ds(dir.path());
    ds.save_label("c", "final", [](const std::string& p) { writer_of("v1", p); }, {});
  }
  // A save killed after writing version 2 but before the current link was moved.
  const auto versions = dir.path() + "/labels/final/.versions/c";
  write_file_atomic(versions + "/0002.nii.gz", "v2");
  // And a temp file a killed writer left behind, which must not count as a version.
  write_file_atomic(versions + "/.0003.nii.gz.tmp.123", "partial");
  EXPECT_EQ(read_file(dir.path() + "/labels/final/c.nii.gz"), "v1");
  // An old temp file (a killed write long ago) goes when the store opens; a fresh one stays.
  write_file_atomic(versions + "/.tmp.0009.nii.gz.777", "old partial");
  fs::last_write_time(versions + "/.tmp.0009.nii.gz.777",
                      fs::file_time_type::clock::now() - std::chrono::hours(1));
  Datastore reopened(dir.path());
  EXPECT_FALSE(fs::exists(versions + "/.tmp.0009.nii.gz.777"));
  EXPECT_TRUE(fs::exists(versions + "/.0003.nii.gz.tmp.123"));
  EXPECT_EQ(read_file(dir.path() + "/labels/final/c.nii.gz"), "v2");
  EXPECT_EQ(reopened.versions("c", "final").size(), 2u);
  EXPECT_EQ(reopened.label("c", "final")->meta, json::object()) << "its metadata was never written";
}

TEST(Datastore, AnImageIsNeverReplacedByOtherContent) {
  test::TempDir dir;
  Datastore ds(dir.path());
  const auto path = ds.add_image("scan", ".nii.gz", "bytes");
  EXPECT_EQ(read_file(path), "bytes");
  EXPECT_EQ(ds.add_image("scan", ".nii.gz", "bytes"), path) << "the same upload again is kept";
  test::expect_error_containing([&] { ds.add_image("scan", ".nii.gz", "other"); },
                                "is already in the datastore");
  EXPECT_EQ(read_file(path), "bytes");
  test::expect_error_containing([&] { ds.add_image("../up", ".nii.gz", "x"); }, "invalid image id");
  EXPECT_FALSE(ds.image_path("../scan"));
}

TEST(Auth, PasswordsAreStoredAsSaltedHashesAndVerified) {
  const auto a = serve::hash_password("correct horse", 1000);
  const auto b = serve::hash_password("correct horse", 1000);
  EXPECT_NE(a, b) << "a fresh salt each time";
  EXPECT_EQ(a.rfind("pbkdf2_sha256$1000$", 0), 0u) << a;
  EXPECT_EQ(a.find("correct"), std::string::npos);
  EXPECT_TRUE(serve::verify_password("correct horse", a));
  EXPECT_FALSE(serve::verify_password("correct horsf", a));
  EXPECT_FALSE(serve::verify_password("correct horse", "plain"));
  EXPECT_FALSE(serve::verify_password("x", "pbkdf2_sha256$10$AAAA$AAAA"));
}

TEST(Auth, TheUsersFileIsCheckedWithTheJsonPathOfEachMistake) {
  test::TempDir dir;
  const auto file = dir.file("users.json");
  write_file_atomic(
      file, R"({"users": [{"username": "ana", "password": "secret", "roles": ["admin"]}]})");
  test::expect_error_containing([&] { serve::read_users(file); },
                                file + ":/users/0/password: expected a salted hash");
  const auto hash = serve::hash_password("secret-1", 1000);
  write_file_atomic(
      file,
      json{{"users", {{{"username", "ana"}, {"password", hash}, {"roles", {"owner"}}}}}}.dump());
  test::expect_error_containing([&] { serve::read_users(file); },
                                file + ":/users/0/roles/0: unknown role");
  write_file_atomic(file, "{");
  test::expect_error_containing([&] { serve::read_users(file); }, "not valid JSON");

  fs::remove(file);
  serve::write_user(file, {"ana", hash, {serve::Role::kAnnotator}});
  serve::write_user(file, {"ben", hash, {serve::Role::kAdmin}});
  serve::write_user(file, {"ana", hash, {serve::Role::kReviewer}});  // replaced, not added
  const auto users = serve::read_users(file);
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].highest(), serve::Role::kReviewer);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(serve::parse_role("monailabel-admin"), serve::Role::kAdmin);
}

TEST(Auth, TokensAreIssuedForTheRightPasswordAndFailuresAreLimited) {
  test::TempDir dir;
  const auto file = dir.file("users.json");
  serve::write_user(file,
                    {"ana", serve::hash_password("ana-password", 1000), {serve::Role::kAnnotator}});
  serve::Authenticator auth(file, 3600);
  serve::Authenticator::Token t;
  EXPECT_EQ(auth.login("ana", "wrong", &t), serve::Authenticator::LoginResult::kWrong);
  EXPECT_EQ(auth.login("nobody", "ana-password", &t), serve::Authenticator::LoginResult::kWrong);
  ASSERT_EQ(auth.login("ana", "ana-password", &t), serve::Authenticator::LoginResult::kOk);
  EXPECT_GE(t.access_token.size(), 40u);
  EXPECT_EQ(t.token_type, "bearer");
  const auto who = auth.check("bearer " + t.access_token);  // MONAI Label sends "bearer"
  ASSERT_TRUE(who);
  EXPECT_EQ(who->username, "ana");
  EXPECT_EQ(who->role, serve::Role::kAnnotator);
  EXPECT_TRUE(auth.check("Bearer " + t.access_token));
  EXPECT_FALSE(auth.check(t.access_token)) << "no scheme";
  EXPECT_FALSE(auth.check("Bearer " + t.access_token + "x"));
  EXPECT_FALSE(auth.check("Basic " + t.access_token));
  EXPECT_TRUE(auth.revoke("Bearer " + t.access_token));
  EXPECT_FALSE(auth.check("Bearer " + t.access_token));
  // Five failures lock the name for a minute, even for the right password.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(auth.login("ana", "guess", &t), serve::Authenticator::LoginResult::kWrong);
  EXPECT_EQ(auth.login("ana", "ana-password", &t), serve::Authenticator::LoginResult::kLocked);

  serve::Authenticator short_lived(file, 0);
  ASSERT_EQ(short_lived.login("ana", "ana-password", &t), serve::Authenticator::LoginResult::kOk);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(short_lived.check("Bearer " + t.access_token)) << "expired";
}

}  // namespace
}  // namespace barton
