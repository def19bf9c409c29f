#pragma once
// Rate limits shared by every `serve` process through Redis, so N nodes behind
// one load balancer together allow exactly a key's limit per minute.
//
// Algorithm: the same sliding window of 60 one-second buckets as
// core::LocalRateLimiter (docs/rate-limiting.md), kept in one Redis hash per
// key and decided by a Lua script, which Redis runs atomically; the requests
// that arrive while one call is under way are decided together by the next
// (one round trip for the batch, each decision made in order).
// The script reads Redis's own clock (TIME), so nodes with skewed clocks still
// agree on the window.
//
// When Redis cannot be reached: fail open, degraded. Each node falls back to
// its own in-process limiter at ceil(limit / nodes), so the cluster as a whole
// still allows about the key's limit; the API keeps serving (a rate limiter
// outage should not become an API outage, and a key's limit is a fairness
// control, not an authorization check). health() reports "degraded" for
// /readyz and the metrics; the limiter reconnects by itself (at most one
// attempt per second) and returns to the shared window.
//
// Thread-safe. Decisions are made on one thread of the limiter's own, with
// its own Redis connection (250 ms connect and command timeouts), in batches
// (core/batch_worker.hpp); acquire() and peek() wait for theirs.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/batch_worker.hpp"

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
  bool is_async() const override;
  void acquire_async(std::string_view key, uint32_t limit,
                     std::function<void(core::RateDecision)> done) override;
  std::string_view health() const override;

  // Decisions taken by the fallback since start (for metrics and tests).
  uint64_t fallback_decisions() const { return fallback_decisions_.load(); }

 private:
  // One decision asked for.
  struct Request {
    std::string key;
    uint32_t limit = 0;
    bool count = false;
    std::function<void(core::RateDecision)> done;
  };
  core::RateDecision decide(std::string_view key, uint32_t limit, bool count);
  // Decides a batch on the worker's thread and calls each `done`.
  void serve(std::vector<Request>& batch);
  // One round trip for `batch`: fills `out` with Redis's decisions, or
  // leaves it empty when Redis could not be asked.
  void call(const std::vector<Request>& batch, std::vector<std::optional<core::RateDecision>>& out);

  struct Conn;
  RedisUrl url_;
  uint32_t nodes_;
  core::LocalRateLimiter fallback_;
  std::atomic<bool> degraded_{false};
  std::atomic<uint64_t> fallback_decisions_{0};
  std::unique_ptr<Conn> conn_;  // used by the worker's thread only
  // Last: its thread stops first, while everything it uses still exists.
  core::BatchWorker<Request> worker_;
};

}  // namespace dvs::store
