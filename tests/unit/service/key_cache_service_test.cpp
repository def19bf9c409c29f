// The key cache behind KeyService::authenticate on a real SQLite database:
// a change to a key made through a store (this service, another process such
// as the CLI) is seen by the very next authentication; one made with plain
// SQL, once SqliteStore::kEpochRecheckMs has passed (change_signal.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/ids.hpp"
#include "core/key_cache.hpp"
#include "service/key_service.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "../store/sqlite_test_db.hpp"

using namespace dvs;

class KeyCacheServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = sqlitetest::fresh_test_dir("dvs-keycache-test-");
    path = (dir / "t.db").string();
    store = std::make_unique<store::SqliteStore>(path);
    ASSERT_TRUE(store->migrate());
    org = core::Organization{core::new_id("org"), "Org", 1};
    ASSERT_TRUE(store->create_org(org).ok());
    svc = std::make_unique<service::KeyService>(*store, hasher, clock);
    svc->use_cache(&cache);
    service::NewKeyRequest req;
    req.org_id = org.id;
    req.name = "CRM sync";
    req.scopes = {"leads:read"};
    auto issued = svc->create(req);
    ASSERT_TRUE(issued) << issued.error().message;
    key_id = issued->key.id;
    bearer = "Bearer " + issued->secret;
  }
  void TearDown() override {
    svc.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  // Authenticates as a request does: inside one read snapshot.
  core::Result<core::ApiKey> auth() {
    auto snapshot = store->read_scope();
    return svc->authenticate(bearer);
  }
  void exec_elsewhere(const std::string& sql) { sqlitetest::exec_elsewhere(path, sql); }

  static void wait_for_recheck() { sqlitetest::wait_for_recheck(); }
  // A key issued through a store of its own, as the CLI (another process)
  // issues one.
  core::Result<service::IssuedKey> issue_elsewhere(const std::string& name) {
    store::SqliteStore cli(path);
    service::KeyService cli_keys(cli, hasher, clock);
    service::NewKeyRequest req;
    req.org_id = org.id;
    req.name = name;
    req.scopes = {"leads:read"};
    return cli_keys.create(req);
  }
  // An unknown key starts the build of the filter of key hashes; waits
  // until it is in.
  void build_key_filter() {
    const std::string saved = bearer;
    bearer = "Bearer " + core::generate_key_secret();
    ASSERT_FALSE(auth());
    bearer = saved;
    for (int i = 0; i < 1000 && !store->key_filter_ready(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(store->key_filter_ready());
  }

  std::filesystem::path dir;
  std::string path;
  core::ManualClock clock{1'800'000'000'000'000};
  core::KeyHasher hasher;
  core::KeyCache cache;
  core::Organization org;
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<service::KeyService> svc;
  std::string key_id, bearer;
};

TEST_F(KeyCacheServiceTest, ASecondUseIsServedFromTheCache) {
  ASSERT_TRUE(auth());
  EXPECT_EQ(cache.hits(), 0u);
  auto again = auth();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, key_id);
  EXPECT_EQ(cache.hits(), 1u);
}

TEST_F(KeyCacheServiceTest, RevokingThroughTheServiceIsSeenAtOnce) {
  ASSERT_TRUE(auth());
  ASSERT_TRUE(auth());
  ASSERT_TRUE(svc->revoke(org.id, key_id, std::nullopt, "127.0.0.1"));
  auto r = auth();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::Errc::invalid_api_key);
}

TEST_F(KeyCacheServiceTest, RevokingFromAnotherProcessIsSeenAtOnce) {
  ASSERT_TRUE(auth());
  ASSERT_TRUE(auth());
  ASSERT_EQ(cache.hits(), 1u);
  // Another store on the same file, as the CLI's `keys revoke` opens: its own
  // mapping of the key signal, its own connections.
  {
    store::SqliteStore cli(path);
    ASSERT_TRUE(cli.revoke_key("", key_id, clock.now_s(), nullptr));
  }
  auto r = auth();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::Errc::invalid_api_key);
}

TEST_F(KeyCacheServiceTest, RevokingWithPlainSqlIsSeenWithinTheRecheckBound) {
  ASSERT_TRUE(auth());
  ASSERT_TRUE(auth());
  // An operator's connection: the epoch rises, the key signal does not.
  exec_elsewhere("UPDATE api_keys SET revoked_at = 1 WHERE id = '" + key_id + "'");
  wait_for_recheck();
  EXPECT_FALSE(auth());
}

