#include "store/sqlite/sqlite_store.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "core/render.hpp"
#include "store/log_chunks.hpp"
#include "store/migrations.hpp"
#include "store/sqlite/change_signal.hpp"

namespace dvs::store {

namespace {
constexpr int kBusyTimeoutMs = 5000;  // how long a writer waits for another
}  // namespace

using core::Errc;
using core::make_error;

// Lets an unordered_map keyed by std::string be searched with a string_view
// (the prepared statements by SQL text, the index pass's rows by key id).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
};

namespace {

std::atomic<uint64_t> g_next_instance{1};

int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Failures of the storage under the database rather than of a statement or
// the data: a full disk (SQLITE_FULL), a read-only file, folder or file system
// (SQLITE_READONLY_*, SQLITE_PERM, SQLITE_CANTOPEN), I/O errors (SQLITE_IOERR_*,
// including EROFS and ENOSPC reported by write, fsync or the -shm mapping).
// They pass when the operator frees space or remounts, so callers get
// unavailable (503), never internal.
bool is_storage_error(int base) {
  return base == SQLITE_FULL || base == SQLITE_READONLY || base == SQLITE_IOERR ||
         base == SQLITE_CANTOPEN || base == SQLITE_PERM;
}

// A full disk fails every write for as long as it lasts: one log line per
// kStorageLogEveryUs at most, with the number of failures left out, instead
// of one per request.
constexpr int64_t kStorageLogEveryUs = 60'000'000;

core::Error db_error(sqlite3* db, int rc, const char* what) {
  int base = rc & 0xFF;
  if (base == SQLITE_CONSTRAINT) return make_error(Errc::conflict, "already exists");
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (is_storage_error(base)) {
    static std::atomic<int64_t> last_log_us{0};
    static std::atomic<uint64_t> suppressed{0};
    const int64_t now = steady_us();
    int64_t last = last_log_us.load(std::memory_order_relaxed);
    if ((last == 0 || now - last >= kStorageLogEveryUs) &&
        last_log_us.compare_exchange_strong(last, now)) {
      const uint64_t n = suppressed.exchange(0);
      spdlog::error("sqlite: {}: {} ({}){}", what, msg, rc,
                    n ? fmt::format("; {} more storage errors since the last such line", n) : "");
    } else {
      suppressed.fetch_add(1, std::memory_order_relaxed);
    }
    auto e = make_error(Errc::unavailable, "the database is unavailable");
    // Space or a writable mount comes back in minutes, not in a second.
    if (base == SQLITE_FULL || base == SQLITE_READONLY) e.retry_after_s = 30;
    return e;
  }
  spdlog::error("sqlite: {}: {} ({})", what, msg, rc);
  // Locks held too long, a WAL lock protocol race, memory: transient too.
  if (base == SQLITE_BUSY || base == SQLITE_LOCKED || base == SQLITE_PROTOCOL ||
      base == SQLITE_NOMEM)
    return make_error(Errc::unavailable, "the database is unavailable");
  return make_error(Errc::internal, "database error");
}

}  // namespace

// Whether the storage takes writes, shared by the store and its connections.
// Thread-safe (atomics).
struct SqliteStore::Health {
  std::atomic<uint64_t> failures{0};  // writes refused by the storage since start
  std::atomic<bool> failing{false};   // the last write was refused so
  std::atomic<bool> read_only_logged{false};
  // Serializes opening and closing read-only connections (see open_conn()).
  std::mutex open_mu;
  int transient_open = 0;  // read-only connections open now (under open_mu)

  // A write failed with `rc`. The first failure of a run is logged; db_error
  // logs (throttled) each one.
  void write_failed(int rc) {
    if (!is_storage_error(rc & 0xFF)) return;
    failures.fetch_add(1, std::memory_order_relaxed);
    if (!failing.exchange(true))
      spdlog::error(
          "sqlite: writes are failing ({}): the disk is full or the database is read-only; "
          "reads go on, writes answer 503 until space or write access returns",
          sqlite3_errstr(rc));
  }
  void write_succeeded() {
    if (failing.load(std::memory_order_relaxed) && failing.exchange(false)) {
      read_only_logged = false;
      spdlog::warn("sqlite: writes succeed again ({} refused since start)", failures.load());
    }
  }
};

// Process-wide SQLite settings, applied once before the first connection
// opens (sqlite3_config works only before sqlite3_initialize). Memory
// statistics off: with them on, every sqlite3_malloc and sqlite3_free takes
// one global mutex, which the worker threads and the request-log writer
// fought over on every page read (a futex system call in most requests in
// the profile of docs/performance.md). Nothing here reads those statistics.
static void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
      spdlog::warn("sqlite: could not turn memory statistics off (already initialized)");
  });
}

class SqliteStore::Conn {
 public:
  Conn(const std::string& path, std::shared_ptr<Health> health) : health_(std::move(health)) {
    configure_sqlite_once();
    int rc = sqlite3_open_v2(path.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      db_ = nullptr;
      throw std::runtime_error("cannot open SQLite database " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    // Keep the -wal and -shm files when the last connection closes (they are
    // checkpointed, so they hold nothing the database file lacks): without
    // them SQLite cannot even read a WAL database from a read-only file
    // system, and a volume that comes back read-only would serve no reads.
    int persist = 1;
    (void)sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    // WAL: readers never block the writer; NORMAL sync is durable across a
    // process crash (the WAL is fsync'ed at checkpoints). An 8 MiB page
    // cache per connection. No mmap: each connection maps the file again and
    // every mapping counts in the resident size (64 MiB mapped put 1M keys at
    // 140-240 MB against a 150 MB budget), for about 1.5 us a list request
    // once the page indexes cover the documents (docs/performance.md).
    // Temporary files on disk (SQLite's default), not in memory: the request
    // log's index pass sorts 5 s of rows, and a sort larger than the page
    // cache spills to a temporary file, which in memory put 30 MB on the
    // resident size.
    for (const char* pragma :
         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
          "PRAGMA temp_store=FILE", "PRAGMA mmap_size=0", "PRAGMA cache_size=-8192",
          "PRAGMA journal_size_limit=67108864", "PRAGMA wal_autocheckpoint=4096"}) {
      char* err = nullptr;
      if (sqlite3_exec(db_, pragma, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "?";
        sqlite3_free(err);
        sqlite3_close(db_);
        db_ = nullptr;
        throw std::runtime_error("cannot set up SQLite database " + path + ": " + msg);
      }
    }
  }
  ~Conn() {
    for (auto& [sql, s] : cache_) sqlite3_finalize(s);
    sqlite3_close(db_);
    if (transient_) {
      std::lock_guard lk(health_->open_mu);
      --health_->transient_open;
    }
  }
  // A prepared statement for `sql`, from the cache when seen before.
  // Looked up by view: a literal costs no string.
  core::Result<sqlite3_stmt*> prepare(std::string_view sql) {
    if (begin_pending_) [[unlikely]]
      begin_now();
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return db_error(db_, rc, "prepare");
    cache_.emplace(std::string(sql), s);
    return s;
  }
  core::Status exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      if (!is_storage_error(rc & 0xFF)) spdlog::error("sqlite exec: {}", err ? err : "?");
      sqlite3_free(err);
      return db_error(db_, rc, "exec");
    }
    return {};
  }
  sqlite3* db() { return db_; }

  // Outcome of a write (a statement run outside a transaction, BEGIN IMMEDIATE
  // or COMMIT): keeps the store's Health current. A write refused as
  // read-only makes the connection transient (closed after this use), so
  // that writes can resume once the file system is writable again.
  void write_failed(int rc) {
    health_->write_failed(rc);
    if ((rc & 0xFF) == SQLITE_READONLY && !transient_) {
      std::lock_guard lk(health_->open_mu);
      make_transient_locked();
    }
  }
  void write_succeeded() { health_->write_succeeded(); }

  // SQLite opens the file read-only, silently, when the file or its file
  // system is read-only: reads work, writes fail with SQLITE_READONLY.
  bool read_only() { return sqlite3_db_readonly(db_, "main") == 1; }
  // Closed when its current use ends instead of being kept for the thread.
  bool transient() const { return transient_; }
  void make_transient_locked() {
    if (transient_) return;
    transient_ = true;
    ++health_->transient_open;
  }
  // A read scope's BEGIN, run just before the first statement inside the
  // scope: a request answered without a look-up runs no statement at all.
  // Scopes nest: only the outermost begins and ends the transaction.
  void begin_lazily() {
    if (scope_depth_++ > 0) return;
    begin_pending_ = true;
    scope_began_ = false;
  }
  // The change signal's counter as loaded just before this connection's
  // read snapshot began, while one is open; nothing otherwise. What a read in
  // the snapshot returns is at least that recent, and may be older than the
  // signal now: an epoch (or the key filter) read in it must be recorded as
  // current for this value, not for a later load (another process may have
  // committed and raised the signal since the snapshot began).
  std::optional<uint64_t> snapshot_signal(ChangeSignal::Counter c) const {
    if (!scope_began_ || !signal_ || !signal_->shared()) return std::nullopt;
    return snap_[static_cast<int>(c)];
  }
  void watch(const ChangeSignal* signal) { signal_ = signal; }
  // Ends a read scope; true when it is the outermost and its BEGIN ran.
  bool end_lazily() {
    if (--scope_depth_ > 0) return false;
    begin_pending_ = false;
    return std::exchange(scope_began_, false);
  }
  // Uses of the connection in progress on its thread (nested: a read scope
  // and the calls inside it).
  int acquire() { return ++uses_; }
  int release() { return --uses_; }

