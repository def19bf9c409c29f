// PostgresStore behaviour that has no SQLite counterpart: start-up errors,
// the connection pool, recovery after lost connections, concurrent
// migrations. The shared contract is in store_contract_test.cpp.

#include "store/postgres/migrations.hpp"
#include "store/postgres/postgres_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <map>
#include <mutex>
#include <future>
#include <thread>

#include "core/ids.hpp"
#include "pg_test_db.hpp"

using namespace dvs;
using store::PostgresStore;

namespace {

// The message of the exception PostgresStore's constructor throws for `url`.
std::string start_error(const std::string& url) {
  try {
    PostgresStore s(url, 1);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << store::mask_db_password(url);
  return {};
}

}  // namespace

TEST(PostgresStartup, BadUrlErrorHidesThePassword) {
  // Nothing listens on port 1; the second URL is malformed (libpq quotes the
  // whole URI in its message); the third has the password percent-encoded.
  for (std::string url : {"postgresql://dvs:Sup3rS3cret@127.0.0.1:1/dvs",
                          "postgresql://dvs:Sup3rS3cret@127.0.0.1:1/d v s",
                          "postgresql://dvs:Sup3r%53ecret@127.0.0.1:1/dvs",
                          "postgresql://dvs@127.0.0.1:1/dvs?password=Sup3rS3cret"}) {
    std::string msg = start_error(url);
    EXPECT_EQ(msg.find("Sup3r"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot connect to PostgreSQL"), std::string::npos) << msg;
    EXPECT_NE(msg.find("***"), std::string::npos) << msg;
  }
  EXPECT_THROW(PostgresStore("postgresql://dvs@127.0.0.1:1/dvs", 0), std::runtime_error);
}

TEST(PostgresStartup, MasksPasswordsInUrls) {
  EXPECT_EQ(store::mask_db_password("postgresql://u:pw@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(store::mask_db_password("postgres://u:p@w/d@h/db"), "postgres://u:***@h/db");
  EXPECT_EQ(store::mask_db_password("postgresql://u@h:5432/db"), "postgresql://u@h:5432/db");
  EXPECT_EQ(store::mask_db_password("postgresql://h/db?sslmode=require&password=pw"),
            "postgresql://h/db?sslmode=require&password=***");
  EXPECT_EQ(store::mask_db_password("host=h password='a b' user=u"), "host=h password=*** user=u");
}

class PostgresServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (pgtest::pg_test_url().empty()) GTEST_SKIP() << pgtest::kPgSkipMessage;
    db = std::make_unique<pgtest::TempPgDatabase>(pgtest::pg_test_url());
  }
  std::unique_ptr<pgtest::TempPgDatabase> db;
};

TEST_F(PostgresServer, RecoversWhenTheServerDropsItsConnections) {
  PostgresStore s(db->url(), 2);
  ASSERT_TRUE(s.migrate());
  core::Organization org{core::new_id("org"), "A", 1};
  ASSERT_TRUE(s.create_org(org).ok());
  db->terminate_connections();  // as a restart does
  // The idle connection is found closed and replaced before it is used.
  auto got = s.get_org(org.id);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->name, "A");
}

TEST_F(PostgresServer, UnreachableIsUnavailableUntilTheServerIsBack) {
  PostgresStore s(db->url(), 2);
  ASSERT_TRUE(s.migrate());
  db->admin().exec("ALTER DATABASE " + db->name() + " ALLOW_CONNECTIONS false");
  db->terminate_connections();
  auto down = s.ping();
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, core::Errc::unavailable);
  db->admin().exec("ALTER DATABASE " + db->name() + " ALLOW_CONNECTIONS true");
  EXPECT_TRUE(s.ping().ok());
}

TEST_F(PostgresServer, ExhaustedPoolIsUnavailableAfterTheTimeout) {
  PostgresStore s(db->url(), 1, std::chrono::milliseconds(200));
  ASSERT_TRUE(s.migrate());
  core::Organization org{core::new_id("org"), "A", 1};
  ASSERT_TRUE(s.create_org(org).ok());
  // Another session locks the table, so a read holds the only connection.
  pgtest::PgAdmin locker(db->url());
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE");
  std::thread reader([&] { EXPECT_TRUE(s.get_org(org.id)); });
  // Wait until the reader is blocked on the lock (it then holds the connection).
  for (int i = 0; i < 10000; ++i) {
    if (db->admin().exec("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db->name() +
                         "' AND wait_event_type = 'Lock'") == "1")
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto busy = s.ping();
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, core::Errc::unavailable);
  locker.exec("COMMIT");
  reader.join();
  EXPECT_TRUE(s.ping().ok());
}

TEST_F(PostgresServer, ConcurrentMigrationsApplyEachVersionOnce) {
  PostgresStore a(db->url(), 1), b(db->url(), 1);
  core::Result<int> ra = 0, rb = 0;
  std::thread ta([&] { ra = a.migrate(); });
  std::thread tb([&] { rb = b.migrate(); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra) << ra.error().message;
  ASSERT_TRUE(rb) << rb.error().message;
  const auto n = static_cast<int>(dvs::store::postgres_migrations().size());
  EXPECT_EQ(*ra + *rb, n);
  pgtest::PgAdmin check(db->url());
  EXPECT_EQ(check.exec("SELECT count(*) FROM schema_migrations"), std::to_string(n));
}

// The key and document epochs (migration 4) and the caches that trust them:
// a change committed before a request, by this store, another one or plain
// SQL, is seen by that request, with no delay to wait out.
class PostgresEpochs : public PostgresServer {
 protected:
  void SetUp() override {
    PostgresServer::SetUp();
    if (IsSkipped()) return;
    store = std::make_unique<PostgresStore>(db->url(), 4);
    ASSERT_TRUE(store->migrate());
    store->cache_documents(1 << 20);
    org = core::new_id("org");
    ASSERT_TRUE(store->create_org(core::Organization{org, "A", 1}).ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->upsert_leads({lead(1000 + i)}).ok());
  }
  core::Lead lead(int64_t created) const {
    core::Lead l;
    l.id = core::new_id("lead");
    l.org_id = org;
    l.name = "n";
    l.created_at = created;
    l.updated_at = created;
    return l;
  }
  // As a request gets them: asynchronously, from a read started after the call.
  store::Store::Epochs epochs() {
    std::promise<store::Store::Epochs> read;
    auto got = read.get_future();
    store->read_epochs_async([&read](store::Store::Epochs e) { read.set_value(e); });
    return got.get();
  }
  // A page's documents, read as a request reads them: epochs first, then the
  // page in a scope at those epochs.
  std::string page(PostgresStore& s) {
    std::promise<store::Store::Epochs> read;
    auto got = read.get_future();
    s.read_epochs_async([&read](store::Store::Epochs e) { read.set_value(e); });
    auto scope = s.read_scope_at(got.get());
    core::ListQuery q;
    q.limit = 3;
    core::DocPage p;
    EXPECT_TRUE(s.list_lead_docs(org, q, p).ok());
    return p.json;
  }
  std::unique_ptr<PostgresStore> store;
  std::string org;
};

TEST_F(PostgresEpochs, RaisedOncePerCommittedTransactionByWhatMatters) {
  const auto e0 = epochs();
  ASSERT_TRUE(e0.keys && e0.docs);
  // Fifty leads in one call: one transaction of many statements, one raise.
  std::vector<core::Lead> many;
  for (int i = 0; i < 50; ++i) many.push_back(lead(2000 + i));
  ASSERT_TRUE(store->upsert_leads(many).ok());
  auto e1 = epochs();
  EXPECT_EQ(*e1.docs, *e0.docs + 1);
  EXPECT_EQ(*e1.keys, *e0.keys);
  // Plain SQL raises it too; a rolled-back change does not.
  pgtest::PgAdmin sql(db->url());
  sql.exec("UPDATE leads SET name = 'renamed'");
  sql.exec("BEGIN; DELETE FROM invoices; UPDATE leads SET name = 'gone'; ROLLBACK");
  auto e2 = epochs();
  EXPECT_EQ(*e2.docs, *e1.docs + 1);
  // Keys: a new key and a use raise nothing (only keys found are cached); a
  // revocation does, from another store as from this one.
  core::ApiKey k;
  k.id = core::new_id("key");
  k.org_id = org;
  k.name = "k";
  k.hint = "dvs_live_abcd";
  k.secret_hash.fill(7);
  k.scopes.add(core::Scope::leads_read);
  k.created_at = 2000;
  ASSERT_TRUE(store->insert_key(k, nullptr).ok());
  ASSERT_TRUE(store->touch_keys({{k.id, 3000}}).ok());
  EXPECT_EQ(*epochs().keys, *e0.keys);
  PostgresStore other(db->url(), 1);
  ASSERT_TRUE(other.revoke_key(org, k.id, 3001, nullptr));
  EXPECT_EQ(*epochs().keys, *e0.keys + 1);
  EXPECT_EQ(store->key_epoch(), *e0.keys + 1);  // the blocking read agrees
}

TEST_F(PostgresEpochs, ACachedPageIsServedUntilAChangeFromAnywhereIsCommitted) {
  const std::string first = page(*store);
  EXPECT_EQ(page(*store), first);
  const auto stats = store->doc_cache_stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 1u);
  // Plain SQL on the newest lead: the very next read sees it.
  pgtest::PgAdmin sql(db->url());
  sql.exec("UPDATE leads SET doc = replace(doc, '\"name\":\"n\"', '\"name\":\"edited\"') "
           "WHERE created_at = 1004");
  const std::string edited = page(*store);
  EXPECT_NE(edited.find("\"edited\""), std::string::npos) << edited;
  // Another store (another node) adds a newer lead: seen at once too.
  PostgresStore other(db->url(), 1);
  auto newest = lead(9000);
  ASSERT_TRUE(other.upsert_leads({newest}).ok());
  EXPECT_NE(page(*store).find(newest.id), std::string::npos);
}

TEST_F(PostgresEpochs, WithoutACacheNothingIsKept) {
  store->cache_documents(0);
  page(*store);
  page(*store);
  EXPECT_EQ(store->doc_cache_stats().hits, 0u);
  EXPECT_EQ(store->doc_cache_stats().bytes, 0u);
}

// Keys looked up together (one statement for the batch) each get their own
// answer: the key with their hash, or not_found.
TEST_F(PostgresEpochs, KeyLookupsQueuedTogetherEachGetTheirOwnAnswer) {
  std::vector<core::ApiKey> keys;
  for (unsigned char tag = 1; tag <= 5; ++tag) {
    core::ApiKey k;
    k.id = core::new_id("key");
    k.org_id = org;
    k.name = "k" + std::to_string(tag);
    k.hint = "dvs_live_abcd";
    k.secret_hash.fill(tag);
    k.scopes.add(core::Scope::leads_read);
    k.created_at = 2000;
    ASSERT_TRUE(store->insert_key(k, nullptr).ok());
    keys.push_back(k);
  }
  std::mutex mu;
  std::condition_variable cv;
  std::map<int, core::Result<core::ApiKey>> got;
  // Tags 1..5 exist; 6..9 do not; 3 is asked twice.
  const std::vector<unsigned char> asked = {6, 1, 3, 7, 5, 3, 8, 2, 9, 4};
  for (size_t i = 0; i < asked.size(); ++i) {
    core::KeyHash h;
    h.fill(asked[i]);
    store->find_key_async(h, [&, i](core::Result<core::ApiKey> r) {
      std::lock_guard lock(mu);
      got.emplace(static_cast<int>(i), std::move(r));
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return got.size() == asked.size(); });
  for (size_t i = 0; i < asked.size(); ++i) {
    const auto& r = got.at(static_cast<int>(i));
    if (asked[i] > 5) {
      ASSERT_FALSE(r) << i;
      EXPECT_EQ(r.error().code, core::Errc::not_found);
    } else {
      ASSERT_TRUE(r) << i;
      EXPECT_EQ(r->id, keys[asked[i] - 1].id);
      EXPECT_EQ(r->name, "k" + std::to_string(asked[i]));
    }
  }
}

// The filter of key hashes (migration 5): a hash that no key has is refused
// without a look-up, and a key committed before the read (by this store,
// another node, plain SQL, or a transaction that waited for another's) is
// never refused by it.
TEST_F(PostgresEpochs, TheKeyFilterKnowsEveryKeyCommittedBeforeTheRead) {
  auto hash = [](unsigned char tag) {
    core::KeyHash h;
    h.fill(tag);
    return h;
  };
  auto key = [&](unsigned char tag) {
    core::ApiKey k;
    k.id = core::new_id("key");
    k.org_id = org;
    k.name = "k";
    k.hint = "dvs_live_abcd";
    k.secret_hash = hash(tag);
    k.scopes.add(core::Scope::leads_read);
    k.created_at = 2000;
    return k;
  };
  // As a request asks: in a scope at epochs read after the call.
  auto surely_unknown = [&](unsigned char tag) {
    auto scope = store->read_scope_at(epochs());
    return store->surely_unknown_key(hash(tag));
  };
  auto wait_built = [&] {
    for (int i = 0; i < 1000 && !store->key_filter_ready(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(store->key_filter_ready());
  };
  auto sql_key = [&](pgtest::PgAdmin& sql, const std::string& before, unsigned char tag) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", tag);
    sql.exec(before + "INSERT INTO api_keys(id, org_id, name, hint, secret_hash, scopes, "
                      "rate_limit_per_minute, created_at) VALUES ('" +
             core::new_id("key") + "', '" + org + "', 'sql', 'dvs_live_abcd', decode(repeat('" +
             hex + "', 32), 'hex'), 'leads:read', 120, 2000)");
  };
  ASSERT_TRUE(store->insert_key(key(1), nullptr).ok());
  EXPECT_FALSE(store->surely_unknown_key(hash(200)));  // no scope at read epochs: unsure
  EXPECT_FALSE(surely_unknown(200));                    // not built yet: unsure; builds it
  wait_built();
  EXPECT_TRUE(surely_unknown(200));
  EXPECT_FALSE(surely_unknown(1));

  // Added after the build: by this store, by another node, by plain SQL,
  // and a hash set by plain SQL.
  ASSERT_TRUE(store->insert_key(key(11), nullptr).ok());
  EXPECT_FALSE(surely_unknown(11));
  PostgresStore other(db->url(), 1);
  ASSERT_TRUE(other.insert_key(key(12), nullptr).ok());
  EXPECT_FALSE(surely_unknown(12));
  pgtest::PgAdmin sql(db->url());
  sql_key(sql, "", 13);
  EXPECT_FALSE(surely_unknown(13));
  sql.exec("UPDATE api_keys SET secret_hash = decode(repeat('0e', 32), 'hex') "
           "WHERE secret_hash = decode(repeat('0d', 32), 'hex')");
  EXPECT_FALSE(surely_unknown(14));
  // A rolled-back insert is not learned, and its mark is taken again by the
  // next insert, whose key is.
  sql_key(sql, "BEGIN; ", 15);
  sql.exec("ROLLBACK");
  ASSERT_TRUE(store->insert_key(key(16), nullptr).ok());
  EXPECT_TRUE(surely_unknown(15));
  EXPECT_FALSE(surely_unknown(16));

  // Two inserts at once: the second waits for the first's commit (the
  // mark's row lock); reads meanwhile see neither, then both are learned.
  pgtest::PgAdmin first(db->url());
  sql_key(first, "BEGIN; ", 17);
  std::promise<core::Status> second_done;
  std::thread second([&] { second_done.set_value(other.insert_key(key(18), nullptr)); });
  auto second_result = second_done.get_future();
  EXPECT_EQ(second_result.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  EXPECT_TRUE(surely_unknown(17));
  EXPECT_TRUE(surely_unknown(18));
  first.exec("COMMIT");
  second.join();
  ASSERT_TRUE(second_result.get().ok());
  EXPECT_FALSE(surely_unknown(17));
  EXPECT_FALSE(surely_unknown(18));
  EXPECT_TRUE(surely_unknown(200));

  // The mark going back (a restored backup): unsure until built again.
  sql.exec("UPDATE key_inserts SET value = value - 1000000000000");
  EXPECT_FALSE(surely_unknown(200));
  wait_built();
  EXPECT_TRUE(surely_unknown(200));
  for (unsigned char tag : {1, 11, 12, 14, 16, 17, 18}) EXPECT_FALSE(surely_unknown(tag)) << int(tag);
}
