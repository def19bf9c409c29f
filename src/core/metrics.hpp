#pragma once
// Process metrics, exposed at GET /metrics in Prometheus's text format.
// Counters are relaxed atomics in fixed arrays: recording costs a few
// nanoseconds and takes no lock. Thread-safe.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace dvs::core {

// The routes requests are counted by (a fixed set, so labels stay bounded).
enum class Route : uint8_t {
  v1_leads_list, v1_leads_get, v1_invoices_list, v1_invoices_get, v1_key, v1_openapi,
  v1_unknown, api_session, api_keys, api_key_action, api_audit, portal, health, metrics,
  unknown, kCount
};
std::string_view route_label(Route r);

// Outcomes of an API key check.
enum class KeyOutcome : uint8_t {
  valid, missing, malformed, unknown, revoked, expired, wrong_scope, kCount
};
std::string_view key_outcome_label(KeyOutcome o);

class Metrics {
 public:
  // Latency histogram upper bounds, in microseconds (+Inf is implicit).
  static constexpr std::array<int64_t, 12> kBucketsUs = {100,    250,    500,    1000,
                                                         2500,   5000,   10000,  25000,
                                                         50000,  100000, 250000, 1000000};
  // Status codes counted individually; anything else counts as "other".
  static constexpr std::array<int, 14> kStatuses = {200, 201, 204, 400, 401, 403, 404,
                                                    405, 409, 413, 415, 429, 500, 503};

  void record_request(Route route, int status, int64_t latency_us);
  void record_key(KeyOutcome o) { add(keys_[static_cast<size_t>(o)]); }
  void record_rate_limited() { add(rate_limited_); }

  // Extra lines appended to the exposition (gauges owned elsewhere: the
  // request-log queue, the database pool, Redis). Called at scrape time.
  using Gauges = std::function<void(std::string& out)>;

  // The text exposition format (version 0.0.4).
  std::string render(const Gauges& gauges) const;

 private:
  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  static constexpr size_t kRoutes = static_cast<size_t>(Route::kCount);
  static constexpr size_t kStatusSlots = kStatuses.size() + 1;
  std::array<std::array<std::atomic<uint64_t>, kStatusSlots>, kRoutes> requests_{};
  std::array<std::array<std::atomic<uint64_t>, kBucketsUs.size() + 1>, kRoutes> latency_{};
  std::array<std::atomic<uint64_t>, kRoutes> latency_sum_us_{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(KeyOutcome::kCount)> keys_{};
  std::atomic<uint64_t> rate_limited_{0};
};

}  // namespace dvs::core