 private:
  sqlite3* db_ = nullptr;
  std::shared_ptr<Health> health_;
  bool transient_ = false;
  int uses_ = 0;
  int scope_depth_ = 0;
  bool begin_pending_ = false;
  bool scope_began_ = false;
  const ChangeSignal* signal_ = nullptr;  // the store's, for snapshot_signal()
  uint64_t snap_[2] = {0, 0};
  void begin_now() {
    begin_pending_ = false;
    if (signal_ && signal_->shared()) {
      snap_[0] = signal_->load(ChangeSignal::Counter::keys);
      snap_[1] = signal_->load(ChangeSignal::Counter::documents);
    }
    auto b = prepare("BEGIN");
    if (!b) return;
    scope_began_ = sqlite3_step(*b) == SQLITE_DONE;
    sqlite3_reset(*b);
  }
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> cache_;
};

namespace {

// A cached prepared statement in use; resets it (and clears bindings) when
// it goes out of scope, so the cache can hand it out again.
class Stmt {
 public:
  Stmt(SqliteStore::Conn& c, sqlite3_stmt* s) : c_(c), db_(c.db()), s_(s) {}
  Stmt(const Stmt&) = delete;
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt& text(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Without a copy: `v` must stay as it is until the statement is reset
  // (the end of this Stmt's scope, or the next bind after a step).
  Stmt& text_static(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  // Empty strings are stored as NULL: "absent".
  Stmt& text_or_null(int i, std::string_view v) {
    if (v.empty()) sqlite3_bind_null(s_, i);
    else text(i, v);
    return *this;
  }
  Stmt& opt_text(int i, const std::optional<std::string>& v) {
    if (v) text(i, *v);
    else sqlite3_bind_null(s_, i);
    return *this;
  }
  Stmt& integer(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& opt_int(int i, const std::optional<int64_t>& v) {
    if (v) integer(i, *v);
    else sqlite3_bind_null(s_, i);
    return *this;
  }
  Stmt& blob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(s_); }
  // Runs a statement that writes and returns no rows. Outside a transaction
  // its outcome is the write's; inside one, the transaction's commit decides.
  core::Status run(const char* what) {
    int rc = step();
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
      if (sqlite3_get_autocommit(db_)) c_.write_succeeded();
      return {};
    }
    c_.write_failed(rc);
    return db_error(db_, rc, what);
  }
  // Valid until the next step or reset.
  std::string_view view(int c) const {
    auto* p = sqlite3_column_text(s_, c);
    return p ? std::string_view(reinterpret_cast<const char*>(p),
                                static_cast<size_t>(sqlite3_column_bytes(s_, c)))
             : std::string_view();
  }
  std::string str(int c) const { return std::string(view(c)); }
  std::optional<std::string> opt_str(int c) const {
    if (sqlite3_column_type(s_, c) == SQLITE_NULL) return std::nullopt;
    return str(c);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  std::optional<int64_t> opt_i64(int c) const {
    if (sqlite3_column_type(s_, c) == SQLITE_NULL) return std::nullopt;
    return i64(c);
  }
  const void* blob_ptr(int c) const { return sqlite3_column_blob(s_, c); }
  int blob_size(int c) const { return sqlite3_column_bytes(s_, c); }
  sqlite3* db() const { return db_; }

 private:
  SqliteStore::Conn& c_;
  sqlite3* db_;
  sqlite3_stmt* s_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back unless commit() succeeded.
//
// A statement that fails inside (SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY)
// may already have rolled the whole transaction back by itself, or left it
// open: the destructor rolls back only a transaction still open, so the
// connection is always back in autocommit mode, usable by the next caller.
class Tx {
 public:
  explicit Tx(SqliteStore::Conn& c) : c_(c) {
    began_ = c_.exec("BEGIN IMMEDIATE");
    if (!began_.ok()) c_.write_failed(sqlite3_extended_errcode(c_.db()));
  }
  ~Tx() {
    if (!began_.ok() || done_ || sqlite3_get_autocommit(c_.db())) return;
    if (sqlite3_exec(c_.db(), "ROLLBACK", nullptr, nullptr, nullptr) != SQLITE_OK)
      spdlog::error("sqlite: rollback failed: {}", sqlite3_errmsg(c_.db()));
  }
  const core::Status& began() const { return began_; }
  core::Status commit() {
    auto s = c_.exec("COMMIT");
    if (s.ok()) {
      done_ = true;
      c_.write_succeeded();
    } else {
      c_.write_failed(sqlite3_extended_errcode(c_.db()));
    }
    return s;
  }

 private:
  SqliteStore::Conn& c_;
  core::Status began_;
  bool done_ = false;
};

#define DVS_PREPARE(var, conn, sql)            \
  auto var##_p = (conn).prepare(sql);          \
  if (!var##_p) return var##_p.error();        \
  Stmt var((conn), *var##_p)

#define DVS_TRY(expr)                  \
  do {                                 \
    auto _st = (expr);                 \
    if (!_st.ok()) return _st.error(); \
  } while (0)

constexpr const char* kKeyColumns =
    "k.id, k.org_id, k.name, k.hint, k.secret_hash, k.scopes, k.rate_limit_per_minute, "
    "k.created_at, k.created_by, u.email, k.expires_at, k.last_used_at, k.revoked_at, "
    "k.replaced_by FROM api_keys k LEFT JOIN users u ON u.id = k.created_by ";
// The same columns without the creator's e-mail (NULL): no join on the hot path.
constexpr const char* kKeyColumnsNoEmail =
    "k.id, k.org_id, k.name, k.hint, k.secret_hash, k.scopes, k.rate_limit_per_minute, "
    "k.created_at, k.created_by, NULL, k.expires_at, k.last_used_at, k.revoked_at, "
    "k.replaced_by FROM api_keys k ";

core::ApiKey read_key(const Stmt& s) {
  core::ApiKey k;
  k.id = s.str(0);
  k.org_id = s.str(1);
  k.name = s.str(2);
  k.hint = s.str(3);
  if (s.blob_size(4) == static_cast<int>(k.secret_hash.size()))
    std::memcpy(k.secret_hash.data(), s.blob_ptr(4), k.secret_hash.size());
  k.scopes = core::ScopeSet::from_string(s.str(5));
  k.rate_limit_per_minute = static_cast<uint32_t>(s.i64(6));
  k.created_at = s.i64(7);
  k.created_by_id = s.opt_str(8);
  k.created_by_email = s.opt_str(9);
  k.expires_at = s.opt_i64(10);
  k.last_used_at = s.opt_i64(11);
  k.revoked_at = s.opt_i64(12);
  k.replaced_by = s.opt_str(13);
  return k;
}

constexpr const char* kLeadColumns =
    "id, org_id, name, email, phone, company, status, source, value_cents, currency, "
    "created_at, updated_at FROM leads ";

core::Lead read_lead(const Stmt& s) {
  core::Lead l;
  l.id = s.str(0);
  l.org_id = s.str(1);
  l.name = s.str(2);
  l.email = s.str(3);
  l.phone = s.str(4);
  l.company = s.str(5);
  l.status = s.str(6);
  l.source = s.str(7);
  l.value_cents = s.i64(8);
  l.currency = s.str(9);
  l.created_at = s.i64(10);
  l.updated_at = s.i64(11);
  return l;
}

constexpr const char* kInvoiceColumns =
    "id, org_id, number, customer_name, customer_email, lead_id, status, currency, "
    "subtotal_cents, tax_cents, total_cents, amount_paid_cents, issued_at, due_at, paid_at, "
    "line_items, created_at, updated_at FROM invoices ";

core::Invoice read_invoice(const Stmt& s) {
  core::Invoice v;
  v.id = s.str(0);
  v.org_id = s.str(1);
  v.number = s.str(2);
  v.customer_name = s.str(3);
  v.customer_email = s.str(4);
  v.lead_id = s.opt_str(5);
  v.status = s.str(6);
  v.currency = s.str(7);
  v.subtotal_cents = s.i64(8);
  v.tax_cents = s.i64(9);
  v.total_cents = s.i64(10);
  v.amount_paid_cents = s.i64(11);
  v.issued_at = s.i64(12);
  v.due_at = s.i64(13);
  v.paid_at = s.opt_i64(14);
  v.line_items_json = s.str(15);
  v.created_at = s.i64(16);
  v.updated_at = s.i64(17);
  return v;
}

// WHERE clause of a keyset page: org first (always), then the optional
// filters, then the cursor position. Parameters are numbered from 1 in the
// order bind_page() binds them.
// `t` qualifies column names ("" or "a.").
// Built once per call site for each combination of filters (8 shapes), so
// that a page costs no SQL string and no statement-cache key of its own.
class PageSql {
 public:
  PageSql(const char* columns, const char* table_where, const std::string& t,
          const char* id_col) {
    for (int shape = 0; shape < 8; ++shape) {
      std::string& sql = sql_[static_cast<size_t>(shape)];
      sql = "SELECT ";
      sql += columns;
      sql += table_where;
      if (shape & 1) sql += " AND " + t + "status = ?";
      if (shape & 2) sql += " AND " + t + "updated_at >= ?";
      if (shape & 4) sql += " AND (" + t + "created_at, " + t + id_col + ") < (?, ?)";
      sql += " ORDER BY " + t + "created_at DESC, " + t + id_col + " DESC LIMIT ?";
    }
  }
  const std::string& operator()(const core::ListQuery& q) const {
    const int shape =
        (q.status.empty() ? 0 : 1) | (q.updated_since ? 2 : 0) | (q.after_created_at ? 4 : 0);
    return sql_[static_cast<size_t>(shape)];
  }

 private:
  std::array<std::string, 8> sql_;
};

int bind_page(Stmt& s, int i, const core::ListQuery& q) {
  if (!q.status.empty()) s.text(i++, q.status);
  if (q.updated_since) s.integer(i++, *q.updated_since);
  if (q.after_created_at) {
    s.integer(i++, *q.after_created_at);
    s.text(i++, q.after_id);
  }
  s.integer(i++, q.limit + 1);
  return i;
}

template <typename T, typename Reader>
core::Result<core::Page<T>> read_page(Stmt& s, const core::ListQuery& q, Reader read) {
  core::Page<T> page;
  page.items.reserve(static_cast<size_t>(q.limit));
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    if (static_cast<int>(page.items.size()) == q.limit) {
      page.has_more = true;
      break;
    }
    page.items.push_back(read(s));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(s.db(), rc, "list");
  return page;
}

}  // namespace

SqliteStore::SqliteStore(std::string path)
    : path_(std::move(path)),
      instance_(g_next_instance++),
      health_(std::make_shared<Health>()) {
  std::filesystem::path p(path_);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec)
      throw std::runtime_error("cannot create folder " + p.parent_path().string() + ": " +
                               ec.message());
  }
  (void)Lease(*this);  // opens now, so a bad path fails at start-up
  signal_ = std::make_unique<ChangeSignal>(path_);
}

namespace {
// This thread's connections, keyed by store instance number (not address, so
// a new store at a reused address never inherits an old connection). Closed
// when the thread exits; the destroying thread closes its own at once.
std::unordered_map<uint64_t, std::unique_ptr<SqliteStore::Conn>>& thread_conns() {
  thread_local std::unordered_map<uint64_t, std::unique_ptr<SqliteStore::Conn>> conns;
  return conns;
}
}  // namespace

SqliteStore::~SqliteStore() {
  stopping_ = true;
  if (filter_builder_.joinable()) filter_builder_.join();
  thread_conns().erase(instance_);
}

// Why connections on a read-only file system are transient: every
// connection of a process to one database shares one -shm mapping, and the
// first to open it on a read-only file system maps it read-only. While any
// connection holding it stays open, connections opened later share it and
// cannot write, even after the file system is remounted read-write. So a
// connection opened read-only, or opened while one is open, is closed as soon
// as its use ends; once none is left open the next one maps the -shm
// read-write again. Opening and closing them under one mutex makes "while
// one is open" exact.
std::unique_ptr<SqliteStore::Conn> SqliteStore::open_conn() {
  std::lock_guard lk(health_->open_mu);
  auto c = std::make_unique<Conn>(path_, health_);
  const bool read_only = c->read_only();
  if (read_only || health_->transient_open > 0) c->make_transient_locked();
  if (read_only && !health_->read_only_logged.exchange(true))
    spdlog::warn("sqlite: {} is read-only: serving reads; writes answer 503 until it is writable",
                 path_);
  return c;
}

SqliteStore::Lease::Lease(SqliteStore& store) : store_(store) {
  auto& slot = thread_conns()[store.instance_];
  if (!slot) slot = store.open_conn();
  c_ = slot.get();
  c_->watch(store.signal_.get());
  c_->acquire();
}

SqliteStore::Lease::~Lease() {
  if (c_->release() == 0 && c_->transient()) thread_conns().erase(store_.instance_);
}

WriteHealth SqliteStore::write_health() const {
  return WriteHealth{health_->failures.load(), health_->failing.load()};
}

namespace {
// Renders the stored JSON of rows that have none (rows written before
// migration 3), in batches, each batch one transaction.
Status fill_documents(SqliteStore::Conn& c);
// Indexes the request log per key (log_chunks.hpp) up to its newest row, in
// slices of a bounded number of rows, each slice one transaction.
Status index_requests(SqliteStore::Conn& c);
}  // namespace

namespace {
// BEGIN ... COMMIT around a request's reads on this thread's connection.
// The BEGIN runs just before the scope's first statement (Conn::prepare), so
// a request answered from memory (a cached key over its limit, say) runs no
// statement at all; the statements are prepared once per connection.
class SqliteReadScope final : public Store::ReadScope {
 public:
  explicit SqliteReadScope(SqliteStore& store) : lease_(store), c_(*lease_) { c_.begin_lazily(); }
  ~SqliteReadScope() override {
    if (c_.end_lazily() && !sqlite3_get_autocommit(c_.db())) (void)step("COMMIT");
  }

 private:
  bool step(const std::string& sql) {
    auto p = c_.prepare(sql);
    if (!p) return false;
    Stmt s(c_, *p);
    return s.step() == SQLITE_DONE;
  }
  SqliteStore::Lease lease_;  // the calls inside the scope use the same connection
  SqliteStore::Conn& c_;
};
}  // namespace

std::unique_ptr<Store::ReadScope> SqliteStore::read_scope() {
  return std::make_unique<SqliteReadScope>(*this);
}

Result<int> SqliteStore::migrate() {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_TRY(c.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
      "NULL, applied_at INTEGER NOT NULL)"));
  int applied = 0;
  auto is_applied = [&c](int version) -> Result<bool> {
    DVS_PREPARE(q, c, "SELECT 1 FROM schema_migrations WHERE version = ?");
    q.integer(1, version);
    int rc = q.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(c.db(), rc, "migrations");
    return rc == SQLITE_ROW;
  };
  for (const auto& m : sqlite_migrations()) {
    // Looked up before taking the write lock, so an up-to-date database on a
    // read-only file system starts (read-only) instead of failing here.
    auto done = is_applied(m.version);
    if (!done) return done.error();
    if (*done) continue;
    Tx tx(c);
    DVS_TRY(tx.began());
    done = is_applied(m.version);  // another process may have applied it meanwhile
    if (!done) return done.error();
    if (*done) continue;
    DVS_TRY(c.exec(std::string(m.sql).c_str()));
    {
      DVS_PREPARE(ins, c,
                  "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, "
                  "strftime('%s','now'))");
      ins.integer(1, m.version).text(2, m.name);
      DVS_TRY(ins.run("record migration"));
    }
    DVS_TRY(tx.commit());
    ++applied;
  }
  DVS_TRY(fill_documents(c));
  // Rows the last run logged but did not index (a crash, a kill), or the
  // whole log after migration 10. A database that takes no writes (a
  // read-only file system) still serves: readers read unindexed rows from
  // the log itself, only more slowly.
  if (c.read_only()) return applied;  // no write tried: none counted as failed
  if (auto st = index_requests(c); !st)
    spdlog::warn("sqlite: request-log index not brought up to date ({})", st.error().message);
  return applied;
}

Status SqliteStore::ping() {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "SELECT count(*) FROM schema_migrations");
  int rc = q.step();
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "ping");
  return {};
}

