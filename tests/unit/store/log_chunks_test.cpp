// The request log's per-key index in chunks (store/log_chunks.hpp): how a
// key's rows are split and encoded, and, on a real SQLite database, that the
// index a restart catches up, pruning and the hourly counts agree.
#include "store/log_chunks.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/ids.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace dvs;
using store::LoggedRow;

namespace {

std::vector<LoggedRow> decoded(const store::LogChunk& c) {
  std::vector<LoggedRow> out;
  EXPECT_TRUE(store::decode_entries(c.entries, c.min_created_at, out));
  return out;
}

// The integer columns of the one row `sql` returns, read by a connection of
// its own.
std::vector<int64_t> ints(const std::string& path, const char* sql) {
  std::vector<int64_t> out;
  sqlite3* db = nullptr;
  sqlite3_stmt* q = nullptr;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &q, nullptr) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    for (int i = 0; i < sqlite3_column_count(q); ++i) out.push_back(sqlite3_column_int64(q, i));
  sqlite3_finalize(q);
  sqlite3_close(db);
  return out;
}

bool exec_on(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  const bool ok = sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
                  sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  return ok;
}

}  // namespace

TEST(LogChunks, RowsRoundTripThroughTheBlob) {
  const std::vector<LoggedRow> rows{{5, 100}, {6, 159}, {900'000'000'000, 130}, {900'000'000'001, 100}};
  std::vector<store::LogChunk> chunks;
  store::chunk_rows(rows, chunks);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].first_seq, 5);
  EXPECT_EQ(chunks[0].last_seq, 900'000'000'001);
  EXPECT_EQ(chunks[0].min_created_at, 100);
  EXPECT_EQ(chunks[0].max_created_at, 159);
  EXPECT_EQ(chunks[0].rows, 4);
  EXPECT_EQ(decoded(chunks[0]), rows);
}

TEST(LogChunks, AChunkHoldsAtMost256RowsAnd59Seconds) {
  std::vector<LoggedRow> rows;
  for (int64_t i = 1; i <= 600; ++i) rows.push_back({i, 1000});  // one second
  rows.push_back({601, 1059});                                    // still within 59 s
  rows.push_back({602, 1000});
  rows.push_back({603, 1060});  // 60 s after the chunk's oldest: a new chunk
  rows.push_back({604, 1001});  // 59 s before it: the same chunk
  std::vector<store::LogChunk> chunks;
  store::chunk_rows(rows, chunks);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[0].rows, 256);
  EXPECT_EQ(chunks[1].rows, 256);
  EXPECT_EQ(chunks[2].first_seq, 513);
  EXPECT_EQ(chunks[2].last_seq, 602);
  EXPECT_EQ(chunks[3].first_seq, 603);
  EXPECT_EQ(chunks[3].min_created_at, 1001);
  EXPECT_EQ(chunks[3].max_created_at, 1060);
  std::vector<LoggedRow> all;
  for (const auto& c : chunks) {
    EXPECT_LE(c.max_created_at - c.min_created_at, store::kMaxSpanSeconds);
    for (const auto& r : decoded(c)) all.push_back(r);
  }
  EXPECT_EQ(all, rows);
}

TEST(LogChunks, AMalformedBlobIsRefused) {
  std::vector<LoggedRow> out;
  EXPECT_FALSE(store::decode_entries(std::string("\x85", 1), 0, out));      // a varint cut short
  EXPECT_FALSE(store::decode_entries(std::string("\x01", 1), 0, out));      // a seq without a time
  EXPECT_FALSE(store::decode_entries(std::string("\x01\x3c", 2), 0, out));  // 60 s: wider than a chunk
  EXPECT_FALSE(store::decode_entries(std::string(11, '\xff'), 0, out));      // over ten bytes
  out.clear();
  EXPECT_TRUE(store::decode_entries({}, 0, out));
  EXPECT_TRUE(out.empty());
}

