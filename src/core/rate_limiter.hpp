#pragma once
// Per-key rate limiting: a sliding window of 60 one-second buckets.
//
// Why not GCRA or a token bucket: those refill continuously (one request every
// 60/limit seconds), so a client that spends a few seconds on its first 120
// requests gets a 121st. The contract promises "120 a minute": with buckets a
// request counts against the key for a full minute (59-60 s, one-second
// granularity), so the 121st request inside a minute is refused however slowly
// the first 120 came. Cost: 60 counters per active key (264 bytes), O(1) per
// decision amortized. Docs: docs/rate-limiting.md.

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "core/clock.hpp"

namespace dvs::core {

struct RateDecision {
  bool allowed = true;
  uint32_t limit = 0;
  uint32_t remaining = 0;
  int64_t reset_s = 0;        // seconds until the full allowance is back (0 when full)
  int64_t retry_after_s = 0;  // when refused: seconds until one request is allowed (>= 1)
};

// Interface so a shared (Redis) implementation can stand in. Thread-safe.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Counts one request for `key` against `limit` per minute when there is room.
  virtual RateDecision acquire(std::string_view key, uint32_t limit) = 0;
  // The decision acquire() would make, without counting anything.
  virtual RateDecision peek(std::string_view key, uint32_t limit) = 0;
  // True when acquire_async() decides without holding the caller's thread
  // (Redis: a round trip shared by a batch); callers on an event loop should
  // then use it instead of acquire().
  virtual bool is_async() const { return false; }
  // acquire(), with the decision passed to `done` (on any thread, once).
  virtual void acquire_async(std::string_view key, uint32_t limit,
                             std::function<void(RateDecision)> done) {
    done(acquire(key, limit));
  }
  // "local" (in-process), "shared" (Redis) or "degraded" (Redis unreachable,
  // falling back to in-process limits).
  virtual std::string_view health() const { return "local"; }
};

// In-process limiter, sharded by key hash with one mutex per shard, so the
// decision is exact under any number of threads. Idle keys are swept away.
class LocalRateLimiter final : public RateLimiter {
 public:
  explicit LocalRateLimiter(const Clock& clock);
  ~LocalRateLimiter() override;
  RateDecision acquire(std::string_view key, uint32_t limit) override;
  RateDecision peek(std::string_view key, uint32_t limit) override;
  // Number of keys currently tracked (for tests and metrics).
  size_t tracked_keys() const;

 private:
  RateDecision decide(std::string_view key, uint32_t limit, bool count);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dvs::core