// ---- organizations and users ----

Status SqliteStore::create_org(const core::Organization& org) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "INSERT INTO organizations(id, name, created_at) VALUES (?, ?, ?)");
  q.text(1, org.id).text(2, org.name).integer(3, org.created_at);
  return q.run("create org");
}

Result<core::Organization> SqliteStore::get_org(std::string_view id) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "SELECT id, name, created_at FROM organizations WHERE id = ?");
  q.text(1, id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such organization");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "get org");
  return core::Organization{q.str(0), q.str(1), q.i64(2)};
}

Result<core::Organization> SqliteStore::find_org_by_name(std::string_view name) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c,
              "SELECT id, name, created_at FROM organizations WHERE name = ? ORDER BY "
              "created_at, id LIMIT 1");
  q.text(1, name);
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such organization");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "find org");
  return core::Organization{q.str(0), q.str(1), q.i64(2)};
}

Status SqliteStore::create_user(const core::User& u) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c,
              "INSERT INTO users(id, org_id, email, role, password_hash, created_at) VALUES (?, "
              "?, ?, ?, ?, ?)");
  q.text(1, u.id).text(2, u.org_id).text(3, u.email).text(4, core::role_name(u.role));
  q.text_or_null(5, u.password_hash).integer(6, u.created_at);
  return q.run("create user");
}

namespace {
core::User read_user(const Stmt& q) {
  core::User u;
  u.id = q.str(0);
  u.org_id = q.str(1);
  u.email = q.str(2);
  u.role = core::parse_role(q.str(3)).value_or(core::Role::member);
  u.password_hash = q.str(4);
  u.created_at = q.i64(5);
  return u;
}
constexpr const char* kUserSelect =
    "SELECT id, org_id, email, role, password_hash, created_at FROM users ";
}  // namespace

Result<core::User> SqliteStore::find_user_by_email(std::string_view email) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, std::string(kUserSelect) + "WHERE email = ?");
  q.text(1, email);
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such user");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "find user");
  return read_user(q);
}

Result<core::User> SqliteStore::get_user(std::string_view id) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, std::string(kUserSelect) + "WHERE id = ?");
  q.text(1, id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such user");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "get user");
  return read_user(q);
}

