// PostgresStore behaviour that has no SQLite counterpart: start-up errors,
// the connection pool, recovery after lost connections, concurrent
// migrations. The shared contract is in store_contract_test.cpp.

#include "store/postgres/migrations.hpp"
#include "store/postgres/postgres_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
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
