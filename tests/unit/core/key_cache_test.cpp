#include "core/key_cache.hpp"

#include <gtest/gtest.h>

using namespace dvs::core;

namespace {
KeyHash hash_of(unsigned n) {
  KeyHash h{};
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<unsigned char>((n >> (8 * (i % 4))) + i);
  return h;
}
ApiKey key_named(std::string id) {
  ApiKey k;
  k.id = std::move(id);
  k.org_id = "org_1";
  k.name = "CRM sync for the sales team";
  k.hint = "dvs_live_…a1b2";
  k.scopes = ScopeSet::from_string("leads:read");
  k.created_at = 1700000000;
  k.rate_limit_per_minute = 600;
  k.expires_at = 2000000000;
  k.revoked_at = 1900000000;
  k.created_by_id = "usr_0123456789abcdef";
  k.last_used_at = 5;
  k.created_by_email = "ceo@example.com";
  k.replaced_by = "key_next";
  return k;
}
}  // namespace

TEST(KeyCache, ServesAnEntryOnlyAtTheEpochItWasReadAt) {
  KeyCache c;
  EXPECT_FALSE(c.get(hash_of(1), 7));
  c.put(hash_of(1), key_named("key_a"), 7);
  auto hit = c.get(hash_of(1), 7);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->id, "key_a");
  // What authentication decides on is kept.
  EXPECT_EQ(hit->org_id, "org_1");
  EXPECT_EQ(hit->scopes, key_named("key_a").scopes);
  EXPECT_EQ(hit->rate_limit_per_minute, 600u);
  EXPECT_EQ(hit->created_at, 1700000000);
  EXPECT_EQ(hit->expires_at, 2000000000);
  EXPECT_EQ(hit->revoked_at, 1900000000);
  // Nothing else: not needed on a request, and some of it goes stale.
  EXPECT_FALSE(hit->last_used_at);
  EXPECT_FALSE(hit->created_by_email);
  EXPECT_FALSE(hit->created_by_id);
  EXPECT_FALSE(hit->replaced_by);
  EXPECT_EQ(hit->name, "");
  EXPECT_EQ(hit->hint, "");
  EXPECT_FALSE(c.get(hash_of(2), 7));
  EXPECT_EQ(c.hits(), 1u);
  EXPECT_EQ(c.misses(), 2u);
}

TEST(KeyCache, ANewerEpochForgetsEverything) {
  KeyCache c;
  for (unsigned i = 0; i < 64; ++i) c.put(hash_of(i), key_named("key_" + std::to_string(i)), 3);
  EXPECT_EQ(c.size(), 64u);
  for (unsigned i = 0; i < 64; ++i) EXPECT_FALSE(c.get(hash_of(i), 4)) << i;
  EXPECT_EQ(c.size(), 0u);
  // And an entry from the old epoch is not served after it either.
  EXPECT_FALSE(c.get(hash_of(1), 3));
}

TEST(KeyCache, AnOlderSnapshotNeitherUsesNorStores) {
  KeyCache c;
  c.put(hash_of(1), key_named("key_new"), 10);
  // A request whose snapshot predates the change that raised the epoch.
  EXPECT_FALSE(c.get(hash_of(1), 9));
  c.put(hash_of(2), key_named("key_old"), 9);
  EXPECT_FALSE(c.get(hash_of(2), 10));
  EXPECT_FALSE(c.get(hash_of(2), 9));
  ASSERT_TRUE(c.get(hash_of(1), 10));
}

TEST(KeyCache, StaysWithinItsCapacity) {
  KeyCache c(KeyCache::kShards * 4);  // four per shard
  for (unsigned i = 0; i < 10'000; ++i) c.put(hash_of(i), key_named("k"), 1);
  EXPECT_LE(c.size(), KeyCache::kShards * 4);
  EXPECT_GT(c.size(), 0u);
}

TEST(KeyCache, CapacityZeroTurnsItOff) {
  KeyCache c(0);
  EXPECT_FALSE(c.enabled());
  c.put(hash_of(1), key_named("key_a"), 1);
  EXPECT_FALSE(c.get(hash_of(1), 1));
  EXPECT_EQ(c.size(), 0u);
}