Status SqliteStore::set_user_password(std::string_view user_id, const std::string& hash) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "UPDATE users SET password_hash = ? WHERE id = ?");
  q.text(1, hash).text(2, user_id);
  DVS_TRY(q.run("set password"));
  if (sqlite3_changes(c.db()) == 0) return make_error(Errc::not_found, "no such user");
  return {};
}

Result<bool> SqliteStore::empty() {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "SELECT EXISTS(SELECT 1 FROM organizations)");
  int rc = q.step();
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "empty");
  return q.i64(0) == 0;
}

// ---- API keys ----

namespace {
Status insert_key_row(SqliteStore::Conn& c, const core::ApiKey& k) {
  DVS_PREPARE(q, c,
              "INSERT INTO api_keys(id, org_id, name, hint, secret_hash, scopes, "
              "rate_limit_per_minute, created_at, created_by, expires_at, last_used_at, "
              "revoked_at, replaced_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  q.text(1, k.id).text(2, k.org_id).text(3, k.name).text(4, k.hint);
  q.blob(5, k.secret_hash.data(), k.secret_hash.size()).text(6, k.scopes.to_string());
  q.integer(7, k.rate_limit_per_minute).integer(8, k.created_at).opt_text(9, k.created_by_id);
  q.opt_int(10, k.expires_at).opt_int(11, k.last_used_at).opt_int(12, k.revoked_at);
  q.opt_text(13, k.replaced_by);
  return q.run("insert key");
}
}  // namespace

namespace {
Status insert_audit_row(SqliteStore::Conn& c, const core::AuditEvent& e) {
  DVS_PREPARE(q, c,
              "INSERT INTO audit_events(id, org_id, type, actor_user_id, key_id, ip, created_at) "
              "VALUES (?,?,?,?,?,?,?)");
  q.text(1, e.id).text(2, e.org_id).text(3, e.type).opt_text(4, e.actor_user_id);
  q.text(5, e.key_id).text(6, e.ip).integer(7, e.created_at);
  return q.run("append audit");
}
}  // namespace

Status SqliteStore::insert_key(const core::ApiKey& k, const core::AuditEvent* audit) {
  Lease lease(*this);
  Conn& c = *lease;
  Tx tx(c);
  DVS_TRY(tx.began());
  DVS_TRY(insert_key_row(c, k));
  if (audit) DVS_TRY(insert_audit_row(c, *audit));
  DVS_TRY(tx.commit());
  keys_changed();
  return {};
}

bool SqliteStore::surely_unknown_key(const core::KeyHash& hash) {
  if (!signal_->shared()) return false;
  // The signal first, then the table, as in key_epoch(): a key committed
  // after this load raises the signal after its commit.
  const uint64_t signal = signal_->load(ChangeSignal::Counter::keys);
  const int64_t now_ms = steady_us() / 1000;
  std::lock_guard lk(filter_mu_);
  if (!filter_.bloom) {
    start_filter_build_locked(now_ms);
    return false;
  }
  if (!filter_.stamp.current(signal, now_ms)) {
    Lease lease(*this);
    auto r = refresh_filter(*lease);
    if (!r || *r == Refresh::rebuild) {
      filter_.bloom.reset();
      start_filter_build_locked(now_ms);
      return false;
    }
    // Read in this request's snapshot: current as of the signal before it.
    filter_.stamp = Stamp{(*lease).snapshot_signal(ChangeSignal::Counter::keys).value_or(signal),
                          now_ms};
    // Still exact, only more false positives: used until the new one is in.
    if (filter_.bloom->full()) start_filter_build_locked(now_ms);
  }
  return !filter_.bloom->may_contain(hash);
}

bool SqliteStore::key_filter_ready() {
  std::lock_guard lk(filter_mu_);
  return filter_.bloom != nullptr;
}

namespace {
// Adds to `bloom` the hashes of the keys with a rowid above `after`, in
// rowid order; returns the last rowid read.
Result<int64_t> add_keys_after(SqliteStore::Conn& c, int64_t after, core::KeyFilter& bloom,
                               const std::atomic<bool>& stopping) {
  DVS_PREPARE(q, c, "SELECT rowid, secret_hash FROM api_keys WHERE rowid > ? ORDER BY rowid");
  q.integer(1, after);
  int rc;
  core::KeyHash h;
  while ((rc = q.step()) == SQLITE_ROW) {
    after = q.i64(0);
    if (q.blob_size(1) != static_cast<int>(h.size())) continue;  // matches no key anyway
    std::memcpy(h.data(), q.blob_ptr(1), h.size());
    bloom.add(h);
    if (stopping.load(std::memory_order_relaxed)) return make_error(Errc::unavailable, "closing");
  }
  if (rc != SQLITE_DONE) return db_error(c.db(), rc, "key filter");
  return after;
}

// key_hashes_removed (migration 7) and the highest rowid of api_keys.
Status read_filter_marks(SqliteStore::Conn& c, int64_t& removed, int64_t& top) {
  DVS_PREPARE(q, c,
              "SELECT (SELECT value FROM key_hashes_removed WHERE id = 1), "
              "(SELECT COALESCE(max(rowid), 0) FROM api_keys)");
  if (int rc = q.step(); rc != SQLITE_ROW) return db_error(c.db(), rc, "key filter");
  removed = q.i64(0);
  top = q.i64(1);
  return {};
}
}  // namespace

// Adds the keys stored since the last refresh, or asks for a whole build
// when a hash may have left the table or rowids went back (a deleted top
// row, VACUUM): the filter could then miss a key.
Result<SqliteStore::Refresh> SqliteStore::refresh_filter(Conn& c) {
  int64_t removed = 0, top = 0;
  DVS_TRY(read_filter_marks(c, removed, top));
  if (removed != filter_.removed || top < filter_.last_rowid) return Refresh::rebuild;
  if (top == filter_.last_rowid) return Refresh::done;
  auto last = add_keys_after(c, filter_.last_rowid, *filter_.bloom, stopping_);
  if (!last) return last.error();
  filter_.last_rowid = *last;
  return Refresh::done;
}

void SqliteStore::start_filter_build_locked(int64_t now_ms) {
  if (filter_building_ || now_ms < filter_retry_ms_ || stopping_) return;
  filter_building_ = true;
  if (filter_builder_.joinable()) filter_builder_.join();  // done: it cleared the flag
  filter_builder_ = std::thread([this] { build_filter(); });
}

// A whole build, in one read snapshot, on the builder thread (its own
// connection). About a second for a million keys read from disk.
void SqliteStore::build_filter() {
  const uint64_t signal = signal_->load(ChangeSignal::Counter::keys);
  const int64_t started_ms = steady_us() / 1000;
  Filter f;
  Status st = [&]() -> Status {
    SqliteReadScope snapshot(*this);
    Lease lease(*this);
    int64_t top = 0;
    DVS_TRY(read_filter_marks(*lease, f.removed, top));
    f.bloom = std::make_unique<core::KeyFilter>(std::max<size_t>(1024, 2 * static_cast<size_t>(top)));
    auto last = add_keys_after(*lease, 0, *f.bloom, stopping_);
    if (!last) return last.error();
    f.last_rowid = *last;
    return {};
  }();
  std::lock_guard lk(filter_mu_);
  filter_building_ = false;
  if (!st.ok()) {
    if (!stopping_) spdlog::warn("sqlite: key filter not built: {}", st.error().message);
    filter_retry_ms_ = started_ms + 1000;
    return;
  }
  f.stamp = Stamp{signal, started_ms};
  filter_ = std::move(f);
}

Result<core::ApiKey> SqliteStore::find_key_by_hash(const core::KeyHash& hash) {
  if (surely_unknown_key(hash)) return make_error(Errc::not_found, "no such key");
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, std::string("SELECT ") + kKeyColumnsNoEmail + "WHERE k.secret_hash = ?");
  q.blob(1, hash.data(), hash.size());
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such key");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "find key");
  auto k = read_key(q);
  // The index found it by equality already; compare again in constant time so
  // no code path ever decides on a secret's hash with an early-exit compare.
  if (!core::hash_equal(k.secret_hash, hash)) return make_error(Errc::not_found, "no such key");
  return k;
}

void SqliteStore::keys_changed() { signal_->raise(ChangeSignal::Counter::keys); }

void SqliteStore::documents_changed() { signal_->raise(ChangeSignal::Counter::documents); }

std::optional<uint64_t> SqliteStore::key_epoch() {
  static const std::string kSql = "SELECT value FROM key_epoch WHERE id = 1";
  return read_epoch(key_epoch_, ChangeSignal::Counter::keys, kSql);
}

std::optional<uint64_t> SqliteStore::read_epoch(Epoch& e, ChangeSignal::Counter counter,
                                                const std::string& sql) {
  // The signal first, then the epoch: a change committed after this load
  // raises the signal after its commit, so the next call reads again.
  const uint64_t signal = signal_->load(counter);
  const int64_t now_ms = steady_us() / 1000;
  if (signal_->shared()) {
    std::lock_guard lk(e.mu);
    if (e.stamp.current(signal, now_ms)) return e.value;
  }
  Lease lease(*this);
  Conn& c = *lease;
  auto prepared = c.prepare(sql);
  if (!prepared) return std::nullopt;
  Stmt q(c, *prepared);
  if (q.step() != SQLITE_ROW) return std::nullopt;
  const auto epoch = static_cast<uint64_t>(q.i64(0));
  // Read in this request's snapshot: current as of the signal before it.
  const uint64_t as_of = c.snapshot_signal(counter).value_or(signal);
  std::lock_guard lk(e.mu);
  // A slower reader never replaces a fresher record with an older one.
  if (now_ms >= e.stamp.at_ms) {
    e.stamp = Stamp{as_of, now_ms};
    e.value = epoch;
  }
  return epoch;
}

