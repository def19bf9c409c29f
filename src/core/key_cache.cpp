#include "core/key_cache.hpp"

namespace dvs::core {

void KeyCache::put(const KeyHash& hash, const ApiKey& key, uint64_t epoch) {
  if (!enabled()) return;
  ApiKey kept = key;
  // Neither is needed to authenticate, and both go stale: not kept.
  kept.last_used_at.reset();
  kept.created_by_email.reset();
  cache_.put(hash, std::move(kept), epoch);
}

}  // namespace dvs::core
