#include "core/key_cache.hpp"

namespace dvs::core {

KeyCache::KeyCache(size_t capacity)
    : per_shard_(capacity == 0 ? 0 : (capacity + kShards - 1) / kShards) {}

std::optional<ApiKey> KeyCache::get(const KeyHash& hash, uint64_t epoch) {
  if (!enabled()) return std::nullopt;
  Shard& s = shard_for(hash);
  {
    std::lock_guard lock(s.mu);
    if (epoch > s.epoch) {
      s.keys.clear();
      s.epoch = epoch;
    } else if (epoch == s.epoch) {
      if (auto it = s.keys.find(hash); it != s.keys.end()) {
        hits_.fetch_add(1, std::memory_order_relaxed);
        return it->second;
      }
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

void KeyCache::put(const KeyHash& hash, const ApiKey& key, uint64_t epoch) {
  if (!enabled()) return;
  Shard& s = shard_for(hash);
  std::lock_guard lock(s.mu);
  if (epoch < s.epoch) return;
  if (epoch > s.epoch) {
    s.keys.clear();
    s.epoch = epoch;
  }
  if (s.keys.size() >= per_shard_ && !s.keys.contains(hash)) s.keys.clear();
  ApiKey& slot = s.keys[hash];
  slot = key;
  // Neither is needed to authenticate, and both go stale: not kept.
  slot.last_used_at.reset();
  slot.created_by_email.reset();
}

size_t KeyCache::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.keys.size();
  }
  return n;
}

}  // namespace dvs::core