// Unknown keys are answered from a filter of every stored key's hash
// (core/key_filter.hpp), kept current as the key epoch is.
TEST_F(KeyCacheServiceTest, AKeyIssuedByAnotherProcessWorksAtOnce) {
  build_key_filter();
  auto issued = issue_elsewhere("issued by the CLI");
  ASSERT_TRUE(issued) << issued.error().message;
  bearer = "Bearer " + issued->secret;
  auto k = auth();
  ASSERT_TRUE(k);
  EXPECT_EQ(k->id, issued->key.id);
}

// The race the multinode suite met once in 1,000 trials: a request whose
// snapshot began before another process issued a key, but which looked at
// the change signal after that process raised it, refreshes the filter of
// key hashes in its old snapshot (without the key). The filter must then
// not count as current for the new signal, or the next request, whose
// snapshot holds the key, is refused the key as unknown.
TEST_F(KeyCacheServiceTest, AFilterRefreshedInAnOldSnapshotIsNotTakenAsCurrent) {
  build_key_filter();
  core::Result<service::IssuedKey> issued = make_error(core::Errc::internal, "not yet");
  {
    auto older = store->read_scope();
    ASSERT_TRUE(store->get_org(org.id));  // the older request's snapshot begins
    issued = issue_elsewhere("issued during an older request");  // committed, signal raised
    ASSERT_TRUE(issued) << issued.error().message;
    // In the old snapshot the key does not exist yet: refused, and the
    // filter refreshed there.
    bearer = "Bearer " + issued->secret;
    EXPECT_FALSE(svc->authenticate(bearer));
  }
  auto k = auth();  // a new request, within the 100 ms recheck bound
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(k->id, issued->key.id);
}

TEST_F(KeyCacheServiceTest, KeysAddedWithPlainSqlAreFoundEvenOnAReusedRowid) {
  auto insert_copy = [&](const std::string& id, const std::string& secret) {
    std::string hex;
    for (unsigned char b : hasher.hash(secret)) {
      static const char* d = "0123456789ABCDEF";
      hex += d[b >> 4];
      hex += d[b & 15];
    }
    exec_elsewhere("INSERT INTO api_keys(id, org_id, name, hint, secret_hash, scopes, "
                   "rate_limit_per_minute, created_at) SELECT '" + id + "', org_id, name, hint, "
                   "X'" + hex + "', scopes, rate_limit_per_minute, created_at FROM api_keys "
                   "WHERE id = '" + key_id + "'");
  };
  const std::string first = core::generate_key_secret(), second = core::generate_key_secret();
  build_key_filter();
  bearer = "Bearer " + first;
  ASSERT_FALSE(auth()) << "not stored yet";
  insert_copy("key_sql_first", first);
  wait_for_recheck();
  ASSERT_TRUE(auth());
  // The newest row deleted, the next insert takes its rowid again: the
  // filter is built again (migration 7) rather than reading past it.
  exec_elsewhere("DELETE FROM api_keys WHERE id = 'key_sql_first'");
  insert_copy("key_sql_second", second);
  wait_for_recheck();
  bearer = "Bearer " + second;
  auto k = auth();
  ASSERT_TRUE(k);
  EXPECT_EQ(k->id, "key_sql_second");
}

TEST_F(KeyCacheServiceTest, ScopeAndLimitChangesAreSeen) {
  ASSERT_TRUE(auth());
  exec_elsewhere("UPDATE api_keys SET scopes = 'invoices:read', rate_limit_per_minute = 7 "
                 "WHERE id = '" + key_id + "'");
  wait_for_recheck();
  auto k = auth();
  ASSERT_TRUE(k);
  EXPECT_FALSE(k->scopes.has(core::Scope::leads_read));
  EXPECT_EQ(k->rate_limit_per_minute, 7u);
}

TEST_F(KeyCacheServiceTest, RotationEndsTheOldKeyAtOnceWithoutGrace) {
  ASSERT_TRUE(auth());
  auto rotated = svc->rotate(org.id, key_id, 0, std::nullopt, "127.0.0.1");
  ASSERT_TRUE(rotated);
  EXPECT_FALSE(auth());
  bearer = "Bearer " + rotated->secret;
  EXPECT_TRUE(auth());
}

TEST_F(KeyCacheServiceTest, ExpiryNeedsNoChangeToTheDatabase) {
  exec_elsewhere("UPDATE api_keys SET expires_at = " + std::to_string(clock.now_s() + 60) +
                 " WHERE id = '" + key_id + "'");
  ASSERT_TRUE(auth());
  ASSERT_TRUE(auth());
  clock.advance_us(61'000'000);
  EXPECT_FALSE(auth());
}

