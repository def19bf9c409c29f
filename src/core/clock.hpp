#pragma once
// Clock: the one source of "now", passed in so tests can move time by hand.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace dvs::core {

// Interface; implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch.
  virtual int64_t now_us() const = 0;
  int64_t now_s() const { return now_us() / 1'000'000; }
};

// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  int64_t now_us() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that only moves when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_us) : now_(start_us) {}
  int64_t now_us() const override { return now_.load(); }
  void advance_us(int64_t d) { now_ += d; }
  void set_us(int64_t t) { now_ = t; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace dvs::core