// A database whose index is behind (the server was killed between a batch
// and its pass; or every row after migration 10) is caught up when the store
// is opened; pruning rows by time or one by one keeps the list and the hourly
// counts exact, in chunks that lose some rows, all, or none; and rows logged
// after the whole log was deleted are listed.
TEST(LogChunksSqlite, CaughtUpOnOpenAndExactAfterPruning) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("dvs-chunks-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "log.db").string();
  const std::string org = "org_chunks", key = "key_chunks";
  auto entry = [&](int64_t at, int i) {
    core::RequestLogEntry e;
    char id[16];
    std::snprintf(id, sizeof id, "req_%04d", i);
    e.request_id = id;
    e.org_id = org;
    e.key_id = key;
    e.method = "GET";
    e.path = "/v1/leads";
    e.status = 200;
    e.created_at = at;
    return e;
  };
  {
    store::SqliteStore s(path);
    ASSERT_TRUE(s.migrate());
    core::Organization o;
    o.id = org;
    o.name = "Chunks";
    ASSERT_TRUE(s.create_org(o).ok());
    core::ApiKey k;
    k.id = key;
    k.org_id = org;
    k.name = "k";
    k.hint = "dvs_live_abcd";
    k.secret_hash.fill(9);
    ASSERT_TRUE(s.insert_key(k, nullptr).ok());
    std::vector<core::RequestLogEntry> batch;
    // 1,200 rows, one every 6 s from 7,000 s: 10 rows a chunk at most, the
    // hour 7,200 falling inside a chunk.
    for (int i = 0; i < 1200; ++i) batch.push_back(entry(7000 + i * 6, i));
    ASSERT_TRUE(s.append_requests({entry(6000, 9999)}).ok());  // the first pass runs now
    ASSERT_TRUE(s.append_requests(batch).ok());                // the next not yet
  }
  // Only the first row indexed.
  EXPECT_EQ(ints(path,
                 "SELECT (SELECT seq FROM request_log_indexed), (SELECT max(seq) FROM request_log), "
                 "(SELECT count(*) FROM request_log_key_chunks)"),
            (std::vector<int64_t>{1, 1201, 1}));
  store::SqliteStore s(path);
  ASSERT_TRUE(s.migrate());  // catches the index up
  const auto caught_up = ints(path,
                              "SELECT (SELECT seq FROM request_log_indexed), (SELECT sum(row_count) "
                              "FROM request_log_key_chunks), (SELECT max(max_created_at - "
                              "min_created_at) FROM request_log_key_chunks)");
  ASSERT_EQ(caught_up.size(), 3u);
  EXPECT_EQ(caught_up[0], 1201);
  EXPECT_EQ(caught_up[1], 1201);
  EXPECT_LE(caught_up[2], store::kMaxSpanSeconds);
  // Pruned: everything before 7,100 (the row at 6,000 and 17 more), and
  // every third row from 7,180 to 7,300 one by one.
  ASSERT_TRUE(exec_on(path,
                      "DELETE FROM request_log WHERE created_at < 7100;"
                      "DELETE FROM request_log WHERE created_at BETWEEN 7180 AND 7300 "
                      "AND created_at % 18 = 0"));
  std::vector<int64_t> kept;
  for (int i = 0; i < 1200; ++i) {
    const int64_t at = 7000 + i * 6;
    if (at < 7100 || (at >= 7180 && at <= 7300 && at % 18 == 0)) continue;
    kept.push_back(at);
  }
  std::vector<int64_t> seen;
  core::ListQuery q;
  q.limit = 25;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = s.list_requests(org, key, q);
    ASSERT_TRUE(page) << page.error().message;
    for (const auto& e : page->items) seen.push_back(e.created_at);
    if (!page->has_more) break;
    q.after_created_at = page->items.back().created_at;
    q.after_id = page->items.back().request_id;
  }
  EXPECT_EQ(seen, std::vector<int64_t>(kept.rbegin(), kept.rend()));
  std::map<int64_t, int64_t> want;
  for (auto at : kept) ++want[at / 3600 * 3600];
  auto hours = s.hourly_counts(org, key, 0);
  ASSERT_TRUE(hours);
  EXPECT_EQ(*hours, (std::vector<std::pair<int64_t, int64_t>>(want.begin(), want.end())));

  // A chunk whose blob is damaged (a corrupted file, a hand edit) is an
  // error the caller maps to a 500, not a crash or a wrong page.
  ASSERT_TRUE(exec_on(path, "UPDATE request_log_key_chunks SET entries = X'85' "
                            "WHERE last_seq = (SELECT max(last_seq) FROM request_log_key_chunks)"));
  auto damaged = s.list_requests(org, key, core::ListQuery{});
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, core::Errc::internal);
  EXPECT_FALSE(s.hourly_counts(org, key, 14150));  // `since` inside that chunk: read row by row

  // The whole log deleted by hand: new rows are numbered past what the
  // index has passed, and listed, indexed or not.
  ASSERT_TRUE(exec_on(path, "DELETE FROM request_log"));
  ASSERT_TRUE(s.append_requests({entry(9000, 1), entry(9001, 2)}).ok());
  auto fresh = s.list_requests(org, key, core::ListQuery{});
  ASSERT_TRUE(fresh);
  ASSERT_EQ(fresh->items.size(), 2u);
  EXPECT_EQ(fresh->items[0].request_id, "req_0002");
  EXPECT_EQ(fresh->items[1].request_id, "req_0001");
  store::SqliteStore reopened(path);
  ASSERT_TRUE(reopened.migrate());  // indexes them
  auto indexed = reopened.list_requests(org, key, core::ListQuery{});
  ASSERT_TRUE(indexed);
  EXPECT_EQ(indexed->items.size(), 2u);
  EXPECT_EQ(*reopened.hourly_counts(org, key, 0), (std::vector<std::pair<int64_t, int64_t>>{{7200, 2}}));
  std::filesystem::remove_all(dir);
}
