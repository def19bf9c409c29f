#pragma once
// A bounded in-process cache whose entries are valid at one *epoch* of the
// data they were read from: a counter the database raises in the same
// transaction as every change that matters to them (the key epoch of
// migration 4 for API keys, the document epoch of migration 8 for leads and
// invoices). The caller reads the epoch first, then asks the cache; an entry
// is used only when its epoch equals the one just read, so a change committed
// before the reader's snapshot has raised the epoch and the entry no longer
// matches.
//
// Rules that keep it safe when snapshots of different ages meet:
// - put(k, v, e) stores only if `v` was read after the epoch `e` was read
//   (the caller's duty: epoch first, then the data);
// - a shard that sees a newer epoch forgets everything it holds;
// - an older epoch than the shard's bypasses the shard (no use, no store).
//
// Bounded by a cost (`Cost(value)`: 1 per entry, or bytes): a shard that
// would go over its share is emptied. Thread-safe; sharded so that threads
// rarely wait for one another.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace dvs::core {

template <typename Key, typename Value, typename Hash, typename Cost>
class EpochCache {
 public:
  static constexpr size_t kShards = 16;

  // `capacity` in Cost units in all; 0 disables the cache.
  explicit EpochCache(size_t capacity)
      : per_shard_(capacity == 0 ? 0 : (capacity + kShards - 1) / kShards) {}

  bool enabled() const { return per_shard_ != 0; }

  // The value for `key` stored at exactly `epoch`, or nothing.
  std::optional<Value> get(const Key& key, uint64_t epoch) {
    if (!enabled()) return std::nullopt;
    Shard& s = shard_for(key);
    {
      std::lock_guard lock(s.mu);
      if (epoch > s.epoch) {
        s.clear(epoch);
      } else if (epoch == s.epoch) {
        if (auto it = s.map.find(key); it != s.map.end()) {
          hits_.fetch_add(1, std::memory_order_relaxed);
          return it->second;
        }
      }
    }
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }

  // The value for `key` at whatever epoch its shard last saw, with no
  // hit or miss counted: a guess, never an answer (the entry may have been
  // outdated since). For starting work early that a get() at the read epoch
  // then confirms or throws away.
  std::optional<Value> peek(const Key& key) const {
    if (!enabled()) return std::nullopt;
    const Shard& s = shards_[shard_index(key)];
    std::lock_guard lock(s.mu);
    if (auto it = s.map.find(key); it != s.map.end()) return it->second;
    return std::nullopt;
  }

  // Remembers `value` (read after `epoch` was read) for `key`. A value that
  // costs more than a shard holds is not kept.
  void put(const Key& key, Value value, uint64_t epoch) {
    if (!enabled()) return;
    const size_t cost = Cost{}(value);
    if (cost > per_shard_) return;
    Shard& s = shard_for(key);
    std::lock_guard lock(s.mu);
    if (epoch < s.epoch) return;
    if (epoch > s.epoch) s.clear(epoch);
    if (auto it = s.map.find(key); it != s.map.end()) {
      s.cost -= Cost{}(it->second);
      s.map.erase(it);
    }
    if (s.cost + cost > per_shard_) s.clear(s.epoch);
    s.map.emplace(key, std::move(value));
    s.cost += cost;
  }

  size_t size() const {
    size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.map.size();
    }
    return n;
  }
  // In Cost units.
  size_t cost() const {
    size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.cost;
    }
    return n;
  }
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct Shard {
    mutable std::mutex mu;
    uint64_t epoch = 0;
    size_t cost = 0;
    std::unordered_map<Key, Value, Hash> map;
    void clear(uint64_t new_epoch) {
      map.clear();
      cost = 0;
      epoch = new_epoch;
    }
  };
  // Not the low bits: the shard's own map picks its buckets with those.
  static size_t shard_index(const Key& key) { return (Hash{}(key) >> 7) % kShards; }
  Shard& shard_for(const Key& key) { return shards_[shard_index(key)]; }

  size_t per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace dvs::core
