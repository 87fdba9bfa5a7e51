// Built twice from the sources it tests (tests/CMakeLists.txt): with -fsanitize=thread (ctest
// Tsan.ServerConcurrency) and with -fsanitize=address,undefined (Asan.ServerConcurrency). The
// server's thread-owning parts under concurrent use: the bounded task queue between HTTP threads
// and workers, the HTTP server with many clients at once, and the token store of --auth. A
// sanitizer report fails the test (ThreadSanitizer: exit code 66; ASan and UBSan abort); the
// assertions check that every request and task was answered.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "serve/auth.h"
#include "serve/http.h"
#include "serve/raw_http.h"
#include "serve/task_queue.h"
#include "support/test_support.h"

namespace barton {
namespace {

TEST(ServerThreads, TaskQueueRunsEveryAcceptedTaskOnceUnderContention) {
  serve::TaskQueue q(3, 16);
  std::atomic<int> accepted{0}, ran{0};
  std::mutex mu;
  std::vector<int> seen;  // written by the workers under mu
  std::vector<std::thread> submitters;
  for (int t = 0; t < 6; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const int id = t * 1000 + i;
        if (q.try_submit([&, id] {
              ran.fetch_add(1);
              std::lock_guard<std::mutex> lock(mu);
              seen.push_back(id);
            }))
          accepted.fetch_add(1);
        (void)q.waiting();
        (void)q.running();
        if (i % 16 == 0) std::this_thread::yield();
      }
    });
  }
  for (auto& s : submitters) s.join();
  while (q.waiting() > 0 || q.running() > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  q.stop();
  EXPECT_GT(accepted.load(), 0);
  EXPECT_EQ(ran.load(), accepted.load());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), seen.size()) << "each ran once";
}

TEST(ServerThreads, TaskQueueStopsWhileTasksAreBeingSubmitted) {
  for (int round = 0; round < 20; ++round) {
    auto q = std::make_unique<serve::TaskQueue>(2, 4);
    std::atomic<bool> go{true};
    std::atomic<int> ran{0};
    std::thread submitter([&] {
      while (go.load()) q->try_submit([&] { ran.fetch_add(1); });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    q->stop();  // submissions after this are refused
    go = false;
    submitter.join();
    EXPECT_FALSE(q->try_submit([] {}));
  }
}

TEST(ServerThreads, HttpServerAnswersManyClientsAtOnce) {
  serve::HttpOptions o;
  o.port = 0;
  o.threads = 8;
  std::atomic<int> done{0};
  o.on_done = [&](const serve::Request&, const serve::Response&, double) { done.fetch_add(1); };
  serve::HttpServer http(o);
  std::mutex mu;
  std::map<std::string, int> counts;  // shared state of the handlers, under mu
  http.route("POST", "/count/{name}", [&](const serve::Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    const int n = ++counts[r.captures.at(0)];
    return serve::Response::json("{\"n\": " + std::to_string(n) + "}");
  });
  http.route("GET", "/echo", [](const serve::Request& r) {
    return serve::Response::json("{\"q\": \"" + r.query_value("q") + "\"}");
  });
  const int port = http.start();
  constexpr int kClients = 16, kEach = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const auto r =
            i % 2
                ? test::raw_http(port, test::simple_request("GET", "/echo?q=" + std::to_string(c)))
                : test::raw_http(port,
                                 test::python_request("POST", "/count/c" + std::to_string(c % 4),
                                                      {{"params", "", "", "{}"}}));
        if (r.status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  http.stop();
  EXPECT_EQ(ok.load(), kClients * kEach);
  int posts = 0;
  for (const auto& [name, n] : counts) posts += n;
  EXPECT_EQ(posts, kClients * ((kEach + 1) / 2));
  EXPECT_GE(done.load(), kClients * kEach);
}

TEST(ServerThreads, TokensAreIssuedCheckedAndRevokedFromManyThreads) {
  test::TempDir dir;
  const auto users = dir.file("users.json");
  serve::write_user(users,
                    {"ann", serve::hash_password("pw-ann", 1000), {serve::Role::kAnnotator}});
  serve::write_user(users, {"bob", serve::hash_password("pw-bob", 1000), {serve::Role::kAdmin}});
  serve::Authenticator auth(users, 60);
  std::atomic<int> valid{0}, revoked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string user = t % 2 ? "ann" : "bob";
      for (int i = 0; i < 10; ++i) {
        serve::Authenticator::Token token;
        if (auth.login(user, "pw-" + user, &token) != serve::Authenticator::LoginResult::kOk)
          continue;
        const auto bearer = "Bearer " + token.access_token;
        if (const auto id = auth.check(bearer); id && id->username == user) valid.fetch_add(1);
        if (auth.revoke(bearer)) revoked.fetch_add(1);
        EXPECT_FALSE(auth.check(bearer)) << "a revoked token is refused";
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(valid.load(), 80);
  EXPECT_EQ(revoked.load(), 80);
}

}  // namespace
}  // namespace barton
