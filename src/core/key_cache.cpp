#include "core/key_cache.hpp"

namespace dvs::core {

void KeyCache::put(const KeyHash& hash, const ApiKey& key, uint64_t epoch) {
  if (!enabled()) return;
  // Only what authentication needs (the ids, the hash, scopes, limit and the
  // dates that decide the status): the rest is not needed on a request, some
  // of it goes stale without a new epoch (a rename, the last use), and each
  // string kept is one more allocation in every copy a hit hands out.
  ApiKey kept;
  kept.id = key.id;
  kept.org_id = key.org_id;
  kept.secret_hash = key.secret_hash;
  kept.scopes = key.scopes;
  kept.rate_limit_per_minute = key.rate_limit_per_minute;
  kept.created_at = key.created_at;
  kept.expires_at = key.expires_at;
  kept.revoked_at = key.revoked_at;
  cache_.put(hash, std::move(kept), epoch);
}

}  // namespace dvs::core