Result<core::ApiKey> SqliteStore::get_key(std::string_view org_id, std::string_view id) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c,
              std::string("SELECT ") + kKeyColumns + "WHERE k.id = ? AND (? = '' OR k.org_id = ?)");
  q.text(1, id).text(2, org_id).text(3, org_id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such key");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "get key");
  return read_key(q);
}

Result<std::vector<core::ApiKey>> SqliteStore::list_keys(std::string_view org_id) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c,
              std::string("SELECT ") + kKeyColumns +
                  "WHERE k.org_id = ? ORDER BY k.created_at DESC, k.id DESC");
  q.text(1, org_id);
  std::vector<core::ApiKey> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(read_key(q));
  if (rc != SQLITE_DONE) return db_error(c.db(), rc, "list keys");
  return out;
}

Result<core::ApiKey> SqliteStore::revoke_key(std::string_view org_id, std::string_view id,
                                             int64_t at, const core::AuditEvent* audit) {
  {
    Lease lease(*this);
  Conn& c = *lease;
    Tx tx(c);
    DVS_TRY(tx.began());
    DVS_PREPARE(q, c,
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND (? = '' OR org_id = ?) AND "
                "(revoked_at IS NULL OR revoked_at > ?)");
    q.integer(1, at).text(2, id).text(3, org_id).text(4, org_id).integer(5, at);
    DVS_TRY(q.run("revoke key"));
    if (audit && sqlite3_changes(c.db()) > 0) DVS_TRY(insert_audit_row(c, *audit));
    DVS_TRY(tx.commit());
    keys_changed();
  }
  return get_key(org_id, id);
}

Status SqliteStore::rotate_key(std::string_view org_id, std::string_view old_id,
                               const core::ApiKey& replacement, int64_t stop_at, int64_t now,
                               const core::AuditEvent* audit) {
  Lease lease(*this);
  Conn& c = *lease;
  Tx tx(c);
  DVS_TRY(tx.began());
  {
    // Only an active key can be rotated.
    DVS_PREPARE(q, c,
                "UPDATE api_keys SET replaced_by = ?, "
                "revoked_at = CASE WHEN ? <= ? THEN ? ELSE revoked_at END, "
                "expires_at = CASE WHEN ? > ? AND (expires_at IS NULL OR expires_at > ?) THEN ? "
                "ELSE expires_at END "
                "WHERE id = ? AND (? = '' OR org_id = ?) AND replaced_by IS NULL AND "
                "(revoked_at IS NULL OR revoked_at > ?) AND (expires_at IS NULL OR expires_at > "
                "?)");
    q.text(1, replacement.id);
    q.integer(2, stop_at).integer(3, now).integer(4, now);
    q.integer(5, stop_at).integer(6, now).integer(7, stop_at).integer(8, stop_at);
    q.text(9, old_id).text(10, org_id).text(11, org_id).integer(12, now).integer(13, now);
    DVS_TRY(q.run("rotate key"));
    if (sqlite3_changes(c.db()) == 0) return make_error(Errc::not_found, "no such active key");
  }
  DVS_TRY(insert_key_row(c, replacement));
  if (audit) DVS_TRY(insert_audit_row(c, *audit));
  DVS_TRY(tx.commit());
  keys_changed();
  return {};
}

Status SqliteStore::touch_keys(const std::vector<std::pair<std::string, int64_t>>& uses) {
  if (uses.empty()) return {};
  Lease lease(*this);
  Conn& c = *lease;
  Tx tx(c);
  DVS_TRY(tx.began());
  for (const auto& [id, at] : uses) {
    DVS_PREPARE(q, c,
                "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR "
                "last_used_at < ?)");
    q.integer(1, at).text(2, id).integer(3, at);
    DVS_TRY(q.run("touch key"));
  }
  return tx.commit();
}

Result<int64_t> SqliteStore::count_active_keys(std::string_view org_id, int64_t now) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c,
              "SELECT count(*) FROM api_keys WHERE org_id = ? AND (revoked_at IS NULL OR "
              "revoked_at > ?) AND (expires_at IS NULL OR expires_at > ?)");
  q.text(1, org_id).integer(2, now).integer(3, now);
  int rc = q.step();
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "count keys");
  return q.i64(0);
}

Result<std::vector<core::ApiKey>> SqliteStore::claim_expired_keys(std::string_view org_id,
                                                                  int64_t now) {
  Lease lease(*this);
  Conn& c = *lease;
  std::vector<core::ApiKey> out;
  {
    // Most calls find nothing: look without the write lock first, so listing
    // keys takes no write lock and keeps working on a read-only database.
    DVS_PREPARE(q, c,
                "SELECT EXISTS(SELECT 1 FROM api_keys WHERE org_id = ? AND expiry_audited = 0 "
                "AND expires_at <= ? AND (revoked_at IS NULL OR revoked_at > expires_at))");
    q.text(1, org_id).integer(2, now);
    int rc = q.step();
    if (rc != SQLITE_ROW) return db_error(c.db(), rc, "expired keys");
    if (q.i64(0) == 0) return out;
  }
  Tx tx(c);
  DVS_TRY(tx.began());
  {
    // A key revoked before it expired never "expires".
    DVS_PREPARE(q, c,
                std::string("SELECT ") + kKeyColumns +
                    "WHERE k.org_id = ? AND k.expiry_audited = 0 AND k.expires_at <= ? AND "
                    "(k.revoked_at IS NULL OR k.revoked_at > k.expires_at)");
    q.text(1, org_id).integer(2, now);
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) out.push_back(read_key(q));
    if (rc != SQLITE_DONE) return db_error(c.db(), rc, "expired keys");
  }
  for (const auto& k : out) {
    DVS_PREPARE(u, c, "UPDATE api_keys SET expiry_audited = 1 WHERE id = ?");
    u.text(1, k.id);
    DVS_TRY(u.run("mark expired"));
  }
  DVS_TRY(tx.commit());
  return out;
}

// ---- sessions ----

Status SqliteStore::create_session(const core::Session& s) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c,
              "INSERT INTO sessions(token_hash, user_id, created_at, last_seen_at, ip, "
              "user_agent) VALUES (?,?,?,?,?,?)");
  q.blob(1, s.token_hash.data(), s.token_hash.size()).text(2, s.user_id);
  q.integer(3, s.created_at).integer(4, s.last_seen_at).text(5, s.ip).text(6, s.user_agent);
  return q.run("create session");
}

Result<core::Session> SqliteStore::find_session(const core::KeyHash& h) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c,
              "SELECT token_hash, user_id, created_at, last_seen_at, ip, user_agent FROM "
              "sessions WHERE token_hash = ?");
  q.blob(1, h.data(), h.size());
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such session");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "find session");
  core::Session s;
  if (q.blob_size(0) == static_cast<int>(s.token_hash.size()))
    std::memcpy(s.token_hash.data(), q.blob_ptr(0), s.token_hash.size());
  if (!core::hash_equal(s.token_hash, h)) return make_error(Errc::not_found, "no such session");
  s.user_id = q.str(1);
  s.created_at = q.i64(2);
  s.last_seen_at = q.i64(3);
  s.ip = q.str(4);
  s.user_agent = q.str(5);
  return s;
}

Status SqliteStore::touch_session(const core::KeyHash& h, int64_t at) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?");
  q.integer(1, at).blob(2, h.data(), h.size()).integer(3, at);
  return q.run("touch session");
}

Status SqliteStore::delete_session(const core::KeyHash& h) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "DELETE FROM sessions WHERE token_hash = ?");
  q.blob(1, h.data(), h.size());
  return q.run("delete session");
}

Status SqliteStore::delete_stale_sessions(int64_t idle_before, int64_t created_before) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(q, c, "DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?");
  q.integer(1, idle_before).integer(2, created_before);
  return q.run("delete stale sessions");
}

// ---- leads ----

Result<core::Page<core::Lead>> SqliteStore::list_leads(std::string_view org_id,
                                                       const core::ListQuery& q) {
  Lease lease(*this);
  Conn& c = *lease;
  static const PageSql sql(kLeadColumns, "WHERE org_id = ?", "", "id");
  DVS_PREPARE(s, c, sql(q));
  s.text(1, org_id);
  bind_page(s, 2, q);
  return read_page<core::Lead>(s, q, read_lead);
}

Result<core::Lead> SqliteStore::get_lead(std::string_view org_id, std::string_view id) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(s, c, std::string("SELECT ") + kLeadColumns + "WHERE id = ? AND org_id = ?");
  s.text(1, id).text(2, org_id);
  int rc = s.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such lead");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "get lead");
  return read_lead(s);
}

namespace {
// not_found unless `id` is absent or belongs to `org_id`.
Status check_owner(SqliteStore::Conn& c, const char* sql, const std::string& id,
                   const std::string& org_id) {
  DVS_PREPARE(q, c, sql);
  q.text(1, id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return {};
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "check owner");
  if (q.str(0) != org_id) return make_error(Errc::conflict, "id " + id + " is already taken");
  return {};
}
}  // namespace