// Read scopes nest (the outer one owns the transaction): a scope inside a
// scope must not leave the outer transaction open when both end, or the
// connection would pin an old snapshot and the WAL could never be reset.
TEST_F(KeyCacheServiceTest, NestedReadScopesEndTheirTransaction) {
  {
    auto outer = store->read_scope();
    ASSERT_TRUE(store->get_key(org.id, key_id));  // the outer scope's BEGIN runs here
    {
      auto inner = store->read_scope();
      ASSERT_TRUE(store->get_key(org.id, key_id));
    }
    ASSERT_TRUE(store->get_key(org.id, key_id));
  }
  // A write from another connection, then a read here: a snapshot left open
  // would not see it.
  exec_elsewhere("UPDATE api_keys SET name = 'renamed' WHERE id = '" + key_id + "'");
  auto k = store->get_key(org.id, key_id);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->name, "renamed");
}

TEST_F(KeyCacheServiceTest, LastUsedUpdatesDoNotEmptyTheCache) {
  ASSERT_TRUE(auth());
  const auto before = store->key_epoch();
  ASSERT_TRUE(store->touch_keys({{key_id, clock.now_s()}}));
  EXPECT_EQ(store->key_epoch(), before);
  ASSERT_TRUE(auth());
  EXPECT_EQ(cache.hits(), 1u);
}

// Not the cache, but the same setting (a SQLite file and an operator's
// connection beside the store): pruning the request log with plain SQL, as
// docs/operations.md says, prunes its per-key index too (migration 6), both
// for rows already indexed and for rows still waiting for the index pass.
TEST_F(KeyCacheServiceTest, PruningTheRequestLogPrunesItsIndex) {
  auto entry = [&](int64_t at, std::string id) {
    core::RequestLogEntry e;
    e.request_id = std::move(id);
    e.org_id = org.id;
    e.key_id = key_id;
    e.method = "GET";
    e.path = "/v1/leads";
    e.status = 200;
    e.created_at = at;
    return e;
  };
  ASSERT_TRUE(store->append_requests({entry(100, "req_1"), entry(200, "req_2")}).ok());  // indexed
  ASSERT_TRUE(store->append_requests({entry(300, "req_3"), entry(400, "req_4")}).ok());  // not yet
  exec_elsewhere("DELETE FROM request_log WHERE created_at < 150 OR created_at = 300");
  core::ListQuery q;
  q.limit = 1;
  std::vector<std::string> seen;
  for (int pages = 0; pages < 5; ++pages) {
    auto page = store->list_requests(org.id, key_id, q);
    ASSERT_TRUE(page);
    for (const auto& e : page->items) seen.push_back(e.request_id);
    if (!page->has_more) break;
    q.after_created_at = page->items.back().created_at;
    q.after_id = page->items.back().request_id;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"req_4", "req_2"}));
  auto hours = store->hourly_counts(org.id, key_id, 0);
  ASSERT_TRUE(hours);
  EXPECT_EQ(*hours, (std::vector<std::pair<int64_t, int64_t>>{{0, 2}}));
}

// guess(): the cached key of a token, at whatever epoch, while it is active
// now; nothing for a key never found, an expired one, or without a cache.
// Only a guess: after a revocation it still names the key (the request's
// authentication at the read epochs then refuses it).
TEST_F(KeyCacheServiceTest, GuessNamesTheCachedActiveKeyOnly) {
  const std::string token = bearer.substr(7);
  auto guess = [&](const std::string& t) { return svc->guess(svc->hash(t)); };
  EXPECT_EQ(svc->hash(token), hasher.hash(token));
  EXPECT_FALSE(guess(token));  // never found yet
  ASSERT_TRUE(auth());
  auto g = guess(token);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->id, key_id);
  EXPECT_FALSE(guess(core::generate_key_secret()));
  // Revoked elsewhere: the guess is stale until a read at the new epoch...
  {
    store::SqliteStore cli(path);
    ASSERT_TRUE(cli.revoke_key("", key_id, clock.now_s(), nullptr));
  }
  ASSERT_TRUE(guess(token));
  EXPECT_FALSE(auth());  // ...which refuses the key and forgets it.
  EXPECT_FALSE(guess(token));
  // An expired key is no guess; nor is anything without a cache.
  auto other = issue_elsewhere("expiring");
  ASSERT_TRUE(other);
  exec_elsewhere("UPDATE api_keys SET expires_at = " + std::to_string(clock.now_s() + 60) +
                 " WHERE id = '" + other->key.id + "'");
  bearer = "Bearer " + other->secret;
  ASSERT_TRUE(auth());
  ASSERT_TRUE(guess(other->secret));
  clock.advance_us(61'000'000);
  EXPECT_FALSE(guess(other->secret));
  service::KeyService uncached(*store, hasher, clock);
  EXPECT_FALSE(uncached.guess(hasher.hash(token)));
}
