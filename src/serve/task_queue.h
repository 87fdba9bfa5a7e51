#pragma once
/// The bounded queue between HTTP threads and the worker threads that own the models
/// (llama.cpp's server-queue): HTTP threads submit tasks and wait; only workers run them.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace barton::serve {

/// Thread-safety: all members may be called from any thread.
class TaskQueue {
 public:
  /// Starts `workers` threads; at most `capacity` tasks wait (running ones not counted).
  TaskQueue(int workers, std::size_t capacity);
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  /// Queues `task`; false (and nothing queued) when `capacity` tasks already wait or the queue
  /// is stopping.
  bool try_submit(std::function<void()> task);
  /// Tasks waiting, and tasks running now.
  std::size_t waiting() const;
  std::size_t running() const;
  std::size_t capacity() const { return capacity_; }
  int workers() const { return static_cast<int>(threads_.size()); }
  /// Lets the running tasks finish, drops the waiting ones and joins the workers.
  void stop();

 private:
  void work();
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace barton::serve
