// The document cache behind SqliteStore's /v1 reads (core/doc_cache.hpp) on a
// real SQLite database: a page or an object is served from memory until a
// lead or an invoice changes; a change made through a store (this one,
// another process such as the CLI's import) is seen by the very next read,
// one made with plain SQL once SqliteStore::kEpochRecheckMs has passed
// (change_signal.hpp). Each read runs as a request's does, inside one read
// snapshot.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/ids.hpp"
#include "sqlite_test_db.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace dvs;

class DocCacheStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = sqlitetest::fresh_test_dir("dvs-doccache-test-");
    path = (dir / "t.db").string();
    store = std::make_unique<store::SqliteStore>(path);
    ASSERT_TRUE(store->migrate());
    store->cache_documents(1 << 20);
    for (const char* name : {"A", "B"}) {
      core::Organization o{core::new_id("org"), name, 1};
      ASSERT_TRUE(store->create_org(o).ok());
      orgs.push_back(o.id);
    }
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->upsert_leads({lead(orgs[0], 1000 + i)}).ok());
    ASSERT_TRUE(store->upsert_leads({lead(orgs[1], 1000)}).ok());
  }
  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  static core::Lead lead(const std::string& org, int64_t created, const std::string& name = "n") {
    core::Lead l;
    l.id = core::new_id("lead");
    l.org_id = org;
    l.name = name;
    l.created_at = created;
    l.updated_at = created;
    return l;
  }
  // A list response's documents, read as a request reads them.
  core::DocPage page(const std::string& org, int limit = 3,
                     std::optional<std::pair<int64_t, std::string>> after = std::nullopt) {
    auto snapshot = store->read_scope();
    core::ListQuery q;
    q.limit = limit;
    if (after) {
      q.after_created_at = after->first;
      q.after_id = after->second;
    }
    core::DocPage p;
    EXPECT_TRUE(store->list_lead_docs(org, q, p).ok());
    return p;
  }
  core::Result<core::Document> one(const std::string& org, const std::string& id) {
    auto snapshot = store->read_scope();
    return store->get_lead_doc(org, id);
  }
  void exec_elsewhere(const std::string& sql) { sqlitetest::exec_elsewhere(path, sql); }
  static void wait_for_recheck() { sqlitetest::wait_for_recheck(); }

  std::filesystem::path dir;
  std::string path;
  std::vector<std::string> orgs;
  std::unique_ptr<store::SqliteStore> store;
};

TEST_F(DocCacheStoreTest, ASecondReadIsServedFromMemoryAndIsTheSame) {
  auto first = page(orgs[0]);
  const auto before = store->doc_cache_stats();
  auto second = page(orgs[0]);
  EXPECT_EQ(store->doc_cache_stats().hits, before.hits + 1);
  EXPECT_EQ(second.json, first.json);
  EXPECT_EQ(second.count, 3);
  EXPECT_TRUE(second.has_more);
  EXPECT_EQ(second.last_id, first.last_id);
  EXPECT_EQ(second.last_created_at, 1002);
}

TEST_F(DocCacheStoreTest, EachOrganizationAndEachQueryHasItsOwnEntry) {
  auto a = page(orgs[0]);
  auto b = page(orgs[1]);
  EXPECT_NE(a.json, b.json);
  EXPECT_EQ(b.count, 1);
  EXPECT_FALSE(b.has_more);
  auto a2 = page(orgs[0], 3, std::make_pair(a.last_created_at, a.last_id));
  EXPECT_EQ(a2.count, 2);
  EXPECT_EQ(a2.json.find(a.last_id), std::string::npos);
  auto a_all = page(orgs[0], 5);
  EXPECT_EQ(a_all.count, 5);
  // An object of org A asked for by org B is not found, cached or not.
  auto id = a.last_id;
  ASSERT_TRUE(one(orgs[0], id));
  ASSERT_TRUE(one(orgs[0], id));
  auto other = one(orgs[1], id);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, core::Errc::not_found);
}

TEST_F(DocCacheStoreTest, AWriteThroughTheStoreIsSeenAtOnce) {
  auto before = page(orgs[0]);
  page(orgs[0]);
  auto newest = lead(orgs[0], 2000, "newest");
  ASSERT_TRUE(store->upsert_leads({newest}).ok());
  auto after = page(orgs[0]);
  EXPECT_NE(after.json.find(newest.id), std::string::npos);
  EXPECT_NE(after.json, before.json);
}

TEST_F(DocCacheStoreTest, AWriteFromAnotherProcessIsSeenAtOnce) {
  auto before = page(orgs[0]);
  page(orgs[0]);
  auto newest = lead(orgs[0], 2000, "newest");
  {
    // Another store on the same file, as `devsphere import` opens: its own
    // mapping of the change signal, its own connections.
    store::SqliteStore cli(path);
    ASSERT_TRUE(cli.upsert_leads({newest}).ok());
  }
  EXPECT_NE(page(orgs[0]).json.find(newest.id), std::string::npos);
  // And an object changed elsewhere.
  auto changed = newest;
  changed.name = "renamed";
  {
    store::SqliteStore cli(path);
    ASSERT_TRUE(one(orgs[0], newest.id));
    ASSERT_TRUE(cli.upsert_leads({changed}).ok());
  }
  auto now = one(orgs[0], newest.id);
  ASSERT_TRUE(now);
  EXPECT_NE(now->json.find("renamed"), std::string::npos);
}

TEST_F(DocCacheStoreTest, AChangeWithPlainSqlIsSeenWithinTheRecheckBound) {
  auto before = page(orgs[0]);
  const std::string newest_id = before.json.substr(before.json.find("lead_"), 29);
  ASSERT_TRUE(one(orgs[0], newest_id));
  // An operator's connection: the epoch rises (migration 8), the signal does not.
  exec_elsewhere("DELETE FROM leads WHERE id = '" + newest_id + "'");
  wait_for_recheck();
  EXPECT_EQ(page(orgs[0]).json.find(newest_id), std::string::npos);
  auto gone = one(orgs[0], newest_id);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, core::Errc::not_found);
}

TEST_F(DocCacheStoreTest, WithoutACacheNothingIsKept) {
  store->cache_documents(0);
  page(orgs[0]);
  page(orgs[0]);
  const auto st = store->doc_cache_stats();
  EXPECT_EQ(st.hits, 0u);
  EXPECT_EQ(st.entries, 0u);
}
