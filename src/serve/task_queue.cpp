#include "serve/task_queue.h"

#include <algorithm>

namespace barton::serve {

TaskQueue::TaskQueue(int workers, std::size_t capacity) : capacity_(capacity) {
  for (int i = 0; i < std::max(1, workers); ++i) threads_.emplace_back([this] { work(); });
}

TaskQueue::~TaskQueue() {
  stop();
}

bool TaskQueue::try_submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || tasks_.size() >= capacity_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

std::size_t TaskQueue::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

std::size_t TaskQueue::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

void TaskQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    tasks_.clear();  // their promises break: waiters see broken_promise
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void TaskQueue::work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++running_;
    }
    task();  // tasks catch their own errors (they answer through a promise)
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
  }
}

}  // namespace barton::serve
