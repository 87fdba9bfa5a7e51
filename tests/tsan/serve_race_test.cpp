// Built in the ThreadSanitizer build (make tsan, in .ci/run): `barton serve` with models loaded,
// every line of Barton instrumented (nets, engine and serve included), under clients at once:
// segmentations, DeepGrow clicks with and without sessions, MONAI Label's /infer/ on datastore
// images, label saves and listings, with a memory budget so small that every switch of model
// unloads the other (the model store's LRU). ThreadSanitizer fails the test (exit code 66) on any
// data race; the assertions check every answer, and that the same request got the same mask in
// every thread.
//
// LibTorch is Debian's uninstrumented build (see data_race_test.cpp): ATen runs on one intra-op
// thread so that every thread here is one Barton started.
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "serve/interactive_support.h"
#include "serve/model_store.h"
#include "serve/multipart.h"
#include "serve/raw_http.h"
#include "serve/server.h"
#include "support/test_support.h"
#include "support/trained_mmars.h"

namespace barton {
namespace {

using nlohmann::json;

struct Models {
  test::TempDir dir;
  std::string tiny, deepgrow;
  Models() {
    at::set_num_threads(1);
    tiny = test::train_tiny_mmar(dir.file("tiny"));
    deepgrow = test::train_deepgrow3d_mmar(dir.file("deepgrow_3d"), test::source_dir());
  }
};

const Models& models() {
  static const Models m;
  return m;
}

// The image part of a multipart reply (empty when there is none).
std::string image_part(const test::RawReply& r) {
  const auto b = serve::multipart_boundary(r.header("content-type"));
  if (!b) return "";
  for (const auto& p : serve::parse_multipart(r.body, *b))
    if (p.name == "image") return p.data;
  return "";
}

TEST(TsanServe, ModelsSessionsAndTheDatastoreUnderConcurrentClients) {
  const auto& m = models();
  test::TempDir work;
  std::filesystem::copy(m.tiny + "/data/imagesTr", work.file("store"));
  serve::ServerOptions o;
  o.models = {m.tiny, m.deepgrow};
  o.sets = test::deepgrow3d_serve_sets("deepgrow_3d");
  o.datastore = work.file("store");
  o.work_dir = work.file("work");
  o.http.port = 0;
  o.http.threads = 8;
  o.workers = 2;
  o.queue_capacity = 64;
  o.memory_budget_mb = 1;  // below either model: loading one unloads the other
  o.device = "cpu";
  serve::AnnotationServer server(o);
  const int port = server.start();

  const auto tiny_case = read_file(m.tiny + "/data/imagesTr/case_3.nii.gz");
  const auto tiny_label = read_file(m.tiny + "/data/labelsTr/case_1.nii.gz");
  const auto dg_case = read_file(m.deepgrow + "/data/imagesTr/case_3.nii.gz");
  const auto v = test::organ_voxel(m.deepgrow);
  const json clicks = {{"foreground", {v}}, {"background", json::array()}};
  const auto segment = test::python_request(
      "POST", "/v1/segmentation?model=tiny",
      {{"params", "", "", "{}"}, {"datapoint", "c.nii.gz", "application/octet-stream", tiny_case}});
  const auto click = test::python_request(
      "POST", "/v1/deepgrow?model=deepgrow_3d",
      {{"params", "", "", clicks.dump()}, {"datapoint", "c.nii.gz", "", dg_case}});

  std::mutex mu;
  std::map<std::string, std::vector<std::string>> masks;  // request kind -> each reply's mask
  auto keep = [&](const std::string& kind, const test::RawReply& r) {
    std::lock_guard<std::mutex> lock(mu);
    masks[kind].push_back(image_part(r));
  };
  auto client = [&](int t) {
    for (int i = 0; i < 6; ++i) {
      switch ((t + i) % 3) {
        case 0: {
          const auto r = test::raw_http(port, segment, 600);
          EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
          keep("segment", r);
          break;
        }
        case 1: {
          auto r = test::raw_http(port,
                                  test::python_request("PUT", "/session/?expiry=60",
                                                       {{"image", "c.nii.gz", "", dg_case}}),
                                  600);
          ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
          const auto id = json::parse(r.body)["session_id"].get<std::string>();
          r = test::raw_http(
              port,
              test::python_request("POST", "/v1/deepgrow?model=deepgrow_3d&session_id=" + id,
                                   {{"params", "", "", clicks.dump()}}),
              600);
          EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
          keep("session click", r);
          EXPECT_EQ(test::raw_http(port, test::simple_request("DELETE", "/session/" + id)).status,
                    200);
          break;
        }
        default: {
          auto r = test::raw_http(port, click, 600);
          EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
          keep("click", r);
          r = test::raw_http(
              port,
              test::python_request(
                  "POST", "/infer/deepgrow_3d?image=case_0&output=image",
                  {{"params", "", "", R"({"foreground": [[16, 16, 6]], "background": []})"}}),
              600);
          EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
          r = test::raw_http(
              port, test::python_request(
                        "PUT", "/datastore/label?image=case_1&tag=final",
                        {{"params", "", "", "{}"}, {"label", "label.nii.gz", "", tiny_label}}));
          EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
          EXPECT_EQ(
              test::raw_http(port, test::simple_request("GET", "/datastore/?output=all")).status,
              200);
          EXPECT_EQ(test::raw_http(port, test::simple_request("GET", "/v1/models")).status, 200);
        }
      }
    }
  };
  std::vector<std::future<void>> clients;
  for (int t = 0; t < 8; ++t) clients.push_back(std::async(std::launch::async, client, t));
  for (auto& c : clients) c.get();
  server.stop();

  ASSERT_EQ(masks["segment"].size(), 16u);  // 8 clients, each kind twice
  ASSERT_EQ(masks["click"].size(), 16u);
  ASSERT_EQ(masks["session click"].size(), 16u);
  for (const auto& [kind, list] : masks) {
    EXPECT_FALSE(list.front().empty()) << kind;
    for (const auto& mask : list) EXPECT_EQ(mask, list.front()) << kind << ": masks differ";
  }
}

// The model store alone, from many threads: leases of two models alternating under a budget
// that lets only one stay loaded, while other threads list and read the status.
TEST(TsanServe, ModelStoreLeasesAndEvictionsFromManyThreads) {
  const auto& m = models();
  serve::ModelStore store("cpu", 1);
  store.add(serve::describe_model(m.tiny, "tiny"));
  store.add(
      serve::describe_model(m.deepgrow, "deepgrow_3d", test::deepgrow3d_serve_sets("deepgrow_3d")));
  std::atomic<bool> done{false};
  auto watcher = std::async(std::launch::async, [&] {
    int looks = 0;
    while (!done) {
      EXPECT_EQ(store.list().size(), 2u);
      (void)store.status();
      ++looks;
    }
    return looks;
  });
  std::vector<std::future<void>> users;
  for (int t = 0; t < 6; ++t) {
    users.push_back(std::async(std::launch::async, [&, t] {
      for (int i = 0; i < 8; ++i) {
        const std::string name = (t + i) % 2 ? "tiny" : "deepgrow_3d";
        auto lease = store.acquire(name);
        EXPECT_EQ(lease->info().name, name);
        EXPECT_GT(lease->weight_bytes(), 0u);
      }
    }));
  }
  for (auto& u : users) u.get();
  done = true;
  EXPECT_GT(watcher.get(), 0);
  const auto status = store.status();
  EXPECT_GE(status["loads"].get<int>(), 2);
  EXPECT_GE(status["evictions"].get<int>(), 1);
  EXPECT_LE(status["loaded"].size(), 1u);
}

}  // namespace
}  // namespace barton
