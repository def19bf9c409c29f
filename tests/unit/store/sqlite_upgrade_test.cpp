// Upgrading a SQLite database that is in use: one at schema version 5 (before
// the request log's per-key index table, migration 6, and the key-hash
// counter, migration 7; the index rebuilt in ascending order by migration
// 9), built from the real migration texts and filled
// with keys and logged requests, is migrated by the current store and then
// serves the same data: every logged request paged per key, the hourly
// counts, and keys found (or refused) through the unknown-key filter.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "core/api_key.hpp"
#include "core/key_cache.hpp"
#include "service/key_service.hpp"
#include "store/migrations.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace dvs;

namespace {

void exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err ? err : "?") << "\n" << sql.substr(0, 200);
}

std::string hex(const core::KeyHash& h) {
  static const char* d = "0123456789ABCDEF";
  std::string s;
  for (unsigned char b : h) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

}  // namespace

TEST(SqliteUpgrade, AVersion5DatabaseWithKeysAndALogIsMigratedWhole) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("dvs-upgrade-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "v5.db").string();
  core::KeyHasher hasher;
  const std::string secret_a = core::generate_key_secret(), secret_b = core::generate_key_secret();
  constexpr int kRows = 1500;  // over several pages of the log and of its index
  constexpr int64_t kT0 = 1'800'000'000;

  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
             "applied_at INTEGER NOT NULL)");
    for (const auto& m : store::sqlite_migrations()) {
      if (m.version > 5) continue;
      exec(db, std::string(m.sql));
      exec(db, "INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) + ", '" +
                   std::string(m.name) + "', 0)");
    }
    exec(db, "INSERT INTO organizations(id, name, created_at) VALUES ('org_up', 'Up', 0)");
    int n = 0;
    for (const auto& [id, secret] : {std::pair{"key_a", secret_a}, std::pair{"key_b", secret_b}})
      exec(db, std::string("INSERT INTO api_keys(id, org_id, name, hint, secret_hash, scopes, "
                           "rate_limit_per_minute, created_at) VALUES ('") +
                   id + "', 'org_up', 'k" + std::to_string(n++) + "', 'dvs_live_x', X'" +
                   hex(hasher.hash(secret)) + "', 'leads:read', 120, 0)");
    exec(db, "BEGIN");
    for (int i = 0; i < kRows; ++i) {
      // Two keys interleaved; several requests a second, so ties on
      // created_at are ordered by request id.
      const std::string key = i % 3 == 0 ? "key_b" : "key_a";
      char rid[32];
      std::snprintf(rid, sizeof rid, "req_%06d", i);
      exec(db, "INSERT INTO request_log(request_id, org_id, key_id, method, path, status, "
               "latency_us, client_ip, user_agent, created_at) VALUES ('" +
                   std::string(rid) + "', 'org_up', '" + key + "', 'GET', '/v1/leads', 200, 1, "
                   "'127.0.0.1', 'ua', " + std::to_string(kT0 + i / 4) + ")");
    }
    exec(db, "COMMIT");
    sqlite3_close(db);
  }

  {
    store::SqliteStore s(path);
    auto applied = s.migrate();
    ASSERT_TRUE(applied) << applied.error().message;
    EXPECT_EQ(*applied, static_cast<int>(store::sqlite_migrations().size()) - 5);

    // Every request of key_a, newest first, ties by id descending, no gap.
    std::vector<std::string> seen;
    core::ListQuery q;
    q.limit = 100;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = s.list_requests("org_up", "key_a", q);
      ASSERT_TRUE(page) << page.error().message;
      for (const auto& e : page->items) seen.push_back(e.request_id);
      if (!page->has_more) break;
      q.after_created_at = page->items.back().created_at;
      q.after_id = page->items.back().request_id;
    }
    std::vector<std::string> expected;
    for (int i = kRows - 1; i >= 0; --i)
      if (i % 3 != 0) {
        char rid[32];
        std::snprintf(rid, sizeof rid, "req_%06d", i);
        expected.push_back(rid);
      }
    EXPECT_EQ(seen, expected);
    auto hours = s.hourly_counts("org_up", "key_b", 0);
    ASSERT_TRUE(hours);
    int64_t total = 0;
    for (const auto& [hour, count] : *hours) total += count;
    EXPECT_EQ(total, kRows / 3);

    // Keys written before migration 7 are in the filter built from the table.
    core::ManualClock clock{kT0 * 1'000'000};
    core::KeyCache cache;
    service::KeyService keys(s, hasher, clock);
    keys.use_cache(&cache);
    auto auth = [&](const std::string& secret) {
      auto snapshot = s.read_scope();
      return keys.authenticate("Bearer " + secret);
    };
    EXPECT_FALSE(auth(core::generate_key_secret()));  // starts the filter's build
    for (int i = 0; i < 1000 && !s.key_filter_ready(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(s.key_filter_ready());
    auto a = auth(secret_a);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->id, "key_a");
    auto b = auth(secret_b);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->id, "key_b");
    EXPECT_FALSE(auth(core::generate_key_secret()));
  }
  std::filesystem::remove_all(dir);
}