Status SqliteStore::upsert_leads(const std::vector<core::Lead>& leads) {
  Lease lease(*this);
  Conn& c = *lease;
  Tx tx(c);
  DVS_TRY(tx.began());
  for (const auto& l : leads) {
    DVS_TRY(check_owner(c, "SELECT org_id FROM leads WHERE id = ?", l.id, l.org_id));
    DVS_PREPARE(q, c,
                "INSERT OR REPLACE INTO leads(id, org_id, name, email, phone, company, status, "
                "source, value_cents, currency, created_at, updated_at, doc) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.text(1, l.id).text(2, l.org_id).text(3, l.name).text_or_null(4, l.email);
    q.text_or_null(5, l.phone).text_or_null(6, l.company).text(7, l.status);
    q.text_or_null(8, l.source).integer(9, l.value_cents).text(10, l.currency);
    q.integer(11, l.created_at).integer(12, l.updated_at).text(13, core::lead_json(l));
    DVS_TRY(q.run("upsert lead"));
  }
  DVS_TRY(tx.commit());
  documents_changed();
  return {};
}

// ---- invoices ----

Result<core::Page<core::Invoice>> SqliteStore::list_invoices(std::string_view org_id,
                                                             const core::ListQuery& q) {
  Lease lease(*this);
  Conn& c = *lease;
  static const PageSql sql(kInvoiceColumns, "WHERE org_id = ?", "", "id");
  DVS_PREPARE(s, c, sql(q));
  s.text(1, org_id);
  bind_page(s, 2, q);
  return read_page<core::Invoice>(s, q, read_invoice);
}

Result<core::Invoice> SqliteStore::get_invoice(std::string_view org_id, std::string_view id) {
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(s, c, std::string("SELECT ") + kInvoiceColumns + "WHERE id = ? AND org_id = ?");
  s.text(1, id).text(2, org_id);
  int rc = s.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no such invoice");
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, "get invoice");
  return read_invoice(s);
}

Status SqliteStore::upsert_invoices(const std::vector<core::Invoice>& invoices) {
  Lease lease(*this);
  Conn& c = *lease;
  Tx tx(c);
  DVS_TRY(tx.began());
  for (const auto& v : invoices) {
    DVS_TRY(check_owner(c, "SELECT org_id FROM invoices WHERE id = ?", v.id, v.org_id));
    if (v.lead_id) {
      DVS_PREPARE(q, c, "SELECT 1 FROM leads WHERE id = ? AND org_id = ?");
      q.text(1, *v.lead_id).text(2, v.org_id);
      int rc = q.step();
      if (rc == SQLITE_DONE)
        return make_error(Errc::invalid_request, "no such lead: " + *v.lead_id, "lead_id");
      if (rc != SQLITE_ROW) return db_error(c.db(), rc, "check lead");
    }
    DVS_PREPARE(q, c,
                "INSERT OR REPLACE INTO invoices(id, org_id, number, customer_name, "
                "customer_email, lead_id, status, currency, subtotal_cents, tax_cents, "
                "total_cents, amount_paid_cents, issued_at, due_at, paid_at, line_items, "
                "created_at, updated_at, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.text(1, v.id).text(2, v.org_id).text(3, v.number).text(4, v.customer_name);
    q.text_or_null(5, v.customer_email).opt_text(6, v.lead_id).text(7, v.status);
    q.text(8, v.currency).integer(9, v.subtotal_cents).integer(10, v.tax_cents);
    q.integer(11, v.total_cents).integer(12, v.amount_paid_cents).integer(13, v.issued_at);
    q.integer(14, v.due_at).opt_int(15, v.paid_at).text(16, v.line_items_json);
    q.integer(17, v.created_at).integer(18, v.updated_at).text(19, core::invoice_json(v));
    DVS_TRY(q.run("upsert invoice"));
  }
  DVS_TRY(tx.commit());
  documents_changed();
  return {};
}

// ---- stored documents ----

namespace {
core::Document read_doc(const Stmt& s) { return core::Document{s.str(0), s.i64(1), s.str(2)}; }

// Rows of (id, created_at, doc), the documents copied straight from SQLite's
// row into page.json (no string per row).
Status read_doc_page(Stmt& s, const core::ListQuery& q, core::DocPage& page) {
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    if (page.count == q.limit) {
      page.has_more = true;
      break;
    }
    if (page.count++) page.json.push_back(',');
    page.json.append(s.view(2));
    page.last_created_at = s.i64(1);
    page.last_id.assign(s.view(0));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(s.db(), rc, "list");
  return {};
}

Result<core::Document> get_doc(SqliteStore::Conn& c, const std::string& sql, std::string_view org,
                               std::string_view id, const char* what) {
  DVS_PREPARE(s, c, sql);
  s.text(1, id).text(2, org);
  int rc = s.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, std::string("no such ") + what);
  if (rc != SQLITE_ROW) return db_error(c.db(), rc, what);
  return read_doc(s);
}

template <typename Row>
Status fill_table(SqliteStore::Conn& c, const std::string& select, const char* update,
                  Row (*read)(const Stmt&), std::string (*render)(const Row&)) {
  for (;;) {
    std::vector<Row> rows;
    {
      DVS_PREPARE(q, c, select);
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) rows.push_back(read(q));
      if (rc != SQLITE_DONE) return db_error(c.db(), rc, "fill documents");
    }
    if (rows.empty()) return {};
    Tx tx(c);
    DVS_TRY(tx.began());
    for (const auto& r : rows) {
      DVS_PREPARE(u, c, update);
      u.text(1, render(r)).text(2, r.id);
      DVS_TRY(u.run("fill document"));
    }
    DVS_TRY(tx.commit());
  }
}

Status fill_documents(SqliteStore::Conn& c) {
  DVS_TRY(fill_table<core::Lead>(
      c, std::string("SELECT ") + kLeadColumns + "WHERE doc IS NULL LIMIT 1000",
      "UPDATE leads SET doc = ? WHERE id = ?", read_lead, core::lead_json));
  return fill_table<core::Invoice>(
      c, std::string("SELECT ") + kInvoiceColumns + "WHERE doc IS NULL LIMIT 1000",
      "UPDATE invoices SET doc = ? WHERE id = ?", read_invoice, core::invoice_json);
}
}  // namespace

// The document cache (core/doc_cache.hpp): the epoch is read first (in the
// request's snapshot, or reused while the change signal says no store has
// written a document since), then the cache; a miss reads the database and
// keeps what it read under that epoch.
std::optional<uint64_t> SqliteStore::doc_cache_epoch() {
  if (!doc_cache_) return std::nullopt;
  static const std::string kSql = "SELECT value FROM doc_epoch WHERE id = 1";
  return read_epoch(doc_epoch_, ChangeSignal::Counter::documents, kSql);
}

Status SqliteStore::list_docs(char kind, const std::string& sql, std::string_view org_id,
                              const core::ListQuery& q, core::DocPage& page) {
  const auto epoch = doc_cache_epoch();
  std::string key;
  if (list_from_cache(kind, org_id, q, epoch, page, key)) return {};
  Lease lease(*this);
  Conn& c = *lease;
  DVS_PREPARE(s, c, sql);
  s.text(1, org_id);
  bind_page(s, 2, q);
  const size_t from = page.json.size();
  const int count_before = page.count;
  DVS_TRY(read_doc_page(s, q, page));
  if (epoch) doc_cache_->put(key, core::cached_page(page, from, count_before), *epoch);
  return {};
}

Result<core::Document> SqliteStore::get_doc_cached(char kind, const std::string& sql,
                                                   std::string_view org_id, std::string_view id,
                                                   const char* what) {
  const auto epoch = doc_cache_epoch();
  std::string key;
  if (auto hit = doc_from_cache(kind, org_id, id, epoch, key)) return std::move(*hit);
  auto doc = get_doc(*Lease(*this), sql, org_id, id, what);
  // Found documents only: a flood of made-up ids would only evict good ones.
  if (doc && epoch) doc_cache_->put(key, core::cached_doc(*doc), *epoch);
  return doc;
}

Status SqliteStore::list_lead_docs(std::string_view org_id, const core::ListQuery& q,
                                   core::DocPage& page) {
  static const PageSql sql("id, created_at, doc FROM leads ", "WHERE org_id = ?", "", "id");
  return list_docs('L', sql(q), org_id, q, page);
}

Result<core::Document> SqliteStore::get_lead_doc(std::string_view org_id, std::string_view id) {
  static const std::string kSql = "SELECT id, created_at, doc FROM leads WHERE id = ? AND org_id = ?";
  return get_doc_cached('l', kSql, org_id, id, "lead");
}

Status SqliteStore::list_invoice_docs(std::string_view org_id, const core::ListQuery& q,
                                      core::DocPage& page) {
  static const PageSql sql("id, created_at, doc FROM invoices ", "WHERE org_id = ?", "", "id");
  return list_docs('I', sql(q), org_id, q, page);
}

Result<core::Document> SqliteStore::get_invoice_doc(std::string_view org_id,
                                                    std::string_view id) {
  static const std::string kSql =
      "SELECT id, created_at, doc FROM invoices WHERE id = ? AND org_id = ?";
  return get_doc_cached('i', kSql, org_id, id, "invoice");
}

// ---- request log and audit ----

