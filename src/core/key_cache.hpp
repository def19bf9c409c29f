#pragma once
// An in-process cache of API keys by the hash of their secret, so that a
// request with a known key is verified without a database look-up
// (issue #5: key verification under 1 µs).
//
// Revocation stays immediate, across processes too, because every entry is
// tagged with the store's *key epoch*: a counter the database bumps in the
// same transaction as any change to a key that matters for authentication
// (revoke, rotate, expiry, scopes, limit; see migration 4). The caller reads
// the epoch inside the request's read snapshot, before it asks the cache, and
// an entry is used only when its epoch equals the one just read. A revoke
// committed before the request's snapshot has raised the epoch, so the
// revoked key's entry no longer matches and the key is read again.
//
// Rules that keep it safe when snapshots of different ages meet:
// - put(hash, key, e) stores only if `key` was read after the epoch `e` was
//   read (the caller's duty: epoch first, then the row);
// - a shard that sees a newer epoch forgets everything it holds;
// - an older epoch than the shard's bypasses the shard (no use, no store).
//
// Only keys that exist are cached (revoked and expired ones too: their status
// is computed at each use). Unknown keys are not: a flood of random keys would
// only evict good entries. Bounded: a shard that is full is emptied.
// Thread-safe; sharded so that threads rarely wait for one another.

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/api_key.hpp"
#include "core/models.hpp"

namespace dvs::core {

class KeyCache {
 public:
  // `capacity` entries in all (at least one per shard); 0 disables the cache.
  explicit KeyCache(size_t capacity = kDefaultCapacity);

  static constexpr size_t kDefaultCapacity = 50'000;
  static constexpr size_t kShards = 16;

  bool enabled() const { return per_shard_ != 0; }

  // The key for `hash` cached at exactly `epoch`, or nothing.
  std::optional<ApiKey> get(const KeyHash& hash, uint64_t epoch);
  // Remembers `key` (read after `epoch` was read) for `hash`.
  void put(const KeyHash& hash, const ApiKey& key, uint64_t epoch);

  size_t size() const;
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct HashOfHash {
    size_t operator()(const KeyHash& h) const noexcept {
      size_t v;  // the hash of a secret is uniformly distributed already
      std::memcpy(&v, h.data(), sizeof v);
      return v;
    }
  };
  struct Shard {
    mutable std::mutex mu;
    uint64_t epoch = 0;
    std::unordered_map<KeyHash, ApiKey, HashOfHash> keys;
  };
  Shard& shard_for(const KeyHash& h) { return shards_[h[31] % kShards]; }

  size_t per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace dvs::core
