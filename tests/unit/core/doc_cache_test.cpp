#include "core/doc_cache.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace dvs::core;

namespace {
std::shared_ptr<const CachedDocs> docs(size_t bytes) {
  auto d = std::make_shared<CachedDocs>();
  d->json.assign(bytes, 'x');
  return d;
}
}  // namespace

TEST(DocCache, StaysWithinItsBytes) {
  DocCache c(DocCache::kShards * 4096);
  for (int i = 0; i < 1000; ++i) c.put("k" + std::to_string(i), docs(1000), 1);
  EXPECT_LE(c.cost(), DocCache::kShards * 4096);
  EXPECT_GT(c.size(), 0u);
  // Larger than a shard's share: not kept at all.
  c.put("big", docs(8192), 1);
  EXPECT_FALSE(c.get("big", 1));
}

TEST(DocCache, ServesAnEntryOnlyAtTheEpochItWasReadAt) {
  DocCache c(1 << 20);
  c.put("k", docs(10), 5);
  EXPECT_TRUE(c.get("k", 5));
  EXPECT_FALSE(c.get("k", 6));
  // The newer epoch emptied the shard: the old entry is gone for good.
  EXPECT_FALSE(c.get("k", 5));
  // An older reader neither uses nor stores.
  c.put("k", docs(10), 4);
  EXPECT_FALSE(c.get("k", 6));
}

TEST(DocCache, ReplacingAnEntryKeepsTheCostRight) {
  DocCache c(1 << 20);
  c.put("k", docs(100), 1);
  const size_t one = c.cost();
  c.put("k", docs(100), 1);
  EXPECT_EQ(c.cost(), one);
  EXPECT_EQ(c.size(), 1u);
}

TEST(DocCache, EveryFieldOfAQueryMakesADifferentKey) {
  ListQuery base;
  std::set<std::string> keys;
  keys.insert(doc_list_key('L', "org_a", base));
  keys.insert(doc_list_key('I', "org_a", base));
  keys.insert(doc_list_key('L', "org_b", base));
  ListQuery q = base;
  q.limit = 21;
  keys.insert(doc_list_key('L', "org_a", q));
  q = base;
  q.after_created_at = 5;
  q.after_id = "lead_x";
  keys.insert(doc_list_key('L', "org_a", q));
  q.after_id = "lead_y";
  keys.insert(doc_list_key('L', "org_a", q));
  q = base;
  q.status = "won";
  keys.insert(doc_list_key('L', "org_a", q));
  q = base;
  q.updated_since = 0;
  keys.insert(doc_list_key('L', "org_a", q));
  q.updated_since = 1;
  keys.insert(doc_list_key('L', "org_a", q));
  EXPECT_EQ(keys.size(), 9u);
  EXPECT_NE(doc_key('l', "org_a", "lead_x"), doc_key('l', "org_b", "lead_x"));
  EXPECT_NE(doc_key('l', "org_a", "lead_x"), doc_key('i', "org_a", "lead_x"));
}
