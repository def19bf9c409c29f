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
// an entry is used only when its epoch equals the one just read
// (core/epoch_cache.hpp has the rules). A revoke committed before the
// request's snapshot has raised the epoch, so the revoked key's entry no
// longer matches and the key is read again.
//
// Only keys that exist are cached (revoked and expired ones too: their status
// is computed at each use). Unknown keys are not: a flood of random keys would
// only evict good entries. Bounded: a shard that is full is emptied.
// Thread-safe; sharded so that threads rarely wait for one another.

#include <cstdint>
#include <cstring>
#include <optional>

#include "core/api_key.hpp"
#include "core/epoch_cache.hpp"
#include "core/models.hpp"

namespace dvs::core {

class KeyCache {
 public:
  // `capacity` entries in all (at least one per shard); 0 disables the cache.
  explicit KeyCache(size_t capacity = kDefaultCapacity) : cache_(capacity) {}

  static constexpr size_t kDefaultCapacity = 50'000;

  bool enabled() const { return cache_.enabled(); }

  // The key for `hash` cached at exactly `epoch`, or nothing.
  std::optional<ApiKey> get(const KeyHash& hash, uint64_t epoch) { return cache_.get(hash, epoch); }
  // The key last cached for `hash`, at any epoch: a guess (EpochCache::peek).
  std::optional<ApiKey> peek(const KeyHash& hash) const { return cache_.peek(hash); }
  // Remembers `key` (read after `epoch` was read) for `hash`: its ids, hash,
  // scopes, limit and dates only (no name, hint, creator, last use or
  // successor).
  void put(const KeyHash& hash, const ApiKey& key, uint64_t epoch);

  size_t size() const { return cache_.size(); }
  uint64_t hits() const { return cache_.hits(); }
  uint64_t misses() const { return cache_.misses(); }

 private:
  struct HashOfHash {
    size_t operator()(const KeyHash& h) const noexcept {
      size_t v;  // the hash of a secret is uniformly distributed already
      std::memcpy(&v, h.data(), sizeof v);
      return v;
    }
  };
  struct OnePerKey {
    size_t operator()(const ApiKey&) const noexcept { return 1; }
  };
  using Cache = EpochCache<KeyHash, ApiKey, HashOfHash, OnePerKey>;
  Cache cache_;

 public:
  static constexpr size_t kShards = Cache::kShards;
};

}  // namespace dvs::core
