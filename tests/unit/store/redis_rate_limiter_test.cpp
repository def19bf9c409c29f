// RedisRateLimiter against a real Redis (DVS_TEST_REDIS_URL, started by the
// test command); skipped with a message when none is configured.

#include "store/redis/redis_rate_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/base62.hpp"

using namespace dvs;

TEST(RedisUrl, ParsesHostPortDbAndPassword) {
  auto u = store::parse_redis_url("redis://:s3cret@10.0.0.5:6380/2");
  EXPECT_EQ(u.host, "10.0.0.5");
  EXPECT_EQ(u.port, 6380);
  EXPECT_EQ(u.db, 2);
  EXPECT_EQ(u.password, "s3cret");
  auto d = store::parse_redis_url("redis://localhost");
  EXPECT_EQ(d.port, 6379);
  EXPECT_EQ(d.db, 0);
}

TEST(RedisUrl, RejectsMalformed) {
  for (const char* s : {"http://x:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:x",
                        "redis://h:1/abc"})
    EXPECT_THROW(store::parse_redis_url(s), std::runtime_error) << s;
}

TEST(RedisUrl, UnreachableServerFailsAtStartWithoutThePassword) {
  core::SystemClock clock;
  try {
    // Port 1 on loopback: nothing listens there in a test run.
    store::RedisRateLimiter rl(store::parse_redis_url("redis://:hunter2pass@127.0.0.1:1"), clock, 1);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2pass"), std::string::npos);
  }
}

class RedisLimiter : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("DVS_TEST_REDIS_URL");
    if (!url || !*url) GTEST_SKIP() << "DVS_TEST_REDIS_URL is not set (scripts/test.sh sets it)";
    rl = std::make_unique<store::RedisRateLimiter>(store::parse_redis_url(url), clock, 2);
    key = "test:" + core::random_base62(16);
  }
  core::SystemClock clock;
  std::unique_ptr<store::RedisRateLimiter> rl;
  std::string key;
};

TEST_F(RedisLimiter, AllowsExactlyTheLimitThenRefuses) {
  for (uint32_t i = 0; i < 7; ++i) {
    auto d = rl->acquire(key, 7);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 6 - i);
  }
  auto d = rl->acquire(key, 7);
  EXPECT_FALSE(d.allowed);
  EXPECT_GE(d.retry_after_s, 1);
  EXPECT_LE(d.retry_after_s, 60);
  EXPECT_EQ(rl->health(), "shared");
}

TEST_F(RedisLimiter, PeekDoesNotCount) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(rl->peek(key, 1).allowed);
  ASSERT_TRUE(rl->acquire(key, 1).allowed);
  EXPECT_FALSE(rl->peek(key, 1).allowed);
}

TEST_F(RedisLimiter, ExactAcrossThreadsAndInstances) {
  // Two limiter instances stand for two nodes.
  store::RedisRateLimiter other(store::parse_redis_url(std::getenv("DVS_TEST_REDIS_URL")), clock, 2);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      auto& l = t % 2 ? *rl : other;
      for (int i = 0; i < 50; ++i)
        if (l.acquire(key, 77).allowed) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 77);
}
