// RequestLogWriter on a real SQLite store: a burst larger than a chunk is
// written whole, in order; the queue's bound drops what is beyond it and
// counts it; stop() drains what is queued; entries from several threads
// (each on a shard of the queue) are all written once.
#include "store/request_log_writer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "core/ids.hpp"
#include "sqlite_test_db.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace dvs;

class RequestLogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = sqlitetest::fresh_test_dir("dvs-logwriter-test-");
    store = std::make_unique<store::SqliteStore>((dir / "t.db").string());
    ASSERT_TRUE(store->migrate());
    org = core::new_id("org");
    ASSERT_TRUE(store->create_org(core::Organization{org, "A", 1}).ok());
    core::ApiKey k;
    k.id = "key_w";
    k.org_id = org;
    k.name = "w";
    k.hint = "dvs_live_w";
    k.secret_hash.fill(1);
    k.created_at = 1;
    ASSERT_TRUE(store->insert_key(k, nullptr).ok());
  }
  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  core::RequestLogEntry entry(int i) const {
    core::RequestLogEntry e;
    e.request_id = "req_" + std::to_string(100000 + i);
    e.org_id = org;
    e.key_id = "key_w";
    e.method = "GET";
    e.path = "/v1/leads";
    e.status = 200;
    e.created_at = 7200 + i / 1000;  // all in the same two hours
    return e;
  }
  int64_t stored() {
    auto hours = store->hourly_counts(org, "key_w", 0);
    EXPECT_TRUE(hours);
    int64_t n = 0;
    for (const auto& [hour, count] : *hours) n += count;
    return n;
  }
  std::filesystem::path dir;
  std::unique_ptr<store::SqliteStore> store;
  std::string org;
};

TEST_F(RequestLogWriterTest, ABurstOfSeveralChunksIsWrittenWhole) {
  store::RequestLogWriter w(*store, {});
  // Queued before the thread runs: one batch of three chunks (4096 each).
  for (int i = 0; i < 10'000; ++i) w.submit(entry(i));
  EXPECT_EQ(w.queued(), 10'000u);
  w.start();
  w.stop();
  EXPECT_EQ(w.written(), 10'000u);
  EXPECT_EQ(w.dropped(), 0u);
  EXPECT_EQ(w.queued(), 0u);
  EXPECT_EQ(stored(), 10'000);
  // Newest first, across chunk boundaries.
  core::ListQuery q;
  q.limit = 3;
  auto page = store->list_requests(org, "key_w", q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_EQ(page->items[0].request_id, "req_109999");
  EXPECT_EQ(page->items[2].request_id, "req_109997");
}

TEST_F(RequestLogWriterTest, BeyondTheBoundEntriesAreDroppedAndCounted) {
  store::RequestLogWriter::Options opts;
  opts.max_queue = 5'000;
  store::RequestLogWriter w(*store, opts);
  for (int i = 0; i < 6'000; ++i) w.submit(entry(i));
  EXPECT_EQ(w.queued(), 5'000u);
  EXPECT_EQ(w.dropped(), 1'000u);
  w.start();
  w.stop();
  EXPECT_EQ(w.written(), 5'000u);
  EXPECT_EQ(stored(), 5'000);
}

// Each submitting thread queues into a shard of its own: entries from four
// threads submitting while the writer runs are all written, none twice, and
// the writer (which now works out last_used_at from the entries) raises the
// key's last use to the minute of its first request.
TEST_F(RequestLogWriterTest, EntriesFromManyThreadsAreAllWrittenOnce) {
  store::RequestLogWriter::Options opts;
  opts.flush_interval_ms = 5;
  store::RequestLogWriter w(*store, opts);
  w.start();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3'000; ++i) w.submit(entry(t * 3'000 + i));
    });
  for (auto& th : threads) th.join();
  w.stop();
  EXPECT_EQ(w.written(), 12'000u);
  EXPECT_EQ(w.dropped(), 0u);
  EXPECT_EQ(w.queued(), 0u);
  EXPECT_EQ(stored(), 12'000);
  std::set<std::string> ids;
  core::ListQuery q;
  q.limit = 100;
  for (int pages = 0; pages < 200; ++pages) {
    auto page = store->list_requests(org, "key_w", q);
    ASSERT_TRUE(page);
    for (const auto& e : page->items) EXPECT_TRUE(ids.insert(e.request_id).second) << e.request_id;
    if (!page->has_more) break;
    q.after_created_at = page->items.back().created_at;
    q.after_id = page->items.back().request_id;
  }
  EXPECT_EQ(ids.size(), 12'000u);
  auto key = store->get_key(org, "key_w");
  ASSERT_TRUE(key);
  ASSERT_TRUE(key->last_used_at);
  EXPECT_EQ(*key->last_used_at / 60, 7200 / 60);
}
