// core::BatchWorker: every item served once, by a call that started after
// it was queued, and the items queued during a call served together.
#include "core/batch_worker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

using dvs::core::BatchWorker;

TEST(BatchWorker, ServesEveryItemOnceAndWhatIsQueuedBeforeStopping) {
  std::mutex mu;
  std::vector<int> seen;
  {
    BatchWorker<int> w(
        [&](std::vector<int>& batch) {
          std::lock_guard lock(mu);
          seen.insert(seen.end(), batch.begin(), batch.end());
        },
        64);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&w, t] {
        for (int i = 0; i < 500; ++i) w.submit(t * 1000 + i);
      });
    for (auto& t : threads) t.join();
  }  // the destructor serves what is still queued
  ASSERT_EQ(seen.size(), 2000u);
  std::sort(seen.begin(), seen.end());
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 500; ++i) EXPECT_EQ(seen[static_cast<size_t>(t * 500 + i)], t * 1000 + i);
}

// What the PostgreSQL epochs rely on: a value read at the start of a call
// is never older than what was committed before the item was queued.
TEST(BatchWorker, AnItemIsServedByACallThatStartedAfterItWasQueued) {
  std::atomic<int> committed{0};
  std::atomic<int> stale{0}, served{0};
  struct Item {
    int committed_before;
  };
  {
    BatchWorker<Item> w(
        [&](std::vector<Item>& batch) {
          const int read = committed.load();  // "the read", once per call
          for (const auto& it : batch) {
            if (read < it.committed_before) ++stale;
            ++served;
          }
        },
        16);
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 2000; ++i) {
          const int now = ++committed;
          w.submit(Item{now});
        }
      });
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(served.load(), 6000);
  EXPECT_EQ(stale.load(), 0);
}

TEST(BatchWorker, ItemsQueuedDuringACallAreServedTogetherUpToTheBound) {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::vector<size_t> sizes;
  std::promise<void> first_started;
  {
    BatchWorker<int> w(
        [&](std::vector<int>& batch) {
          if (sizes.empty()) {
            first_started.set_value();
            released.wait();  // a slow round trip
          }
          sizes.push_back(batch.size());
        },
        30);
    w.submit(0);
    first_started.get_future().wait();
    for (int i = 1; i <= 100; ++i) w.submit(i);
    release.set_value();
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 30, 30, 30, 10}));
}
