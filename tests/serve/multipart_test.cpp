// The transport pieces of barton serve without a socket: the multipart reader and writer, upload
// names, session ids and the router.
#include "serve/multipart.h"

#include <gtest/gtest.h>

#include "serve/raw_http.h"
#include "serve/router.h"
#include "serve/sessions.h"
#include "support/test_support.h"

namespace barton::serve {
namespace {

using test::FormPart;

TEST(Multipart, ReadsThePythonClientsBodyWithItsDollarBoundaryAndEpilogue) {
  const std::string bin("\x1f\x8b\x00\r\n--x\r\n\0end", 12);
  const auto body = test::python_multipart(
      {{"params", "", "", "{\"foreground\": [[1, 2, 3]]}"},
       {"datapoint", "/tmp/tmpab12/x y.nii.gz", "application/octet-stream", bin}},
      test::kPythonBoundary);
  const auto b = multipart_boundary("multipart/form-data; boundary=" + test::kPythonBoundary);
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, test::kPythonBoundary);
  const auto parts = parse_multipart(body, *b);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "params");
  EXPECT_FALSE(parts[0].is_file());
  EXPECT_EQ(parts[0].data, "{\"foreground\": [[1, 2, 3]]}");
  EXPECT_EQ(parts[1].name, "datapoint");
  EXPECT_EQ(parts[1].filename, "/tmp/tmpab12/x y.nii.gz");
  EXPECT_EQ(parts[1].content_type, "application/octet-stream");
  EXPECT_EQ(parts[1].data, bin);  // CRLF and "--" inside the data survive
}

TEST(Multipart, ReadsAQuotedBoundaryAndSkipsAPreamble) {
  const auto b = multipart_boundary("Multipart/Form-Data; boundary=\"MIME_boundary_0a1b\"");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, "MIME_boundary_0a1b");
  const std::string body =
      "this is a preamble\r\n--MIME_boundary_0a1b\r\nContent-Disposition: form-data; "
      "name=\"image\"; filename=\"a.nii\"\r\n\r\nDATA\r\n--MIME_boundary_0a1b--\r\n";
  const auto parts = parse_multipart(body, *b);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].filename, "a.nii");
  EXPECT_EQ(parts[0].data, "DATA");
  EXPECT_FALSE(multipart_boundary("application/json"));
  EXPECT_FALSE(multipart_boundary("multipart/form-data"));
}

TEST(Multipart, WriterStartsAtTheBoundaryAndRoundTrips) {
  Part a;
  a.name = "params";
  a.data = "{\"points\": []}";
  Part f;
  f.name = "image";
  f.filename = "result.nii.gz";
  f.content_type = "application/octet-stream";
  f.data = std::string("\x1f\x8b\r\n--\r\n", 8);
  const auto mp = write_multipart({a, f});
  ASSERT_EQ(mp.body.rfind("--", 0), 0u) << "a preamble breaks Poco's MultipartReader";
  const auto b = multipart_boundary(mp.content_type);
  ASSERT_TRUE(b);
  EXPECT_EQ(mp.body.substr(mp.body.size() - b->size() - 6), "--" + *b + "--\r\n");
  const auto back = parse_multipart(mp.body, *b);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].data, a.data);
  EXPECT_EQ(back[1].filename, f.filename);
  EXPECT_EQ(back[1].data, f.data);
}

TEST(Multipart, ATruncatedBodyNamesThePart) {
  const std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.nii\"\r\n\r\nDAT";
  test::expect_error_containing([&] { parse_multipart(body, "B"); },
                                "part 1 ('image') is not followed by a boundary");
  test::expect_error_containing([&] { parse_multipart("no boundary here", "B"); },
                                "no line starts with the boundary '--B'");
}

TEST(Uploads, NamesLoseTheirFoldersAndGainAnExtensionFromTheBytes) {
  EXPECT_EQ(safe_upload_name("/tmp/x/../../etc/passwd", "plain"), "passwd.nii");
  EXPECT_EQ(safe_upload_name("C:\\scans\\ct 1.nii.gz", "\x1f\x8b"), "ct_1.nii.gz");
  EXPECT_EQ(safe_upload_name("..", std::string("\x1f\x8b\x08", 3)), "image.nii.gz");
  EXPECT_EQ(safe_upload_name("blob", "NRRD0004\n"), "blob.nrrd");
}

TEST(Sessions, IdsAreUuidsAndNothingElsePasses) {
  const auto id = new_uuid();
  EXPECT_TRUE(valid_session_id(id)) << id;
  EXPECT_EQ(id[14], '4');
  EXPECT_NE(new_uuid(), id);
  EXPECT_FALSE(valid_session_id("../../etc"));
  EXPECT_FALSE(valid_session_id(std::string(36, 'a')));
  EXPECT_FALSE(valid_session_id("ABCDEF01-2345-4678-89ab-0123456789ab"));
}

TEST(Sessions, ExpireAfterTheirIdleTimeAndLeaveNoFiles) {
  test::TempDir tmp;
  SessionStore store(tmp.file("s"), 3600, 7200);
  Part p;
  p.name = "image";
  p.filename = "ct.nii.gz";
  p.data = "\x1f\x8b...";
  const auto s = store.create({&p}, 99999);
  EXPECT_EQ(s->expiry_s, 7200) << "capped at the server's maximum";
  EXPECT_EQ(store.get(s->id), s);
  s->last_access_ns = s->last_access_ns.load() - int64_t{7201} * 1000000000;
  EXPECT_EQ(store.get(s->id), nullptr);
  EXPECT_FALSE(std::filesystem::exists(s->dir));
  EXPECT_EQ(store.size(), 0u);
}

TEST(Router, MatchesWithOrWithoutTheTrailingSlashAndCapturesSegments) {
  Router r;
  r.add("GET", "/info/", [](const Request&) { return Response::json("{\"a\":1}"); });
  r.add("GET", "/session/{id}",
        [](const Request& q) { return Response::json("\"" + q.captures.at(0) + "\""); });
  Request q;
  q.method = "GET";
  q.path = "/info";
  EXPECT_EQ(r.dispatch(q).status, 200);
  q.path = "/info/";
  EXPECT_EQ(r.dispatch(q).status, 200);
  q.path = "/session/abc";
  EXPECT_EQ(r.dispatch(q).body, "\"abc\"");
  q.path = "/session/abc/def";
  EXPECT_EQ(r.dispatch(q).status, 404);
  q.method = "POST";
  q.path = "/info/";
  const auto res = r.dispatch(q);
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.body, "{\"code\":405,\"message\":\"POST is not allowed on /info/\"}");
}

}  // namespace
}  // namespace barton::serve
