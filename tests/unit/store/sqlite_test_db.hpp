#pragma once
// SQLite databases for the tests of the in-process caches (the key cache,
// the document cache): a folder of its own per test, a write made the way an
// operator makes it (plain SQL on a connection of its own, no store), and the
// wait after which a running store has seen such a write.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "store/sqlite/sqlite_store.hpp"

namespace dvs::sqlitetest {

// A new, empty folder named after this process and the running test.
inline std::filesystem::path fresh_test_dir(const std::string& prefix) {
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs `sql` on the database at `path` outside any store: the epochs rise
// (their triggers), the change signal does not.
inline void exec_elsewhere(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

// Past the bound within which a plain-SQL change is seen.
inline void wait_for_recheck() {
  std::this_thread::sleep_for(std::chrono::milliseconds(store::SqliteStore::kEpochRecheckMs + 20));
}

}  // namespace dvs::sqlitetest