namespace {
// True for the one caller that finds `every_ms` passed since `last_ms` (or
// `last_ms` never set), which it then sets to now.
bool claim_if_due(std::atomic<int64_t>& last_ms, int64_t every_ms) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  int64_t last = last_ms.load(std::memory_order_relaxed);
  if (last != 0 && now_ms - last < every_ms) return false;
  return last_ms.compare_exchange_strong(last, now_ms);
}
}  // namespace

Status SqliteStore::append_requests(const std::vector<core::RequestLogEntry>& entries) {
  if (entries.empty()) return {};
  Lease lease(*this);
  Conn& c = *lease;
  {
    Tx tx(c);
    DVS_TRY(tx.began());
    // A new row's seq is the log's highest plus one, so a log whose newest
    // rows were deleted (`DELETE FROM request_log` by hand) would hand out
    // seqs the index has already passed, and those rows would never be
    // listed: the first row then starts above the index's mark.
    std::optional<int64_t> first_seq;
    {
      DVS_PREPARE(m, c,
                  "SELECT seq FROM request_log_indexed WHERE id = 1 AND seq > "
                  "(SELECT COALESCE(max(seq), 0) FROM request_log)");
      const int rc = m.step();
      if (rc == SQLITE_ROW) first_seq = m.i64(0) + 1;
      else if (rc != SQLITE_DONE) return db_error(c.db(), rc, "append request");
    }
    for (const auto& e : entries) {
      DVS_PREPARE(q, c,
                  "INSERT INTO request_log(request_id, org_id, key_id, method, path, status, "
                  "latency_us, client_ip, user_agent, created_at, seq) "
                  "VALUES (?,?,?,?,?,?,?,?,?,?,?)");
      // The entries outlive each insert: bound without copies.
      q.text_static(1, e.request_id).text_static(2, e.org_id).text_static(3, e.key_id);
      q.text_static(4, e.method).text_static(5, e.path).integer(6, e.status);
      q.integer(7, e.latency_us).text_static(8, e.client_ip).text_static(9, e.user_agent);
      q.integer(10, e.created_at).opt_int(11, std::exchange(first_seq, std::nullopt));
      DVS_TRY(q.run("append request"));
    }
    DVS_TRY(tx.commit());
  }
  index_requests_if_due(c);
  restart_wal_if_due(c);
  return {};
}

namespace {

// One slice of an index pass: at most `max_rows` rows logged after
// request_log_indexed.seq, read in log order (a range of the log's rowids,
// no sort), grouped per key in memory and written as chunks, keys in index
// order; in one transaction. `more` is set when rows may remain.
Status index_request_slice(SqliteStore::Conn& c, int64_t max_rows, bool& more) {
  more = false;
  Tx tx(c);
  DVS_TRY(tx.began());
  int64_t from = 0;
  {
    DVS_PREPARE(q, c, "SELECT seq FROM request_log_indexed WHERE id = 1");
    const int rc = q.step();
    if (rc != SQLITE_ROW) return db_error(c.db(), rc, "index requests");
    from = q.i64(0);
  }
  std::unordered_map<std::string, std::vector<LoggedRow>, StringHash, std::equal_to<>> by_key;
  int64_t upto = from, read = 0;
  {
    DVS_PREPARE(q, c,
                "SELECT seq, key_id, created_at FROM request_log WHERE seq > ? ORDER BY seq "
                "LIMIT ?");
    q.integer(1, from).integer(2, max_rows);
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      upto = q.i64(0);
      const auto key = q.view(1);
      auto it = by_key.find(key);
      if (it == by_key.end()) it = by_key.emplace(std::string(key), std::vector<LoggedRow>{}).first;
      it->second.push_back({upto, q.i64(2)});
      ++read;
    }
    if (rc != SQLITE_DONE) return db_error(c.db(), rc, "index requests");
  }
  if (read == 0) return {};  // nothing written: the destructor rolls back
  more = read == max_rows;
  std::vector<const std::pair<const std::string, std::vector<LoggedRow>>*> keys;
  keys.reserve(by_key.size());
  for (const auto& kv : by_key) keys.push_back(&kv);
  std::sort(keys.begin(), keys.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<LogChunk> chunks;
  for (const auto* kv : keys) {
    chunks.clear();
    chunk_rows(kv->second, chunks);
    for (const auto& ch : chunks) {
      DVS_PREPARE(ins, c,
                  "INSERT INTO request_log_key_chunks(key_id, last_seq, first_seq, "
                  "min_created_at, max_created_at, row_count, entries) VALUES (?,?,?,?,?,?,?)");
      ins.text_static(1, kv->first).integer(2, ch.last_seq).integer(3, ch.first_seq);
      ins.integer(4, ch.min_created_at).integer(5, ch.max_created_at).integer(6, ch.rows);
      ins.blob(7, ch.entries.data(), ch.entries.size());
      DVS_TRY(ins.run("index requests"));
    }
  }
  DVS_PREPARE(set, c, "UPDATE request_log_indexed SET seq = ? WHERE id = 1");
  set.integer(1, upto);
  DVS_TRY(set.run("index requests"));
  return tx.commit();
}

// Slices of 200,000 rows hold about 10 MB while they are grouped.
constexpr int64_t kIndexSliceRows = 200'000;

Status index_requests(SqliteStore::Conn& c) {
  {
    // Read first, outside a write transaction: nothing to index (or a
    // database that takes no writes) costs no BEGIN IMMEDIATE.
    DVS_PREPARE(q, c,
                "SELECT (SELECT seq FROM request_log_indexed WHERE id = 1) < "
                "(SELECT COALESCE(max(seq), 0) FROM request_log)");
    const int rc = q.step();
    if (rc != SQLITE_ROW) return db_error(c.db(), rc, "index requests");
    if (q.i64(0) == 0) return {};
  }
  for (bool more = true; more;) DVS_TRY(index_request_slice(c, kIndexSliceRows, more));
  return {};
}

}  // namespace

// The per-key index of the request log (log_chunks.hpp), every few seconds:
// the rows logged since the last pass, as one chunk per key in use (more for
// a key with hundreds of requests), so the index takes one row per key a
// pass rather than one per request. A failure (a full disk) leaves the rows
// to the next pass; list_requests and hourly_counts read them from the log
// meanwhile.
void SqliteStore::index_requests_if_due(Conn& c) {
  // Every 2 s: a pass blocks this thread's next batch while it runs, and 5 s
  // passes let the queue reach 50-87k entries at 40k requests a second
  // (over 1 s of lag), against 37-56k at 2 s (docs/performance.md).
  constexpr int64_t kEveryMs = 2000;
  if (!claim_if_due(requests_indexed_ms_, kEveryMs)) return;
  if (auto st = index_requests(c); !st)
    spdlog::warn("sqlite: request-log index pass failed ({}); retried in {} s", st.error().message,
                 kEveryMs / 1000);
}

