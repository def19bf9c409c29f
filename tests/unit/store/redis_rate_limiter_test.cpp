// RedisRateLimiter against a real Redis (DVS_TEST_REDIS_URL, started by the
// test command); skipped with a message when none is configured.

#include "store/redis/redis_rate_limiter.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
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
  // Runs a command on a connection of the test's own; returns the reply's
  // integer (or -1).
  long long redis(const std::vector<std::string>& args) {
    auto u = store::parse_redis_url(std::getenv("DVS_TEST_REDIS_URL"));
    redisContext* c = redisConnect(u.host.c_str(), u.port);
    EXPECT_TRUE(c && !c->err);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0)  // TIME: seconds first
      v = std::atoll(r->element[0]->str);
    freeReplyObject(r);
    redisFree(c);
    return v;
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

// The asynchronous path the server uses: decisions queued while a call is
// under way go to Redis together, each decided in order, so the limit stays
// exact and every allowed request sees a different Remaining.
TEST_F(RedisLimiter, QueuedDecisionsAreBatchedAndStayExact) {
  ASSERT_TRUE(rl->is_async());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<core::RateDecision> got;
  for (int i = 0; i < 120; ++i)
    rl->acquire_async(key, 90, [&](core::RateDecision d) {
      std::lock_guard lock(mu);
      got.push_back(d);
      cv.notify_all();
    });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return got.size() == 120; });
  std::set<uint32_t> remaining;
  int allowed = 0;
  for (const auto& d : got)
    if (d.allowed) {
      ++allowed;
      remaining.insert(d.remaining);
    }
  EXPECT_EQ(allowed, 90);
  EXPECT_EQ(remaining.size(), 90u);
  EXPECT_EQ(*remaining.begin(), 0u);
  EXPECT_EQ(*remaining.rbegin(), 89u);
  EXPECT_FALSE(rl->peek(key, 90).allowed);
  EXPECT_EQ(rl->fallback_decisions(), 0u);
}

// The window slides: a bucket older than 60 s no longer counts, and is
// dropped from the hash. Planted by hand (waiting a minute is no test).
TEST_F(RedisLimiter, BucketsOlderThanAMinuteLeaveTheWindow) {
  const long long now = redis({"TIME"});
  ASSERT_GT(now, 0);
  const std::string rkey = "dvs:rl:" + key, old = std::to_string(now - 70),
                    recent = std::to_string(now - 30);
  // 5 requests 70 s ago and 2 requests 30 s ago, with the sums kept beside.
  ASSERT_EQ(redis({"HSET", rkey, old, "5", recent, "2", "t", "7", "o", old, "n", recent}), 5);
  auto d = rl->acquire(key, 4);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 1u) << "only the 2 recent requests and this one count";
  EXPECT_TRUE(rl->acquire(key, 4).allowed);
  auto refused = rl->acquire(key, 4);
  EXPECT_FALSE(refused.allowed);
  // The oldest request left in the window is 30 s old: retry in about 30 s.
  EXPECT_GE(refused.retry_after_s, 29);
  EXPECT_LE(refused.retry_after_s, 31);
  EXPECT_EQ(redis({"HEXISTS", rkey, old}), 0);
}

// A hash written before the sums were kept (or by hand) is summed once.
TEST_F(RedisLimiter, AHashWithoutItsSumsIsSummedFromItsBuckets) {
  const long long now = redis({"TIME"});
  const std::string rkey = "dvs:rl:" + key;
  ASSERT_EQ(redis({"HSET", rkey, std::to_string(now - 10), "3"}), 1);
  auto d = rl->acquire(key, 4);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_FALSE(rl->acquire(key, 4).allowed);
  EXPECT_FALSE(rl->peek(key, 4).allowed);
}
