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

// Reset-After follows the newest second counted in, Retry-After the oldest,
// across the wrap of the window's 60 slots (the walks use a wrapping index).
TEST(RateLimiter, ResetAndRetryFollowTheNewestAndOldestCountedSeconds) {
  for (int i = 0; i < 70; ++i) {  // start somewhere else in the slots each time
    ManualClock c(kT0 + int64_t{i} * 1'000'000);
    LocalRateLimiter l(c);
    ASSERT_TRUE(l.acquire("k", 3).allowed);  // second 0
    c.advance_us(10'000'000);
    ASSERT_TRUE(l.acquire("k", 3).allowed);  // second 10
    c.advance_us(20'000'000);
    auto d = l.acquire("k", 3);              // second 30
    ASSERT_TRUE(d.allowed);
    EXPECT_EQ(d.reset_s, 60) << i;
    c.advance_us(10'000'000);                // second 40
    d = l.acquire("k", 3);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.retry_after_s, 20) << i;     // second 0 leaves at 60
    EXPECT_EQ(d.reset_s, 50) << i;           // second 30 leaves at 90
    c.advance_us(21'000'000);                // second 61: second 0 has gone
    d = l.acquire("k", 3);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 0u);
    EXPECT_EQ(d.reset_s, 60) << i;
    d = l.acquire("k", 3);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.retry_after_s, 9) << i;      // second 10 leaves at 70
  }
}

// A clock that steps back counts in the newest second seen, so nothing is
// freed early.
TEST(RateLimiter, AClockSteppingBackCountsInTheNewestSecond) {
  ManualClock clock(kT0 + 5'000'000);
  LocalRateLimiter rl(clock);
  ASSERT_TRUE(rl.acquire("k", 2).allowed);
  clock.set_us(kT0 + 3'000'000);
  auto d = rl.acquire("k", 2);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.reset_s, 62);  // second 5 leaves at 65; it is second 3
  d = rl.acquire("k", 2);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 62);
}
