#pragma once
// Rate limits shared by every `serve` process through Redis, so N nodes behind
// one load balancer together allow exactly a key's limit per minute.
//
// Algorithm: the same sliding window of 60 one-second buckets as
// core::LocalRateLimiter (docs/rate-limiting.md), kept in one Redis hash per
// key and decided by one Lua script per request, which Redis runs atomically.
// The script reads Redis's own clock (TIME), so nodes with skewed clocks still
// agree on the window.
//
// When Redis cannot be reached: fail open, degraded. Each node falls back to
// its own in-process limiter at ceil(limit / nodes), so the cluster as a whole
// still allows about the key's limit; the API keeps serving (a rate limiter
// outage should not become an API outage, and a key's limit is a fairness
// control, not an authorization check). health() reports "degraded" for
// /readyz and the metrics; the limiter reconnects by itself (at most one
// attempt per second per thread) and returns to the shared window.
//
// Thread-safe: one Redis connection per thread, with 250 ms connect and
// command timeouts.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/clock.hpp"
#include "core/rate_limiter.hpp"

namespace dvs::store {

struct RedisUrl {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string password;
};

// "redis://[:PASSWORD@]HOST[:PORT][/DB]". Throws std::runtime_error otherwise.
RedisUrl parse_redis_url(const std::string& url);

class RedisRateLimiter final : public core::RateLimiter {
 public:
  // `nodes`: how many serve processes share the limit (for the fallback).
  // Connects once to fail fast at start-up: throws std::runtime_error (message
  // without the password) when Redis cannot be reached.
  RedisRateLimiter(RedisUrl url, const core::Clock& clock, uint32_t nodes);
  ~RedisRateLimiter() override;

  core::RateDecision acquire(std::string_view key, uint32_t limit) override;
  core::RateDecision peek(std::string_view key, uint32_t limit) override;
  std::string_view health() const override;

  // Decisions taken by the fallback since start (for metrics and tests).
  uint64_t fallback_decisions() const { return fallback_decisions_.load(); }

 private:
  core::RateDecision decide(std::string_view key, uint32_t limit, bool count);

  struct Conn;
  Conn& conn();
  RedisUrl url_;
  uint32_t nodes_;
  uint64_t instance_;
  core::LocalRateLimiter fallback_;
  std::atomic<bool> degraded_{false};
  std::atomic<uint64_t> fallback_decisions_{0};
};

}  // namespace dvs::store