// Under a constant stream of reads the WAL never restarts: each automatic
// (passive) checkpoint copies what it can, but some reader always holds a
// snapshot, so new frames keep being appended and the WAL grows without end
// (a 10-minute soak reached 250 MB, and every page read slows down as the
// WAL index grows). Every second at most the request-log writer (the busiest
// writer, on its own thread) asks for a RESTART checkpoint: it copies every
// frame back, waits for the (short) readers still on the WAL, and lets the
// next write start the WAL from the beginning; journal_size_limit then
// truncates the file. A busy database is not an error here: next time.
void SqliteStore::restart_wal_if_due(Conn& c) {
  constexpr int64_t kEveryMs = 1000;
  if (!claim_if_due(wal_restarted_ms_, kEveryMs)) return;
  // A passive checkpoint first (it never waits) tells how long the WAL is;
  // a small one restarts by itself. Then the restart waits at most 200 ms for
  // readers, not the usual busy timeout: this thread also has a log to write.
  constexpr int kRestartFrames = 4096;  // 16 MiB of 4 KiB pages
  int frames = 0, copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(c.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
  if (rc == SQLITE_OK && frames >= kRestartFrames) {
    sqlite3_busy_timeout(c.db(), 200);
    rc = sqlite3_wal_checkpoint_v2(c.db(), nullptr, SQLITE_CHECKPOINT_RESTART, &frames, &copied);
    sqlite3_busy_timeout(c.db(), kBusyTimeoutMs);
  }
  if (rc != SQLITE_OK && rc != SQLITE_BUSY)
    spdlog::warn("sqlite: WAL checkpoint failed: {}", sqlite3_errmsg(c.db()));
}

namespace {

constexpr std::string_view kLogColumns =
    "SELECT request_id, org_id, key_id, method, path, status, latency_us, client_ip, user_agent, "
    "created_at FROM request_log ";

core::RequestLogEntry read_log_row(const Stmt& r) {
  core::RequestLogEntry e;
  e.request_id = r.str(0);
  e.org_id = r.str(1);
  e.key_id = r.str(2);
  e.method = r.str(3);
  e.path = r.str(4);
  e.status = static_cast<int>(r.i64(5));
  e.latency_us = r.i64(6);
  e.client_ip = r.str(7);
  e.user_agent = r.str(8);
  e.created_at = r.i64(9);
  return e;
}

// Whether the key belongs to the organization (the request log's index
// holds no organization).
Result<bool> key_in_org(SqliteStore::Conn& c, std::string_view key_id, std::string_view org_id) {
  DVS_PREPARE(k, c, "SELECT 1 FROM api_keys WHERE id = ?1 AND org_id = ?2");
  k.text(1, key_id).text(2, org_id);
  const int rc = k.step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(c.db(), rc, "request log");
  return rc == SQLITE_ROW;
}

core::Error malformed_chunk() {
  spdlog::error("sqlite: a malformed chunk in request_log_key_chunks");
  return make_error(Errc::internal, "request log index: a malformed chunk");
}

}  // namespace

// Newest first: the rows logged since the last index pass (a scan of the
// log's newest rows), then the key's chunks by their newest row's time, each
// row looked up in the log (which checks the organization, and skips a
// pruned row), until no chunk left can hold a row newer than the page's
// oldest. All in one read snapshot, so a pass in between cannot move a row
// from the first part to the second.
Result<core::Page<core::RequestLogEntry>> SqliteStore::list_requests(std::string_view org_id,
                                                                     std::string_view key_id,
                                                                     const core::ListQuery& q) {
  SqliteReadScope snapshot(*this);
  Lease lease(*this);
  Conn& c = *lease;
  const bool cursor = q.after_created_at.has_value();
  const size_t want = static_cast<size_t>(q.limit) + 1;
  auto newer = [](const core::RequestLogEntry& a, const core::RequestLogEntry& b) {
    return std::tie(a.created_at, a.request_id) > std::tie(b.created_at, b.request_id);
  };
  std::vector<core::RequestLogEntry> found;  // the `want` newest so far, newest first
  {
    // ?1 org, ?2 key, ?3 ?4 the cursor (created_at, request_id), ?5 the limit.
    auto sql = [](bool cursor) {
      return std::string(kLogColumns) +
             "WHERE seq > (SELECT seq FROM request_log_indexed WHERE id = 1) AND key_id = ?2 AND "
             "org_id = ?1" +
             (cursor ? " AND (created_at, request_id) < (?3, ?4)" : "") +
             " ORDER BY created_at DESC, request_id DESC LIMIT ?5";
    };
    static const std::array<std::string, 2> kSql{sql(false), sql(true)};
    DVS_PREPARE(s, c, kSql[cursor ? 1 : 0]);
    s.text(1, org_id).text(2, key_id);
    if (cursor) s.integer(3, *q.after_created_at).text(4, q.after_id);
    s.integer(5, static_cast<int64_t>(want));
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) found.push_back(read_log_row(s));
    if (rc != SQLITE_DONE) return db_error(c.db(), rc, "list requests");
  }
  // Another organization's key has no chunk to read here: without this
  // check each of its rows would be looked up (and refused) one by one.
  const auto ours = key_in_org(c, key_id, org_id);
  if (!ours) return ours.error();
  // A chunk spans at most kMaxSpanSeconds: one whose newest row is later
  // than that past the cursor holds no row before it.
  DVS_PREPARE(chunks, c,
              cursor ? "SELECT max_created_at, min_created_at, entries FROM request_log_key_chunks "
                       "WHERE key_id = ?1 AND max_created_at <= ?2 "
                       "ORDER BY max_created_at DESC, last_seq DESC"
                     : "SELECT max_created_at, min_created_at, entries FROM request_log_key_chunks "
                       "WHERE key_id = ?1 ORDER BY max_created_at DESC, last_seq DESC");
  chunks.text(1, key_id);
  if (cursor) chunks.integer(2, *q.after_created_at + kMaxSpanSeconds);
  std::vector<LoggedRow> rows;
  int rc = SQLITE_DONE;
  while (*ours && (rc = chunks.step()) == SQLITE_ROW) {
    // `found` is sorted here: with `want` rows, nothing older than its last
    // can make the page (rows tied on that time still may, by id).
    const bool full = found.size() >= want;
    const int64_t oldest = full ? found[want - 1].created_at : 0;
    if (full && chunks.i64(0) < oldest) break;
    rows.clear();
    const std::string_view blob(static_cast<const char*>(chunks.blob_ptr(2)),
                                static_cast<size_t>(chunks.blob_size(2)));
    if (!decode_entries(blob, chunks.i64(1), rows)) return malformed_chunk();
    for (const auto& r : rows) {
      if (cursor && r.created_at > *q.after_created_at) continue;
      if (full && r.created_at < oldest) continue;
      static const std::string kOne =
          std::string(kLogColumns) + "WHERE seq = ?1 AND org_id = ?2 AND key_id = ?3";
      DVS_PREPARE(one, c, kOne);
      one.integer(1, r.seq).text_static(2, org_id).text_static(3, key_id);
      const int orc = one.step();
      if (orc == SQLITE_DONE) continue;  // pruned, or another organization's
      if (orc != SQLITE_ROW) return db_error(c.db(), orc, "list requests");
      auto e = read_log_row(one);
      if (cursor && std::tie(e.created_at, e.request_id) >=
                        std::tie(*q.after_created_at, q.after_id))
        continue;
      found.push_back(std::move(e));
    }
    std::sort(found.begin(), found.end(), newer);
    if (found.size() > want) found.resize(want);
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return db_error(c.db(), rc, "list requests");
  core::Page<core::RequestLogEntry> page;
  page.has_more = found.size() > static_cast<size_t>(q.limit);
  if (page.has_more) found.resize(static_cast<size_t>(q.limit));
  page.items = std::move(found);
  return page;
}

// Per hour: a chunk within one hour counts its rows still in the log; one
// across an hour (or `since`) counts its rows by their times, or, when some
// of them were pruned, by the times of those still in the log. Then the rows
// not yet indexed. One read snapshot, as above.
Result<std::vector<std::pair<int64_t, int64_t>>> SqliteStore::hourly_counts(
    std::string_view org_id, std::string_view key_id, int64_t since) {
  SqliteReadScope snapshot(*this);
  Lease lease(*this);
  Conn& c = *lease;
  std::map<int64_t, int64_t> hours;
  auto hour = [](int64_t t) { return t / 3600 * 3600; };
  // The index holds no organization: the key's, checked once.
  const auto ours = key_in_org(c, key_id, org_id);
  if (!ours) return ours.error();
  if (*ours) {
    DVS_PREPARE(chunks, c,
                "SELECT min_created_at, max_created_at, row_count, entries "
                "FROM request_log_key_chunks WHERE key_id = ?1 AND max_created_at >= ?2");
    chunks.text(1, key_id).integer(2, since);
    std::vector<LoggedRow> rows;
    int rc;
    while ((rc = chunks.step()) == SQLITE_ROW) {
      const int64_t lo = chunks.i64(0), hi = chunks.i64(1), live = chunks.i64(2);
      if (lo >= since && hour(lo) == hour(hi)) {
        hours[hour(lo)] += live;
        continue;
      }
      rows.clear();
      const std::string_view blob(static_cast<const char*>(chunks.blob_ptr(3)),
                                  static_cast<size_t>(chunks.blob_size(3)));
      if (!decode_entries(blob, lo, rows)) return malformed_chunk();
      const bool whole = static_cast<int64_t>(rows.size()) == live;
      for (const auto& r : rows) {
        if (r.created_at < since) continue;
        if (!whole) {
          DVS_PREPARE(one, c, "SELECT 1 FROM request_log WHERE seq = ?");
          one.integer(1, r.seq);
          const int orc = one.step();
          if (orc == SQLITE_DONE) continue;  // pruned
          if (orc != SQLITE_ROW) return db_error(c.db(), orc, "hourly counts");
        }
        ++hours[hour(r.created_at)];
      }
    }
    if (rc != SQLITE_DONE) return db_error(c.db(), rc, "hourly counts");
  }
  DVS_PREPARE(tail, c,
              "SELECT created_at / 3600 * 3600 AS h, count(*) FROM request_log "
              "WHERE seq > (SELECT seq FROM request_log_indexed WHERE id = 1) AND key_id = ?1 "
              "AND org_id = ?2 AND created_at >= ?3 GROUP BY h");
  tail.text(1, key_id).text(2, org_id).integer(3, since);
  int rc;
  while ((rc = tail.step()) == SQLITE_ROW) hours[tail.i64(0)] += tail.i64(1);
  if (rc != SQLITE_DONE) return db_error(c.db(), rc, "hourly counts");
  return std::vector<std::pair<int64_t, int64_t>>(hours.begin(), hours.end());
}

Status SqliteStore::append_audit(const core::AuditEvent& e) { return insert_audit_row(*Lease(*this), e); }

Result<core::Page<core::AuditEvent>> SqliteStore::list_audit(std::string_view org_id,
                                                             const core::ListQuery& q) {
  Lease lease(*this);
  Conn& c = *lease;
  static const PageSql sql(
      "a.id, a.org_id, a.type, a.actor_user_id, u.email, a.key_id, a.ip, a.created_at, k.name "
      "FROM audit_events a LEFT JOIN users u ON u.id = a.actor_user_id LEFT JOIN api_keys k ON "
      "k.id = a.key_id ",
      "WHERE a.org_id = ?", "a.", "id");
  DVS_PREPARE(s, c, sql(q));
  s.text(1, org_id);
  bind_page(s, 2, q);
  return read_page<core::AuditEvent>(s, q, [](const Stmt& r) {
    core::AuditEvent e;
    e.id = r.str(0);
    e.org_id = r.str(1);
    e.type = r.str(2);
    e.actor_user_id = r.opt_str(3);
    e.actor_email = r.opt_str(4);
    e.key_id = r.str(5);
    e.ip = r.str(6);
    e.created_at = r.i64(7);
    e.key_name = r.str(8);
    return e;
  });
}

}  // namespace dvs::store
