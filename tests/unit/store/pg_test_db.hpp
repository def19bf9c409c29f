#pragma once
// Throwaway PostgreSQL databases for the store tests, on the server named by
// DVS_TEST_PG_URL (scripts/pg-test-server.sh start DIR prints one). Each test
// gets a database of its own, so tests can run in parallel (ctest -j) and
// never see each other's rows.

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dvs::pgtest {

// The server's URL, or "" when PostgreSQL tests are not wanted.
inline std::string pg_test_url() {
  const char* u = std::getenv("DVS_TEST_PG_URL");
  return u ? std::string(u) : std::string();
}

inline constexpr const char* kPgSkipMessage =
    "DVS_TEST_PG_URL is not set: PostgreSQL store tests skipped (run "
    "DVS_TEST_PG_URL=$(scripts/pg-test-server.sh start DIR) ctest ...)";

// `url` with its database name replaced by `db`.
inline std::string pg_url_with_database(const std::string& url, const std::string& db) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t query = url.find('?', start);
  size_t at = url.rfind('@', query);
  size_t slash = url.find('/', at == std::string::npos || at < start ? start : at);
  if (slash == std::string::npos || (query != std::string::npos && slash > query))
    return url.substr(0, query) + "/" + db + (query == std::string::npos ? "" : url.substr(query));
  size_t end = query == std::string::npos ? url.size() : query;
  return url.substr(0, slash + 1) + db + url.substr(end);
}

// A connection to the test server's own database, for set-up statements.
class PgAdmin {
 public:
  explicit PgAdmin(const std::string& url) : pg_(PQconnectdb(url.c_str())) {
    if (PQstatus(pg_) != CONNECTION_OK)
      throw std::runtime_error(std::string("test server: ") + PQerrorMessage(pg_));
    PQsetNoticeProcessor(
        pg_, [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  }
  ~PgAdmin() { PQfinish(pg_); }
  PgAdmin(const PgAdmin&) = delete;
  PgAdmin& operator=(const PgAdmin&) = delete;
  // Runs `sql`; throws with the server's message when it fails.
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(pg_, sql.c_str());
    auto st = PQresultStatus(r);
    std::string first = (st == PGRES_TUPLES_OK && PQntuples(r) > 0) ? PQgetvalue(r, 0, 0) : "";
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error("test server: " + sql + ": " + err);
    return first;  // the first row's first column, if any
  }

 private:
  PGconn* pg_;
};

// A fresh, empty database; dropped (connections and all) with the object.
class TempPgDatabase {
 public:
  explicit TempPgDatabase(const std::string& server_url) : admin_(server_url) {
    static std::atomic<int> n{0};
    name_ = "dvs_t_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
    admin_.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    admin_.exec("CREATE DATABASE " + name_);
    url_ = pg_url_with_database(server_url, name_);
  }
  ~TempPgDatabase() {
    try {
      admin_.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }
  PgAdmin& admin() { return admin_; }

  // Ends every session on this database (as a server restart would) and
  // waits until they are gone.
  void terminate_connections() {
    admin_.exec(
        "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE datname = '" +
        name_ + "' AND pid <> pg_backend_pid()");
  }

 private:
  PgAdmin admin_;
  std::string name_, url_;
};

}  // namespace dvs::pgtest
