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

// The stores build keys in a reused buffer: what was there before is gone.
TEST(DocCache, AKeyWrittenIntoABufferIsTheSameKey) {
  ListQuery deep;
  deep.after_created_at = 1700000000;
  deep.after_id = "lead_0123456789abcdefghijkl";
  deep.status = "qualified";
  std::string buf;
  doc_list_key(buf, 'L', "org_long_organization_id", deep);
  EXPECT_EQ(buf, doc_list_key('L', "org_long_organization_id", deep));
  doc_list_key(buf, 'L', "org_a", ListQuery{});
  EXPECT_EQ(buf, doc_list_key('L', "org_a", ListQuery{}));
  doc_key(buf, 'l', "org_a", "lead_x");
  EXPECT_EQ(buf, doc_key('l', "org_a", "lead_x"));
}

// A list page is kept as the whole answer the handler sends on a miss, and
// given whole only to a caller that takes it with nothing written yet;
// anyone else gets the documents appended, as from a read.
TEST(DocCache, AListPageIsKeptAsTheWholeAnswerAMissWouldSend) {
  const std::string docs = R"({"id":"lead_2"},{"id":"lead_1"})";
  DocPage read;
  read.json = std::string(kListHead) + docs;
  read.count = 2;
  read.has_more = true;
  read.last_created_at = 1700000000;
  read.last_id = "lead_1";
  auto entry = cached_page(read, kListHead.size(), 0);
  std::string sent = read.json;
  append_list_tail(sent, read.has_more, read.count, read.last_created_at, read.last_id);
  EXPECT_EQ(entry->json, sent);
  EXPECT_NE(sent.find(R"("has_more":true,"next_cursor":")"), std::string::npos);
  EXPECT_EQ(entry->docs(), docs);

  DocPage taker;
  taker.take_whole = true;
  give_cached(entry, taker);
  ASSERT_TRUE(taker.whole);
  EXPECT_EQ(*taker.whole, sent);
  EXPECT_EQ(taker.json, "");
  EXPECT_EQ(taker.count, 2);
  EXPECT_TRUE(taker.has_more);
  EXPECT_EQ(taker.last_id, "");  // the cursor is in the body

  DocPage other;  // does not take whole answers
  other.json = kListHead;
  give_cached(entry, other);
  EXPECT_FALSE(other.whole);
  EXPECT_EQ(other.json, std::string(kListHead) + docs);

  DocPage started;  // takes them, but has a document already
  started.take_whole = true;
  started.json = std::string(kListHead) + R"({"id":"lead_3"})";
  started.count = 1;
  give_cached(entry, started);
  EXPECT_FALSE(started.whole);
  EXPECT_EQ(started.json, std::string(kListHead) + R"({"id":"lead_3"},)" + docs);
  EXPECT_EQ(started.count, 3);
  EXPECT_EQ(started.last_id, "lead_1");

  // The last page: no cursor.
  DocPage last;
  last.json = std::string(kListHead) + docs;
  last.count = 2;
  auto end = cached_page(last, kListHead.size(), 0);
  EXPECT_EQ(end->json, std::string(kListHead) + docs + R"(],"has_more":false,"next_cursor":null})");
}

TEST(DocCache, OneObjectComesBackAsItsDocument) {
  Document doc{"lead_1", 1700000000, R"({"id":"lead_1","object":"lead"})"};
  auto back = cached_to_doc(*cached_doc(doc));
  EXPECT_EQ(back.id, doc.id);
  EXPECT_EQ(back.created_at, doc.created_at);
  EXPECT_EQ(back.json, doc.json);
}
