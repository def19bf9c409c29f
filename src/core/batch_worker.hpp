#pragma once
// A thread that serves queued items in batches: submit() queues one; the
// thread takes everything queued (up to `max_batch`), hands it to `run` in
// one call, and goes on. An item is always taken by a call that starts after
// it was queued, so a read made by that call reflects every change committed
// before submit(). Under load one call (one round trip to PostgreSQL or
// Redis) serves every request that arrived during the previous one, and no
// request's thread ever waits: the items carry callbacks.
//
// Thread-safe. `run` must not throw. The thread starts with the first item;
// the destructor serves what is queued, then joins it.

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace dvs::core {

template <typename Item>
class BatchWorker {
 public:
  using Run = std::function<void(std::vector<Item>& batch)>;

  BatchWorker(Run run, size_t max_batch) : run_(std::move(run)), max_batch_(max_batch) {}

  ~BatchWorker() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  BatchWorker(const BatchWorker&) = delete;
  BatchWorker& operator=(const BatchWorker&) = delete;

  void submit(Item item) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(item));
      if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    std::vector<Item> batch;
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to serve
      if (queue_.size() <= max_batch_) {
        batch.swap(queue_);
      } else {
        const auto n = static_cast<std::ptrdiff_t>(max_batch_);
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + n));
        queue_.erase(queue_.begin(), queue_.begin() + n);
      }
      lock.unlock();
      run_(batch);
      batch.clear();
      lock.lock();
    }
  }

  Run run_;
  const size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dvs::core
