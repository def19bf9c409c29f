#include "core/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace dvs::core;

namespace {
constexpr int64_t kT0 = 1'800'000'000'000'000;  // an arbitrary whole second, in µs
}

TEST(RateLimiter, AllowsExactlyTheLimitThenRefuses) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  for (uint32_t i = 0; i < 120; ++i) {
    auto d = rl.acquire("k", 120);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 119 - i);
    EXPECT_EQ(d.limit, 120u);
  }
  auto d = rl.acquire("k", 120);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.retry_after_s, 60);
}

TEST(RateLimiter, SlowRequestsStillCountForAMinute) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  // 120 requests spread over 59 seconds: a token bucket would have refilled.
  for (int i = 0; i < 120; ++i) {
    ASSERT_TRUE(rl.acquire("k", 120).allowed);
    clock.advance_us(490'000);
  }
  EXPECT_FALSE(rl.acquire("k", 120).allowed);
}

TEST(RateLimiter, FreesRequestsAsTheirSecondLeavesTheWindow) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(rl.acquire("k", 3).allowed);
  EXPECT_FALSE(rl.acquire("k", 3).allowed);
  clock.advance_us(59'000'000);
  auto d = rl.acquire("k", 3);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);
  clock.advance_us(1'000'000);
  d = rl.acquire("k", 3);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 2u);
  EXPECT_EQ(d.reset_s, 60);
}

TEST(RateLimiter, KeysAreIndependent) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  ASSERT_TRUE(rl.acquire("a", 1).allowed);
  EXPECT_FALSE(rl.acquire("a", 1).allowed);
  EXPECT_TRUE(rl.acquire("b", 1).allowed);
}

TEST(RateLimiter, ResetIsZeroWhenNothingCounted) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  ASSERT_TRUE(rl.acquire("a", 5).allowed);
  clock.advance_us(61'000'000);
  auto d = rl.acquire("a", 5);
  EXPECT_EQ(d.remaining, 4u);
  EXPECT_EQ(d.reset_s, 60);
}

TEST(RateLimiter, ExactUnderConcurrency) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (rl.acquire("shared", 1234).allowed) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1234);
}

TEST(RateLimiter, IdleKeysAreSweptAway) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  for (int i = 0; i < 5000; ++i) (void)rl.acquire("k" + std::to_string(i), 10);
  EXPECT_EQ(rl.tracked_keys(), 5000u);
  clock.advance_us(120'000'000);
  for (int i = 0; i < 64 * 1024 + 1024; ++i) (void)rl.acquire("hot", 1'000'000);
  EXPECT_LT(rl.tracked_keys(), 100u);
}

TEST(RateLimiter, PeekDecidesWithoutCounting) {
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rl.peek("k", 2).allowed);
  ASSERT_TRUE(rl.acquire("k", 2).allowed);
  ASSERT_TRUE(rl.acquire("k", 2).allowed);
  auto d = rl.peek("k", 2);
  EXPECT_FALSE(d.allowed);
  EXPECT_GE(d.retry_after_s, 1);
}
