#include "store/postgres/postgres_store.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/json_writer.hpp"
#include "core/key_filter.hpp"
#include "core/render.hpp"
#include "store/postgres/migrations.hpp"

namespace dvs::store {

using core::Errc;
using core::make_error;

// ---- passwords out of messages ----

namespace {

bool is_uri(std::string_view s) {
  return s.starts_with("postgresql://") || s.starts_with("postgres://");
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A span [begin, end) of `s` that holds a password.
struct Span {
  size_t begin, end;
};

// Where the passwords are in a URI (user info, ?password=) or in a key=value
// conninfo string (password=..., possibly quoted).
std::vector<Span> password_spans(std::string_view s) {
  std::vector<Span> out;
  if (is_uri(s)) {
    size_t start = s.find("://") + 3;
    size_t query = s.find('?', start);
    std::string_view head =
        s.substr(start, query == std::string_view::npos ? s.npos : query - start);
    // The user info ends at the last '@' before the query, so a password
    // holding an unencoded '/' or '@' is still masked whole.
    size_t at = head.rfind('@');
    if (at != std::string_view::npos) {
      size_t colon = head.find(':');
      if (colon != std::string_view::npos && colon < at)
        out.push_back({start + colon + 1, start + at});
    }
    if (query != std::string_view::npos) {
      size_t p = query + 1;
      while (p < s.size()) {
        size_t amp = s.find('&', p);
        if (amp == std::string_view::npos) amp = s.size();
        std::string_view kv = s.substr(p, amp - p);
        if (kv.starts_with("password=")) out.push_back({p + 9, amp});
        p = amp + 1;
      }
    }
    return out;
  }
  // key=value form: password = value | password = 'quoted \' value'
  size_t p = 0;
  while ((p = s.find("password", p)) != std::string_view::npos) {
    size_t q = p + 8;
    bool word_start = p == 0 || s[p - 1] == ' ' || s[p - 1] == '\t';
    while (q < s.size() && (s[q] == ' ' || s[q] == '\t')) ++q;
    if (!word_start || q >= s.size() || s[q] != '=') {
      p += 8;
      continue;
    }
    ++q;
    while (q < s.size() && (s[q] == ' ' || s[q] == '\t')) ++q;
    size_t begin = q;
    if (q < s.size() && s[q] == '\'') {
      ++q;
      while (q < s.size() && s[q] != '\'') q += (s[q] == '\\' && q + 1 < s.size()) ? 2 : 1;
      if (q < s.size()) ++q;
    } else {
      while (q < s.size() && s[q] != ' ' && s[q] != '\t') ++q;
    }
    out.push_back({begin, q});
    p = q;
  }
  return out;
}

// The passwords as they may appear in a libpq message: raw and decoded.
std::vector<std::string> passwords_in(std::string_view url) {
  std::vector<std::string> out;
  for (const auto& sp : password_spans(url)) {
    std::string raw(url.substr(sp.begin, sp.end - sp.begin));
    if (raw.empty()) continue;
    std::string decoded = percent_decode(raw);
    if (raw.size() >= 2 && raw.front() == '\'' && raw.back() == '\'')
      out.push_back(raw.substr(1, raw.size() - 2));
    out.push_back(raw);
    if (decoded != raw) out.push_back(decoded);
  }
  // Longest first, so a password that contains another is replaced whole.
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

// `msg` on one line (libpq's messages end in a newline and may hold several
// lines), with every password of `url` replaced by ***.
std::string clean_message(std::string msg, std::string_view url) {
  for (const auto& pw : passwords_in(url)) {
    size_t p = 0;
    while ((p = msg.find(pw, p)) != std::string::npos) {
      msg.replace(p, pw.size(), "***");
      p += 3;
    }
  }
  std::string out;
  out.reserve(msg.size());
  bool space = false;
  for (char c : msg) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string mask_db_password(std::string_view url) {
  std::string out(url);
  auto spans = password_spans(url);
  // Replace from the back so earlier offsets stay valid.
  for (auto it = spans.rbegin(); it != spans.rend(); ++it)
    out.replace(it->begin, it->end - it->begin, "***");
  return out;
}

// ---- parameters and results ----

namespace {

// Type OIDs from catalog/pg_type_d.h (stable since forever); passing them to
// PQprepare spares the server from guessing the type of `$2 <= $3`.
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;

// One statement's parameters: bytea is sent binary, the rest as text.
class Params {
 public:
  Params& text(std::string_view v) { return add(std::string(v), kTextOid, 0, false); }
  // Empty strings are stored as NULL ("absent"), as SqliteStore does.
  Params& text_or_null(std::string_view v) { return v.empty() ? null(kTextOid) : text(v); }
  Params& opt_text(const std::optional<std::string>& v) { return v ? text(*v) : null(kTextOid); }
  Params& integer(int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return add(std::string(buf, r.ptr), kInt8Oid, 0, false);
  }
  Params& opt_int(const std::optional<int64_t>& v) { return v ? integer(*v) : null(kInt8Oid); }
  Params& bytes(const unsigned char* p, size_t n) {
    return add(std::string(reinterpret_cast<const char*>(p), n), kByteaOid, 1, false);
  }

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }

  // The arrays libpq takes, pointing into *this.
  struct View {
    std::vector<const char*> values;
    std::vector<int> lengths;
    const int* formats;
  };
  View view() const {
    View v;
    v.values.reserve(values_.size());
    v.lengths.reserve(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) {
      v.values.push_back(nulls_[i] ? nullptr : values_[i].c_str());
      v.lengths.push_back(static_cast<int>(values_[i].size()));
    }
    v.formats = formats_.data();
    return v;
  }

 private:
  Params& null(Oid t) { return add({}, t, 0, true); }
  Params& add(std::string v, Oid t, int format, bool is_null) {
    values_.push_back(std::move(v));
    types_.push_back(t);
    formats_.push_back(format);
    nulls_.push_back(is_null ? 1 : 0);
    return *this;
  }
  std::vector<std::string> values_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
  std::vector<char> nulls_;
};

// An owned PGresult, read as text. NULL reads as "" or nullopt.
class Res {
 public:
  Res() = default;
  explicit Res(PGresult* r) : r_(r, &PQclear) {}
  PGresult* get() const { return r_.get(); }
  ExecStatusType status() const { return PQresultStatus(r_.get()); }  // NULL: fatal
  int rows() const { return PQntuples(r_.get()); }
  bool null(int row, int c) const { return PQgetisnull(r_.get(), row, c) != 0; }
  // Valid while this result lives.
  std::string_view view(int row, int c) const {
    if (null(row, c)) return {};
    return std::string_view(PQgetvalue(r_.get(), row, c),
                            static_cast<size_t>(PQgetlength(r_.get(), row, c)));
  }
  std::string str(int row, int c) const { return std::string(view(row, c)); }
  std::optional<std::string> opt_str(int row, int c) const {
    if (null(row, c)) return std::nullopt;
    return str(row, c);
  }
  int64_t i64(int row, int c) const {
    const char* p = PQgetvalue(r_.get(), row, c);
    int64_t v = 0;
    std::from_chars(p, p + PQgetlength(r_.get(), row, c), v);
    return v;
  }
  std::optional<int64_t> opt_i64(int row, int c) const {
    if (null(row, c)) return std::nullopt;
    return i64(row, c);
  }
  bool boolean(int row, int c) const { return PQgetvalue(r_.get(), row, c)[0] == 't'; }
  // A bytea column in hex output ("\x0a1b...") into `out`; left untouched
  // unless the length matches exactly.
  void hash(int row, int c, core::KeyHash& out) const {
    std::string_view v(PQgetvalue(r_.get(), row, c),
                       static_cast<size_t>(PQgetlength(r_.get(), row, c)));
    if (v.size() != 2 + 2 * out.size() || !v.starts_with("\\x")) return;
    core::KeyHash h{};
    for (size_t i = 0; i < h.size(); ++i) {
      int hi = hex_value(v[2 + 2 * i]), lo = hex_value(v[3 + 2 * i]);
      if (hi < 0 || lo < 0) return;
      h[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    out = h;
  }
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const {
    const char* p = PQcmdTuples(r_.get());
    int64_t v = 0;
    std::from_chars(p, p + std::strlen(p), v);
    return v;
  }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_{nullptr, &PQclear};
};

// One statement of a pipeline: `sql` must outlive the pipeline() call.
struct Stmt {
  std::string_view sql;
  Params params;
};

struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

void log_notice(void*, const PGresult* r) {
  const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  spdlog::debug("postgres notice: {}", msg ? msg : "?");
}

// Connection parameters besides the URL. Listed before it, so the URL's own
// settings (say ?connect_timeout=30) win.
PGconn* connect_pg(const std::string& url) {
  const char* keys[] = {"connect_timeout",  "application_name", "client_encoding",
                        "keepalives",       "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "dbname",           nullptr};
  const char* vals[] = {"5", "devsphere", "UTF8", "1", "30", "10", "3", url.c_str(), nullptr};
  PGconn* pg = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (pg && PQstatus(pg) == CONNECTION_OK) PQsetNoticeReceiver(pg, log_notice, nullptr);
  return pg;
}

}  // namespace

// ---- a connection ----

// Whether the server takes writes: refusals for a full disk (53100), a
// read-only transaction (25006: default_transaction_read_only, a hot standby
// after a failover) or an I/O error (class 58). Thread-safe (atomics).
struct PostgresStore::Health {
  std::atomic<uint64_t> failures{0};
  std::atomic<bool> failing{false};
  void write_failed(std::string_view sqlstate) {
    failures.fetch_add(1, std::memory_order_relaxed);
    if (!failing.exchange(true))
      spdlog::error("postgres: writes are failing ({}): the disk is full or the database is "
                    "read-only; reads go on, writes answer 503 until it takes writes again",
                    sqlstate);
  }
  void write_succeeded() {
    if (failing.load(std::memory_order_relaxed) && failing.exchange(false))
      spdlog::warn("postgres: writes succeed again ({} refused since start)", failures.load());
  }
};

class PostgresStore::Conn {
 public:
  Conn(PGconn* pg, const std::string* url, Health* health) : pg_(pg), url_(url), health_(health) {}
  ~Conn() { PQfinish(pg_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Makes the connection usable before it is handed out: when the server
  // closed it while it sat idle (a restart, pg_terminate_backend) or an
  // earlier call found it broken, reconnects. unavailable if that fails.
  core::Status revive() {
    if (!broken_ && PQstatus(pg_) == CONNECTION_OK) {
      // An idle connection has nothing to read unless the server is saying
      // goodbye (a FATAL message, then end of file): read it to find out.
      for (int i = 0; i < 4; ++i) {
        pollfd p{PQsocket(pg_), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
        if (!PQconsumeInput(pg_)) break;
      }
      if (PQstatus(pg_) == CONNECTION_OK) return {};
    }
    names_.clear();  // prepared statements live in the server session
    broken_ = false;
    PQreset(pg_);
    if (PQstatus(pg_) != CONNECTION_OK) {
      broken_ = true;
      spdlog::error("postgres: cannot reconnect: {}", clean_message(PQerrorMessage(pg_), *url_));
      return make_error(Errc::unavailable, "the database is unavailable");
    }
    PQsetNoticeReceiver(pg_, log_notice, nullptr);
    spdlog::info("postgres: reconnected");
    return {};
  }

  // Before the connection goes back to the pool: no transaction or pipeline
  // may be left open for the next user. A connection that cannot be brought
  // back to idle is marked for a reconnect.
  void settle() {
    if (broken_ || PQstatus(pg_) != CONNECTION_OK) {
      broken_ = true;
      return;
    }
    if (PQpipelineStatus(pg_) != PQ_PIPELINE_OFF && !PQexitPipelineMode(pg_)) {
      broken_ = true;
      return;
    }
    switch (PQtransactionStatus(pg_)) {
      case PQTRANS_IDLE:
        return;
      case PQTRANS_INTRANS:
      case PQTRANS_INERROR:
        rollback();
        if (PQtransactionStatus(pg_) != PQTRANS_IDLE) broken_ = true;
        return;
      default:
        broken_ = true;
    }
  }

  // Runs `sql` (prepared on first use on this connection) with `p`.
  core::Result<Res> exec(std::string_view sql, const Params& p, const char* what) {
    auto name = prepared(sql, p, what);
    if (!name) return name.error();
    auto v = p.view();
    Res r(PQexecPrepared(pg_, (*name)->c_str(), p.size(), v.values.data(), v.lengths.data(),
                         v.formats, 0));
    return check(std::move(r), what);
  }

  // Runs one statement of SQL text without parameters and returns its rows
  // (for what cannot be prepared, such as FETCH from a cursor).
  core::Result<Res> query(const std::string& sql, const char* what) {
    return check(Res(PQexec(pg_, sql.c_str())), what);
  }

  // Runs SQL text without parameters (transaction control, migrations; may
  // hold several statements).
  core::Status simple(const std::string& sql, const char* what) {
    auto r = check(Res(PQexec(pg_, sql.c_str())), what);
    if (!r) return r.error();
    return {};
  }

  // Runs `sql`, a COPY ... FROM STDIN, with `data` in COPY's text format:
  // one statement (all rows or none) however many rows.
  core::Status copy_in(const std::string& sql, std::string_view data, const char* what) {
    Res start(PQexec(pg_, sql.c_str()));
    if (start.status() != PGRES_COPY_IN) {
      auto r = check(std::move(start), what);
      return r ? core::Status(fail(what)) : core::Status(r.error());
    }
    if (PQputCopyData(pg_, data.data(), static_cast<int>(data.size())) != 1 ||
        PQputCopyEnd(pg_, nullptr) != 1)
      return fail(what);
    Res end(PQgetResult(pg_));
    if (!end.get()) return fail(what);
    while (PGresult* extra = PQgetResult(pg_)) PQclear(extra);
    auto r = check(std::move(end), what);
    if (!r) return r.error();
    return {};
  }

  void rollback() {
    if (broken_ || PQstatus(pg_) != CONNECTION_OK) {
      broken_ = true;  // the server ends the transaction with the session
      return;
    }
    Res r(PQexec(pg_, "ROLLBACK"));
    if (r.status() != PGRES_COMMAND_OK) {
      broken_ = true;
      spdlog::warn("postgres: rollback failed: {}", clean_message(PQerrorMessage(pg_), *url_));
    }
  }

  // Runs the statements in order in pipeline mode: one round trip per
  // kChunk statements instead of one per statement. `on_result` sees each
  // successful result in order and may turn it into an error (say, an upsert
  // that changed no row). Returns the first error in statement order, whether
  // from the server or from on_result; statements after it do not run (or are
  // rolled back by the caller's transaction).
  core::Status pipeline(const std::vector<Stmt>& stmts, const char* what,
                        const std::function<core::Status(size_t, const Res&)>& on_result) {
    constexpr size_t kChunk = 256;  // results of a chunk fit in socket buffers: no deadlock
    std::vector<const std::string*> names;
    names.reserve(stmts.size());
    for (const auto& s : stmts) {  // prepared outside the pipeline, once per text
      auto name = prepared(s.sql, s.params, what);
      if (!name) return name.error();
      names.push_back(*name);
    }
    for (size_t begin = 0; begin < stmts.size(); begin += kChunk) {
      size_t end = std::min(stmts.size(), begin + kChunk);
      if (!PQenterPipelineMode(pg_)) return fail(what);
      for (size_t i = begin; i < end; ++i) {
        auto v = stmts[i].params.view();
        if (!PQsendQueryPrepared(pg_, names[i]->c_str(), stmts[i].params.size(), v.values.data(),
                                 v.lengths.data(), v.formats, 0))
          return fail(what);
      }
      if (!PQpipelineSync(pg_)) return fail(what);
      std::optional<core::Error> first;
      for (size_t i = begin; i < end; ++i) {
        Res r(PQgetResult(pg_));
        if (!r.get()) return fail(what);
        while (PGresult* extra = PQgetResult(pg_)) PQclear(extra);  // up to the NULL after it
        if (first) continue;  // aborted by the error, or after it
        auto st = r.status();
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
          first = error(r.get(), what);
          continue;
        }
        auto cb = on_result(i, r);
        if (!cb.ok()) first = cb.error();
      }
      Res sync(PQgetResult(pg_));
      if (sync.status() != PGRES_PIPELINE_SYNC || !PQexitPipelineMode(pg_)) return fail(what);
      if (first) return *first;
    }
    return {};
  }

 private:
  // The name of the prepared statement for `sql`, preparing it now if needed.
  core::Result<const std::string*> prepared(std::string_view sql, const Params& p,
                                            const char* what) {
    auto it = names_.find(sql);
    if (it != names_.end()) return &it->second;
    std::string name = "dvs" + std::to_string(names_.size() + 1);
    std::string text(sql);
    auto r = check(Res(PQprepare(pg_, name.c_str(), text.c_str(), p.size(), p.types())), what);
    if (!r) return r.error();
    return &names_.emplace(std::move(text), std::move(name)).first->second;
  }

  core::Result<Res> check(Res r, const char* what) {
    auto st = r.status();
    if (r.get() && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
      // A write that committed (on its own, or COMMIT itself) ends a run of
      // refused writes.
      if (health_->failing.load(std::memory_order_relaxed) &&
          PQtransactionStatus(pg_) == PQTRANS_IDLE) {
        std::string_view tag = PQcmdStatus(r.get());
        if (tag.starts_with("INSERT") || tag.starts_with("UPDATE") ||
            tag.starts_with("DELETE") || tag.starts_with("COPY") || tag == "COMMIT")
          health_->write_succeeded();
      }
      return r;
    }
    return error(r.get(), what);
  }

  // A failure outside any result (sending, protocol): the connection is not
  // trusted any more.
  core::Error fail(const char* what) {
    broken_ = true;
    return error(nullptr, what);
  }

  // Maps a failure to an Errc. Constraint violations (SQLSTATE class 23:
  // unique, foreign key, not null, check) are conflict, as SQLITE_CONSTRAINT
  // is for SqliteStore; the detail is logged, never returned.
  core::Error error(const PGresult* r, const char* what) {
    if (PQstatus(pg_) != CONNECTION_OK) broken_ = true;
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string_view s = state ? state : "";
    if (s.starts_with("23")) return make_error(Errc::conflict, "already exists");
    // The primary message only: DETAIL may quote the row's values.
    const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string msg = clean_message(primary ? primary : PQerrorMessage(pg_), *url_);
    spdlog::error("postgres: {}: {} ({})", what, msg, s.empty() ? "no SQLSTATE" : s);
    // Storage that refuses writes until an operator acts: a full disk, a
    // read-only database or standby, I/O errors.
    if (s == "53100" || s == "25006" || s.starts_with("58")) {
      health_->write_failed(s);
      auto e = make_error(Errc::unavailable, "the database is unavailable");
      if (!s.starts_with("58")) e.retry_after_s = 30;
      return e;
    }
    // Unreachable, shutting down, out of resources, or busy with locks.
    if (broken_ || s.starts_with("08") || s.starts_with("53") || s.starts_with("57P") ||
        s == "40001" || s == "40P01" || s == "55P03" || s == "57014")
      return make_error(Errc::unavailable, "the database is unavailable");
    return make_error(Errc::internal, "database error");
  }

  PGconn* pg_;
  const std::string* url_;  // the store's, for scrubbing messages
  Health* health_;          // the store's
  std::unordered_map<std::string, std::string, SvHash, std::equal_to<>> names_;
  bool broken_ = false;
};

// ---- the pool ----

class PostgresStore::Pool {
 public:
  // Hands a connection back to the pool when it goes out of scope.
  class Lease {
   public:
    Lease(Pool* pool, Conn* c) : pool_(pool), c_(c) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), c_(std::exchange(o.c_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (c_) pool_->release(c_);
    }
    Conn& operator*() const { return *c_; }

   private:
    Pool* pool_;
    Conn* c_;
  };

  Pool(std::string url, int size, std::chrono::milliseconds timeout)
      : url_(std::move(url)), max_(static_cast<size_t>(size)), timeout_(timeout) {
    PGconn* pg = connect_pg(url_);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
      std::string msg = pg ? clean_message(PQerrorMessage(pg), url_) : "out of memory";
      PQfinish(pg);
      throw std::runtime_error("cannot connect to PostgreSQL at " + mask_db_password(url_) + ": " +
                               msg);
    }
    all_.push_back(std::make_unique<Conn>(pg, &url_, &health_));
    idle_.push_back(all_.back().get());
  }

  const Health& health() const { return health_; }

  PoolStats stats() {
    std::lock_guard lk(mu_);
    return PoolStats{max_, all_.size(), all_.size() - idle_.size()};
  }

  core::Result<Lease> acquire() {
    Conn* c = nullptr;
    {
      std::unique_lock lk(mu_);
      if (!cv_.wait_for(lk, timeout_,
                        [&] { return !idle_.empty() || all_.size() + opening_ < max_; })) {
        spdlog::warn("postgres: no free connection within {} ms (pool of {})", timeout_.count(),
                     max_);
        return make_error(Errc::unavailable, "the database is busy");
      }
      if (!idle_.empty()) {
        c = idle_.back();
        idle_.pop_back();
      } else {
        ++opening_;
      }
    }
    if (c) {
      auto st = c->revive();
      if (!st.ok()) {
        release(c);
        return st.error();
      }
      return Lease(this, c);
    }
    // A new connection, opened outside the lock: it takes a round trip or more.
    PGconn* pg = connect_pg(url_);
    std::unique_lock lk(mu_);
    --opening_;
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
      std::string msg = pg ? clean_message(PQerrorMessage(pg), url_) : "out of memory";
      PQfinish(pg);
      lk.unlock();
      cv_.notify_one();
      spdlog::error("postgres: cannot connect: {}", msg);
      return make_error(Errc::unavailable, "the database is unavailable");
    }
    all_.push_back(std::make_unique<Conn>(pg, &url_, &health_));
    return Lease(this, all_.back().get());
  }

 private:
  void release(Conn* c) {
    c->settle();
    {
      std::lock_guard lk(mu_);
      idle_.push_back(c);
    }
    cv_.notify_one();
  }

  const std::string url_;
  const size_t max_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> all_;  // every open connection (owned)
  std::vector<Conn*> idle_;                 // those not lent out
  Health health_;                           // shared by the connections
  size_t opening_ = 0;                      // being opened outside the lock
};

// ---- helpers for the methods ----

namespace {

using Conn = PostgresStore::Conn;

// BEGIN ... COMMIT, rolled back unless commit() succeeded.
class Tx {
 public:
  explicit Tx(Conn& c) : c_(c) { began_ = c_.simple("BEGIN", "begin"); }
  ~Tx() {
    if (began_.ok() && !done_) c_.rollback();
  }
  const core::Status& began() const { return began_; }
  core::Status commit() {
    auto s = c_.simple("COMMIT", "commit");
    if (s.ok()) done_ = true;
    return s;
  }

 private:
  Conn& c_;
  core::Status began_;
  bool done_ = false;
};

#define PG_TRY(expr)                   \
  do {                                 \
    auto _st = (expr);                 \
    if (!_st.ok()) return _st.error(); \
  } while (0)

// Borrows a pooled connection as `var` until the end of the scope.
#define PG_CONN(var)                            \
  auto var##_lease = pool_->acquire();          \
  if (!var##_lease) return var##_lease.error(); \
  Conn& var = **var##_lease

// Runs a statement into the Res `var`, returning on error.
#define PG_EXEC(var, conn, sql, params, what)            \
  auto var##_res = (conn).exec((sql), (params), (what)); \
  if (!var##_res) return var##_res.error();              \
  const Res& var = *var##_res

// Runs a statement whose result is not needed, returning on error.
#define PG_RUN(conn, sql, params, what)               \
  do {                                                \
    auto _res = (conn).exec((sql), (params), (what)); \
    if (!_res) return _res.error();                   \
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

core::ApiKey read_key(const Res& r, int i) {
  core::ApiKey k;
  k.id = r.str(i, 0);
  k.org_id = r.str(i, 1);
  k.name = r.str(i, 2);
  k.hint = r.str(i, 3);
  r.hash(i, 4, k.secret_hash);
  k.scopes = core::ScopeSet::from_string(r.str(i, 5));
  k.rate_limit_per_minute = static_cast<uint32_t>(r.i64(i, 6));
  k.created_at = r.i64(i, 7);
  k.created_by_id = r.opt_str(i, 8);
  k.created_by_email = r.opt_str(i, 9);
  k.expires_at = r.opt_i64(i, 10);
  k.last_used_at = r.opt_i64(i, 11);
  k.revoked_at = r.opt_i64(i, 12);
  k.replaced_by = r.opt_str(i, 13);
  return k;
}

constexpr const char* kLeadColumns =
    "id, org_id, name, email, phone, company, status, source, value_cents, currency, "
    "created_at, updated_at FROM leads ";

core::Lead read_lead(const Res& r, int i) {
  core::Lead l;
  l.id = r.str(i, 0);
  l.org_id = r.str(i, 1);
  l.name = r.str(i, 2);
  l.email = r.str(i, 3);
  l.phone = r.str(i, 4);
  l.company = r.str(i, 5);
  l.status = r.str(i, 6);
  l.source = r.str(i, 7);
  l.value_cents = r.i64(i, 8);
  l.currency = r.str(i, 9);
  l.created_at = r.i64(i, 10);
  l.updated_at = r.i64(i, 11);
  return l;
}

constexpr const char* kInvoiceColumns =
    "id, org_id, number, customer_name, customer_email, lead_id, status, currency, "
    "subtotal_cents, tax_cents, total_cents, amount_paid_cents, issued_at, due_at, paid_at, "
    "line_items, created_at, updated_at FROM invoices ";

core::Invoice read_invoice(const Res& r, int i) {
  core::Invoice v;
  v.id = r.str(i, 0);
  v.org_id = r.str(i, 1);
  v.number = r.str(i, 2);
  v.customer_name = r.str(i, 3);
  v.customer_email = r.str(i, 4);
  v.lead_id = r.opt_str(i, 5);
  v.status = r.str(i, 6);
  v.currency = r.str(i, 7);
  v.subtotal_cents = r.i64(i, 8);
  v.tax_cents = r.i64(i, 9);
  v.total_cents = r.i64(i, 10);
  v.amount_paid_cents = r.i64(i, 11);
  v.issued_at = r.i64(i, 12);
  v.due_at = r.i64(i, 13);
  v.paid_at = r.opt_i64(i, 14);
  v.line_items_json = r.str(i, 15);
  v.created_at = r.i64(i, 16);
  v.updated_at = r.i64(i, 17);
  return v;
}

// WHERE clause of a keyset page: org first (always, in `table_where`, which
// uses parameters $1..$(first_param - 1)), then the optional filters, then
// the cursor position. bind_page() adds the parameters in the same order.
// `t` qualifies column names ("" or "a.").
std::string page_sql(const char* columns, const char* table_where, int first_param,
                     const core::ListQuery& q, const std::string& t, const char* id_col) {
  int n = first_param;
  auto param = [&n] { return "$" + std::to_string(n++); };
  std::string sql = "SELECT ";
  sql += columns;
  sql += table_where;
  if (!q.status.empty()) sql += " AND " + t + "status = " + param();
  if (q.updated_since) sql += " AND " + t + "updated_at >= " + param();
  if (q.after_created_at) {
    sql += " AND (" + t + "created_at, " + t + id_col + ") < (" + param();
    sql += ", " + param() + ")";
  }
  sql += " ORDER BY " + t + "created_at DESC, " + t + id_col + " DESC LIMIT " + param();
  return sql;
}

void bind_page(Params& p, const core::ListQuery& q) {
  if (!q.status.empty()) p.text(q.status);
  if (q.updated_since) p.integer(*q.updated_since);
  if (q.after_created_at) {
    p.integer(*q.after_created_at);
    p.text(q.after_id);
  }
  p.integer(q.limit + 1);
}

template <typename T, typename Reader>
core::Page<T> read_page(const Res& r, const core::ListQuery& q, Reader read) {
  core::Page<T> page;
  int n = r.rows();
  int take = std::min(n, q.limit);
  page.items.reserve(static_cast<size_t>(std::max(take, 0)));
  for (int i = 0; i < take; ++i) page.items.push_back(read(r, i));
  page.has_more = n > q.limit;
  return page;
}

}  // namespace

// ---- construction, migrations ----

namespace {
// Requests whose epochs one read serves at most (a read costs the same for
// any number; the bound only caps the callbacks run in a row).
constexpr size_t kMaxEpochBatch = 4096;
// Look-ups one statement makes at most: each answer is matched to its
// request by a constant-time comparison with every row found, so the
// bound keeps that at a few thousand comparisons.
constexpr size_t kMaxKeyBatch = 64;
}  // namespace

// The filter of key hashes and its builder (surely_unknown_key() below).
struct PostgresStore::KeyFilterState {
  std::mutex mu;
  std::unique_ptr<core::KeyFilter> bloom;  // null until built
  uint64_t mark = 0;                       // every key stamped up to this is in `bloom`
  bool building = false;
  std::chrono::steady_clock::time_point retry_at{};
  std::atomic<bool> stopping{false};
  std::thread builder;
  ~KeyFilterState() {
    stopping = true;
    if (builder.joinable()) builder.join();
  }
};

PostgresStore::PostgresStore(std::string url, int pool_size,
                             std::chrono::milliseconds acquire_timeout) {
  if (pool_size < 1) throw std::runtime_error("the PostgreSQL pool size must be at least 1");
  pool_ = std::make_unique<Pool>(std::move(url), pool_size, acquire_timeout);
  filter_ = std::make_unique<KeyFilterState>();
  epoch_reader_ = std::make_unique<core::BatchWorker<std::function<void(Epochs)>>>(
      [this](std::vector<std::function<void(Epochs)>>& batch) {
        Epochs e;
        if (auto lease = pool_->acquire()) {
          auto r = (**lease).exec(
              "SELECT name, value FROM epochs "
              "UNION ALL SELECT 'key_inserts', value FROM key_inserts WHERE id = 1",
              Params(), "read epochs");
          if (r) {
            Epochs read;
            for (int i = 0; i < r->rows(); ++i) {
              const auto name = r->view(i, 0);
              auto& slot = name == "keys" ? read.keys : name == "docs" ? read.docs : read.key_inserts;
              slot = static_cast<uint64_t>(r->i64(i, 1));
            }
            // Both or neither: a cache at a half-read epoch would be wrong.
            if (read.keys && read.docs) e = read;
          }
          // Before anyone uses the mark: the filter is made current to it.
          if (e.key_inserts) learn_keys(**lease, *e.key_inserts);
        }
        for (auto& ready : batch) ready(e);
      },
      kMaxEpochBatch);
  key_finder_ = std::make_unique<core::BatchWorker<KeyFind>>(
      [this](std::vector<KeyFind>& batch) { find_keys(batch); }, kMaxKeyBatch);
}

PostgresStore::~PostgresStore() = default;

namespace {
// pg_advisory_xact_lock key of the migrations: "dvs_mig" in ASCII.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(28277735565388135)";
}  // namespace

namespace {
// Renders the stored JSON of rows that have none (rows written before
// migration 3), in batches, each batch one transaction.
template <typename Row>
core::Status fill_table(Conn& c, const std::string& select, std::string_view update,
                        Row (*read)(const Res&, int), std::string (*render)(const Row&)) {
  for (;;) {
    auto rows = c.exec(select, Params(), "fill documents");
    if (!rows) return rows.error();
    if (rows->rows() == 0) return {};
    std::vector<Stmt> stmts;
    for (int i = 0; i < rows->rows(); ++i) {
      Row row = read(*rows, i);
      stmts.push_back({update, Params().text(render(row)).text(row.id)});
    }
    Tx tx(c);
    PG_TRY(tx.began());
    PG_TRY(c.pipeline(stmts, "fill document", [](size_t, const Res&) -> core::Status { return {}; }));
    PG_TRY(tx.commit());
  }
}

core::Status fill_documents(Conn& c) {
  PG_TRY(fill_table<core::Lead>(c, std::string("SELECT ") + kLeadColumns + "WHERE doc IS NULL LIMIT 1000",
                                "UPDATE leads SET doc = $1 WHERE id = $2", read_lead,
                                core::lead_json));
  return fill_table<core::Invoice>(
      c, std::string("SELECT ") + kInvoiceColumns + "WHERE doc IS NULL LIMIT 1000",
      "UPDATE invoices SET doc = $1 WHERE id = $2", read_invoice, core::invoice_json);
}
}  // namespace

Result<int> PostgresStore::migrate() {
  PG_CONN(c);
  int applied = 0;
  for (const auto& m : postgres_migrations()) {
    // Each migration in its own transaction, as for SQLite. The lock is held
    // to the end of the transaction, so a second `serve` starting at the same
    // time waits, then finds the version recorded.
    Tx tx(c);
    PG_TRY(tx.began());
    PG_TRY(c.simple(kMigrationLock, "migration lock"));
    PG_TRY(
        c.simple("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                 "create schema_migrations"));
    {
      PG_EXEC(q, c, "SELECT 1 FROM schema_migrations WHERE version = $1",
              Params().integer(m.version), "check migration");
      if (q.rows() > 0) continue;
    }
    PG_TRY(c.simple(std::string(m.sql), "migration"));
    {
      PG_RUN(c,
             "INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, "
             "extract(epoch FROM now())::bigint)",
             Params().integer(m.version).text(m.name), "record migration");
    }
    PG_TRY(tx.commit());
    ++applied;
  }
  PG_TRY(fill_documents(c));
  return applied;
}

PoolStats PostgresStore::pool_stats() const { return pool_->stats(); }

WriteHealth PostgresStore::write_health() const {
  return WriteHealth{pool_->health().failures.load(), pool_->health().failing.load()};
}

Status PostgresStore::ping() {
  PG_CONN(c);
  PG_RUN(c, "SELECT count(*) FROM schema_migrations", Params(), "ping");
  return {};
}

// ---- organizations and users ----

Status PostgresStore::create_org(const core::Organization& org) {
  PG_CONN(c);
  PG_RUN(c, "INSERT INTO organizations(id, name, created_at) VALUES ($1, $2, $3)",
         Params().text(org.id).text(org.name).integer(org.created_at), "create org");
  return {};
}

Result<core::Organization> PostgresStore::get_org(std::string_view id) {
  PG_CONN(c);
  PG_EXEC(q, c, "SELECT id, name, created_at FROM organizations WHERE id = $1", Params().text(id),
          "get org");
  if (q.rows() == 0) return make_error(Errc::not_found, "no such organization");
  return core::Organization{q.str(0, 0), q.str(0, 1), q.i64(0, 2)};
}

Result<core::Organization> PostgresStore::find_org_by_name(std::string_view name) {
  PG_CONN(c);
  PG_EXEC(q, c,
          "SELECT id, name, created_at FROM organizations WHERE name = $1 ORDER BY created_at, "
          "id LIMIT 1",
          Params().text(name), "find org");
  if (q.rows() == 0) return make_error(Errc::not_found, "no such organization");
  return core::Organization{q.str(0, 0), q.str(0, 1), q.i64(0, 2)};
}

Status PostgresStore::create_user(const core::User& u) {
  PG_CONN(c);
  PG_RUN(c,
         "INSERT INTO users(id, org_id, email, role, password_hash, created_at) VALUES ($1, $2, "
         "$3, $4, $5, $6)",
         Params()
             .text(u.id)
             .text(u.org_id)
             .text(u.email)
             .text(core::role_name(u.role))
             .text_or_null(u.password_hash)
             .integer(u.created_at),
         "create user");
  return {};
}

namespace {
core::User read_user(const Res& q) {
  core::User u;
  u.id = q.str(0, 0);
  u.org_id = q.str(0, 1);
  u.email = q.str(0, 2);
  u.role = core::parse_role(q.str(0, 3)).value_or(core::Role::member);
  u.password_hash = q.str(0, 4);
  u.created_at = q.i64(0, 5);
  return u;
}
}  // namespace

Result<core::User> PostgresStore::find_user_by_email(std::string_view email) {
  PG_CONN(c);
  // lower() of "C"-collated text folds ASCII only: SQLite's NOCASE. The
  // expression matches the unique index users_email.
  PG_EXEC(q, c,
          "SELECT id, org_id, email, role, password_hash, created_at FROM users WHERE "
          "lower(email) = lower($1 COLLATE \"C\")",
          Params().text(email), "find user");
  if (q.rows() == 0) return make_error(Errc::not_found, "no such user");
  return read_user(q);
}

Result<core::User> PostgresStore::get_user(std::string_view id) {
  PG_CONN(c);
  PG_EXEC(q, c,
          "SELECT id, org_id, email, role, password_hash, created_at FROM users WHERE id = $1",
          Params().text(id), "get user");
  if (q.rows() == 0) return make_error(Errc::not_found, "no such user");
  return read_user(q);
}

Status PostgresStore::set_user_password(std::string_view user_id, const std::string& hash) {
  PG_CONN(c);
  PG_EXEC(q, c, "UPDATE users SET password_hash = $1 WHERE id = $2",
          Params().text(hash).text(user_id), "set password");
  if (q.affected() == 0) return make_error(Errc::not_found, "no such user");
  return {};
}

Result<bool> PostgresStore::empty() {
  PG_CONN(c);
  PG_EXEC(q, c, "SELECT EXISTS(SELECT 1 FROM organizations)", Params(), "empty");
  return !q.boolean(0, 0);
}

// ---- API keys ----

namespace {
core::Status insert_key_row(Conn& c, const core::ApiKey& k) {
  PG_RUN(c,
         "INSERT INTO api_keys(id, org_id, name, hint, secret_hash, scopes, "
         "rate_limit_per_minute, created_at, created_by, expires_at, last_used_at, revoked_at, "
         "replaced_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
         Params()
             .text(k.id)
             .text(k.org_id)
             .text(k.name)
             .text(k.hint)
             .bytes(k.secret_hash.data(), k.secret_hash.size())
             .text(k.scopes.to_string())
             .integer(k.rate_limit_per_minute)
             .integer(k.created_at)
             .opt_text(k.created_by_id)
             .opt_int(k.expires_at)
             .opt_int(k.last_used_at)
             .opt_int(k.revoked_at)
             .opt_text(k.replaced_by),
         "insert key");
  return {};
}

const std::string& get_key_sql() {
  static const std::string sql =
      std::string("SELECT ") + kKeyColumns + "WHERE k.id = $1 AND ($2 = '' OR k.org_id = $2)";
  return sql;
}

core::Result<core::ApiKey> get_key_on(Conn& c, std::string_view org_id, std::string_view id) {
  PG_EXEC(q, c, get_key_sql(), Params().text(id).text(org_id), "get key");
  if (q.rows() == 0) return make_error(Errc::not_found, "no such key");
  return read_key(q, 0);
}
}  // namespace

namespace {
core::Status insert_audit_row(Conn& c, const core::AuditEvent& e) {
  PG_RUN(c,
         "INSERT INTO audit_events(id, org_id, type, actor_user_id, key_id, ip, created_at) "
         "VALUES ($1, $2, $3, $4, $5, $6, $7)",
         Params()
             .text(e.id)
             .text(e.org_id)
             .text(e.type)
             .opt_text(e.actor_user_id)
             .text(e.key_id)
             .text(e.ip)
             .integer(e.created_at),
         "append audit");
  return {};
}
}  // namespace

Status PostgresStore::insert_key(const core::ApiKey& k, const core::AuditEvent* audit) {
  PG_CONN(c);
  if (!audit) return insert_key_row(c, k);
  Tx tx(c);
  PG_TRY(tx.began());
  PG_TRY(insert_key_row(c, k));
  PG_TRY(insert_audit_row(c, *audit));
  return tx.commit();
}

Result<core::ApiKey> PostgresStore::find_key_by_hash(const core::KeyHash& hash) {
  static const std::string sql = std::string("SELECT ") + kKeyColumnsNoEmail + "WHERE k.secret_hash = $1";
  PG_CONN(c);
  PG_EXEC(q, c, sql, Params().bytes(hash.data(), hash.size()), "find key");
  if (q.rows() == 0) return make_error(Errc::not_found, "no such key");
  auto k = read_key(q, 0);
  // The index found it by equality already; compare again in constant time so
  // no code path ever decides on a secret's hash with an early-exit compare.
  if (!core::hash_equal(k.secret_hash, hash)) return make_error(Errc::not_found, "no such key");
  return k;
}

// ---- epochs (migration 4) ----

namespace {
// The epochs of the read scope open on this thread (read when first asked,
// unless given).
struct ScopeEpochs {
  const PostgresStore* store = nullptr;
  bool read = false;
  Store::Epochs epochs;
};
thread_local ScopeEpochs t_scope;

class PgReadScope final : public Store::ReadScope {
 public:
  explicit PgReadScope(ScopeEpochs mine) : outer_(t_scope) { t_scope = std::move(mine); }
  ~PgReadScope() override { t_scope = outer_; }
  PgReadScope(const PgReadScope&) = delete;
  PgReadScope& operator=(const PgReadScope&) = delete;

 private:
  ScopeEpochs outer_;
};
}  // namespace

std::unique_ptr<Store::ReadScope> PostgresStore::read_scope() {
  return std::make_unique<PgReadScope>(ScopeEpochs{this, false, {}});
}

std::unique_ptr<Store::ReadScope> PostgresStore::read_scope_at(const Epochs& epochs) {
  return std::make_unique<PgReadScope>(ScopeEpochs{this, true, epochs});
}

void PostgresStore::read_epochs_async(std::function<void(Epochs)> ready) {
  epoch_reader_->submit(std::move(ready));
}

// Outside a scope given its epochs: queued with the others, and waited for.
Store::Epochs PostgresStore::epochs() {
  if (t_scope.store == this && t_scope.read) return t_scope.epochs;
  std::promise<Epochs> read;
  auto answer = read.get_future();
  read_epochs_async([&read](Epochs e) { read.set_value(e); });
  Epochs e = answer.get();
  if (t_scope.store == this) {
    t_scope.epochs = e;
    t_scope.read = true;
  }
  return e;
}

std::optional<uint64_t> PostgresStore::key_epoch() { return epochs().keys; }

// ---- the filter of key hashes (migration 5) ----

bool PostgresStore::surely_unknown_key(const core::KeyHash& hash) {
  if (t_scope.store != this || !t_scope.read || !t_scope.epochs.key_inserts) return false;
  const uint64_t mark = *t_scope.epochs.key_inserts;
  std::lock_guard lk(filter_->mu);
  if (!filter_->bloom) {
    start_filter_build_locked();
    return false;
  }
  // Behind the scope's mark (the epoch reader could not learn): unsure.
  // At or past it: it holds every key committed before the scope's read.
  if (filter_->mark < mark) return false;
  return !filter_->bloom->may_contain(hash);
}

bool PostgresStore::key_filter_ready() {
  std::lock_guard lk(filter_->mu);
  return filter_->bloom != nullptr;
}

void PostgresStore::learn_keys(Conn& c, uint64_t mark) {
  const core::KeyFilter* learning = nullptr;
  uint64_t from = 0;
  {
    std::lock_guard lk(filter_->mu);
    if (!filter_->bloom || mark == filter_->mark) return;
    if (mark < filter_->mark) {
      // The mark went back (a restored backup): keys stamped at marks the
      // filter has passed may be new. Unsure until built again.
      filter_->bloom.reset();
      start_filter_build_locked();
      return;
    }
    learning = filter_->bloom.get();
    from = filter_->mark;
  }
  // Read without the lock, so requests asking the filter meanwhile do not
  // wait for this round trip.
  auto r = c.exec("SELECT secret_hash, insert_seq FROM api_keys WHERE insert_seq > $1",
                  Params().integer(static_cast<int64_t>(from)), "key filter");
  if (!r) return;  // stays behind: unknown keys are looked up meanwhile
  std::lock_guard lk(filter_->mu);
  // A build installed meanwhile has its own mark: the next read learns for it.
  if (filter_->bloom.get() != learning) return;
  uint64_t top = mark;
  for (int i = 0; i < r->rows(); ++i) {
    core::KeyHash h{};
    r->hash(i, 0, h);
    filter_->bloom->add(h);
    top = std::max(top, static_cast<uint64_t>(r->i64(i, 1)));
  }
  // Every key stamped up to `top` is visible to this read: a stamp commits
  // only after every lower one has (the mark's row lock).
  filter_->mark = top;
  // Exact still, with more false positives: used until the new one is in.
  if (filter_->bloom->full()) start_filter_build_locked();
}

void PostgresStore::start_filter_build_locked() {
  auto& f = *filter_;
  if (f.building || f.stopping || std::chrono::steady_clock::now() < f.retry_at) return;
  f.building = true;
  if (f.builder.joinable()) f.builder.join();  // done: it cleared the flag
  f.builder = std::thread([this] { build_filter(); });
}

// Every hash and the mark, in one REPEATABLE READ snapshot, 50,000 keys a
// FETCH (a million keys: about a second; unknown keys are looked up
// meanwhile).
void PostgresStore::build_filter() {
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<core::KeyFilter> bloom;
  uint64_t mark = 0;
  int statements = 0;
  core::Status st = [&]() -> core::Status {
    PG_CONN(c);
    PG_TRY(c.simple("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "key filter"));
    PG_EXEC(m, c, "SELECT value, (SELECT count(*) FROM api_keys) FROM key_inserts WHERE id = 1",
            Params(), "key filter");
    if (m.rows() != 1) return make_error(Errc::internal, "no key-insert mark");
    mark = static_cast<uint64_t>(m.i64(0, 0));
    bloom = std::make_unique<core::KeyFilter>(std::max<size_t>(1024, 2 * static_cast<size_t>(m.i64(0, 1))));
    // A cursor over the table in its own order: no index, no sort.
    PG_TRY(c.simple("DECLARE key_filter NO SCROLL CURSOR FOR SELECT secret_hash FROM api_keys",
                    "key filter"));
    for (;;) {
      if (filter_->stopping) return make_error(Errc::unavailable, "closing");
      ++statements;
      auto q = c.query("FETCH 50000 FROM key_filter", "key filter");
      if (!q) return q.error();
      if (q->rows() == 0) break;
      for (int i = 0; i < q->rows(); ++i) {
        core::KeyHash h{};
        q->hash(i, 0, h);
        bloom->add(h);
      }
    }
    return c.simple("COMMIT", "key filter");
  }();
  std::lock_guard lk(filter_->mu);
  filter_->building = false;
  if (!st.ok()) {
    if (!filter_->stopping)
      spdlog::warn("postgres: key filter not built: {}", st.error().message);
    filter_->retry_at = started + std::chrono::seconds(1);
    return;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  spdlog::info("postgres: key filter built: {} keys in {} ms ({} statements)", bloom->size(), ms,
               statements);
  filter_->bloom = std::move(bloom);
  filter_->mark = mark;
}

void PostgresStore::find_key_async(const core::KeyHash& hash,
                                   std::function<void(Result<core::ApiKey>)> ready) {
  key_finder_->submit(KeyFind{hash, std::move(ready)});
}

void PostgresStore::find_keys(std::vector<KeyFind>& batch) {
  static const std::string sql =
      std::string("SELECT ") + kKeyColumnsNoEmail +
      "WHERE k.secret_hash = ANY(ARRAY(SELECT decode(h, 'hex') FROM unnest($1::text[]) h))";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hashes = "{";
  for (const auto& f : batch) {
    if (hashes.size() > 1) hashes.push_back(',');
    for (unsigned char b : f.hash) {
      hashes.push_back(kHex[b >> 4]);
      hashes.push_back(kHex[b & 15]);
    }
  }
  hashes.push_back('}');
  std::vector<core::ApiKey> found;
  core::Status st = [&]() -> core::Status {
    PG_CONN(c);
    PG_EXEC(q, c, sql, Params().text(hashes), "find keys");
    for (int i = 0; i < q.rows(); ++i) found.push_back(read_key(q, i));
    return {};
  }();
  for (auto& f : batch) {
    if (!st.ok()) {
      f.ready(st.error());
      continue;
    }
    // Every row is compared, in constant time, whichever matches.
    const core::ApiKey* match = nullptr;
    for (const auto& k : found)
      if (core::hash_equal(k.secret_hash, f.hash)) match = &k;
    if (match)
      f.ready(*match);
    else
      f.ready(make_error(Errc::not_found, "no such key"));
  }
}

Result<core::ApiKey> PostgresStore::get_key(std::string_view org_id, std::string_view id) {
  PG_CONN(c);
  return get_key_on(c, org_id, id);
}

Result<std::vector<core::ApiKey>> PostgresStore::list_keys(std::string_view org_id) {
  static const std::string sql = std::string("SELECT ") + kKeyColumns +
                                 "WHERE k.org_id = $1 ORDER BY k.created_at DESC, k.id DESC";
  PG_CONN(c);
  PG_EXEC(q, c, sql, Params().text(org_id), "list keys");
  std::vector<core::ApiKey> out;
  out.reserve(static_cast<size_t>(q.rows()));
  for (int i = 0; i < q.rows(); ++i) out.push_back(read_key(q, i));
  return out;
}

Result<core::ApiKey> PostgresStore::revoke_key(std::string_view org_id, std::string_view id,
                                               int64_t at, const core::AuditEvent* audit) {
  PG_CONN(c);
  {
    Tx tx(c);
    PG_TRY(tx.began());
    PG_EXEC(q, c,
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND ($3 = '' OR org_id = $3) AND "
            "(revoked_at IS NULL OR revoked_at > $1)",
            Params().integer(at).text(id).text(org_id), "revoke key");
    if (audit && q.affected() > 0) PG_TRY(insert_audit_row(c, *audit));
    PG_TRY(tx.commit());
  }
  return get_key_on(c, org_id, id);
}

Status PostgresStore::rotate_key(std::string_view org_id, std::string_view old_id,
                                 const core::ApiKey& replacement, int64_t stop_at, int64_t now,
                                 const core::AuditEvent* audit) {
  PG_CONN(c);
  Tx tx(c);
  PG_TRY(tx.began());
  {
    // Only an active key can be rotated. The row lock taken here makes a
    // concurrent rotation of the same key wait, then find it replaced.
    PG_EXEC(q, c,
            "UPDATE api_keys SET replaced_by = $1, "
            "revoked_at = CASE WHEN $2 <= $3 THEN $3 ELSE revoked_at END, "
            "expires_at = CASE WHEN $2 > $3 AND (expires_at IS NULL OR expires_at > $2) THEN $2 "
            "ELSE expires_at END "
            "WHERE id = $4 AND ($5 = '' OR org_id = $5) AND replaced_by IS NULL AND "
            "(revoked_at IS NULL OR revoked_at > $3) AND (expires_at IS NULL OR expires_at > $3)",
            Params().text(replacement.id).integer(stop_at).integer(now).text(old_id).text(org_id),
            "rotate key");
    if (q.affected() == 0) return make_error(Errc::not_found, "no such active key");
  }
  PG_TRY(insert_key_row(c, replacement));
  if (audit) PG_TRY(insert_audit_row(c, *audit));
  return tx.commit();
}

Status PostgresStore::touch_keys(const std::vector<std::pair<std::string, int64_t>>& uses) {
  if (uses.empty()) return {};
  constexpr std::string_view kSql =
      "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR "
      "last_used_at < $1)";
  std::vector<Stmt> stmts;
  stmts.reserve(uses.size());
  for (const auto& [id, at] : uses) stmts.push_back({kSql, Params().integer(at).text(id)});
  PG_CONN(c);
  Tx tx(c);
  PG_TRY(tx.began());
  PG_TRY(c.pipeline(stmts, "touch keys", [](size_t, const Res&) { return core::Status(); }));
  return tx.commit();
}

Result<int64_t> PostgresStore::count_active_keys(std::string_view org_id, int64_t now) {
  PG_CONN(c);
  PG_EXEC(q, c,
          "SELECT count(*) FROM api_keys WHERE org_id = $1 AND (revoked_at IS NULL OR "
          "revoked_at > $2) AND (expires_at IS NULL OR expires_at > $2)",
          Params().text(org_id).integer(now), "count keys");
  return q.i64(0, 0);
}

Result<std::vector<core::ApiKey>> PostgresStore::claim_expired_keys(std::string_view org_id,
                                                                    int64_t now) {
  // One statement marks and returns the rows. A concurrent caller's UPDATE
  // waits for the row locks, then re-checks `NOT expiry_audited` on the new
  // row versions and skips them, so each key is returned once. A key revoked
  // before it expired never "expires".
  PG_CONN(c);
  PG_EXEC(q, c,
          "WITH claimed AS (UPDATE api_keys SET expiry_audited = true WHERE org_id = $1 AND NOT "
          "expiry_audited AND expires_at <= $2 AND (revoked_at IS NULL OR revoked_at > "
          "expires_at) RETURNING id, org_id, name, hint, secret_hash, scopes, "
          "rate_limit_per_minute, created_at, created_by, expires_at, last_used_at, revoked_at, "
          "replaced_by) "
          "SELECT k.id, k.org_id, k.name, k.hint, k.secret_hash, k.scopes, "
          "k.rate_limit_per_minute, k.created_at, k.created_by, u.email, k.expires_at, "
          "k.last_used_at, k.revoked_at, k.replaced_by FROM claimed k LEFT JOIN users u ON u.id "
          "= k.created_by ORDER BY k.created_at, k.id",
          Params().text(org_id).integer(now), "claim expired keys");
  std::vector<core::ApiKey> out;
  out.reserve(static_cast<size_t>(q.rows()));
  for (int i = 0; i < q.rows(); ++i) out.push_back(read_key(q, i));
  return out;
}

// ---- sessions ----

Status PostgresStore::create_session(const core::Session& s) {
  PG_CONN(c);
  PG_RUN(c,
         "INSERT INTO sessions(token_hash, user_id, created_at, last_seen_at, ip, user_agent) "
         "VALUES ($1, $2, $3, $4, $5, $6)",
         Params()
             .bytes(s.token_hash.data(), s.token_hash.size())
             .text(s.user_id)
             .integer(s.created_at)
             .integer(s.last_seen_at)
             .text(s.ip)
             .text(s.user_agent),
         "create session");
  return {};
}

Result<core::Session> PostgresStore::find_session(const core::KeyHash& h) {
  PG_CONN(c);
  PG_EXEC(q, c,
          "SELECT token_hash, user_id, created_at, last_seen_at, ip, user_agent FROM sessions "
          "WHERE token_hash = $1",
          Params().bytes(h.data(), h.size()), "find session");
  if (q.rows() == 0) return make_error(Errc::not_found, "no such session");
  core::Session s;
  q.hash(0, 0, s.token_hash);
  if (!core::hash_equal(s.token_hash, h)) return make_error(Errc::not_found, "no such session");
  s.user_id = q.str(0, 1);
  s.created_at = q.i64(0, 2);
  s.last_seen_at = q.i64(0, 3);
  s.ip = q.str(0, 4);
  s.user_agent = q.str(0, 5);
  return s;
}

Status PostgresStore::touch_session(const core::KeyHash& h, int64_t at) {
  PG_CONN(c);
  PG_RUN(c, "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND last_seen_at < $1",
         Params().integer(at).bytes(h.data(), h.size()), "touch session");
  return {};
}

Status PostgresStore::delete_session(const core::KeyHash& h) {
  PG_CONN(c);
  PG_RUN(c, "DELETE FROM sessions WHERE token_hash = $1", Params().bytes(h.data(), h.size()),
         "delete session");
  return {};
}

Status PostgresStore::delete_stale_sessions(int64_t idle_before, int64_t created_before) {
  PG_CONN(c);
  PG_RUN(c, "DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2",
         Params().integer(idle_before).integer(created_before), "delete stale sessions");
  return {};
}

// ---- leads ----

Result<core::Page<core::Lead>> PostgresStore::list_leads(std::string_view org_id,
                                                         const core::ListQuery& q) {
  Params p;
  p.text(org_id);
  bind_page(p, q);
  PG_CONN(c);
  PG_EXEC(r, c, page_sql(kLeadColumns, "WHERE org_id = $1", 2, q, "", "id"), p, "list leads");
  return read_page<core::Lead>(r, q, read_lead);
}

Result<core::Lead> PostgresStore::get_lead(std::string_view org_id, std::string_view id) {
  static const std::string sql =
      std::string("SELECT ") + kLeadColumns + "WHERE id = $1 AND org_id = $2";
  PG_CONN(c);
  PG_EXEC(r, c, sql, Params().text(id).text(org_id), "get lead");
  if (r.rows() == 0) return make_error(Errc::not_found, "no such lead");
  return read_lead(r, 0);
}

Status PostgresStore::upsert_leads(const std::vector<core::Lead>& leads) {
  if (leads.empty()) return {};
  // Replaces every column of a lead of the same organization. A lead of
  // another organization is left alone (the WHERE), and no row changed means
  // the id is taken: the batch fails and rolls back.
  constexpr std::string_view kSql =
      "INSERT INTO leads(id, org_id, name, email, phone, company, status, source, value_cents, "
      "currency, created_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
      "$11, $12, $13) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, "
      "phone = EXCLUDED.phone, company = EXCLUDED.company, status = EXCLUDED.status, "
      "source = EXCLUDED.source, value_cents = EXCLUDED.value_cents, currency = "
      "EXCLUDED.currency, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, "
      "doc = EXCLUDED.doc WHERE leads.org_id = EXCLUDED.org_id";
  std::vector<Stmt> stmts;
  stmts.reserve(leads.size());
  for (const auto& l : leads) {
    Params p;
    p.text(l.id).text(l.org_id).text(l.name).text_or_null(l.email).text_or_null(l.phone);
    p.text_or_null(l.company).text(l.status).text_or_null(l.source).integer(l.value_cents);
    p.text(l.currency).integer(l.created_at).integer(l.updated_at).text(core::lead_json(l));
    stmts.push_back({kSql, std::move(p)});
  }
  PG_CONN(c);
  Tx tx(c);
  PG_TRY(tx.began());
  PG_TRY(c.pipeline(stmts, "upsert leads", [&](size_t i, const Res& r) -> core::Status {
    if (r.affected() == 0)
      return make_error(Errc::conflict, "id " + leads[i].id + " is already taken");
    return {};
  }));
  return tx.commit();
}

// ---- invoices ----

Result<core::Page<core::Invoice>> PostgresStore::list_invoices(std::string_view org_id,
                                                               const core::ListQuery& q) {
  Params p;
  p.text(org_id);
  bind_page(p, q);
  PG_CONN(c);
  PG_EXEC(r, c, page_sql(kInvoiceColumns, "WHERE org_id = $1", 2, q, "", "id"), p, "list invoices");
  return read_page<core::Invoice>(r, q, read_invoice);
}

Result<core::Invoice> PostgresStore::get_invoice(std::string_view org_id, std::string_view id) {
  static const std::string sql =
      std::string("SELECT ") + kInvoiceColumns + "WHERE id = $1 AND org_id = $2";
  PG_CONN(c);
  PG_EXEC(r, c, sql, Params().text(id).text(org_id), "get invoice");
  if (r.rows() == 0) return make_error(Errc::not_found, "no such invoice");
  return read_invoice(r, 0);
}

namespace {
core::Document read_doc(const Res& r, int i) {
  return core::Document{r.str(i, 0), r.i64(i, 1), r.str(i, 2)};
}

// Rows of (id, created_at, doc), the documents copied straight from the
// result into page.json.
void read_doc_page(const Res& r, const core::ListQuery& q, core::DocPage& page) {
  const int n = r.rows();
  const int take = std::min(n, q.limit);
  for (int i = 0; i < take; ++i) {
    if (page.count++) page.json.push_back(',');
    page.json.append(r.view(i, 2));
  }
  page.has_more = n > q.limit;
  if (take > 0) {
    page.last_created_at = r.i64(take - 1, 1);
    page.last_id = r.str(take - 1, 0);
  }
}
}  // namespace

// The document cache (core/doc_cache.hpp), as on SQLite: the document epoch
// first (a read started after the request arrived, so any change committed
// before it has raised the epoch), then the cache; a miss reads the database
// and keeps what it read under that epoch.
Status PostgresStore::list_docs(char kind, std::string_view org_id, const core::ListQuery& q,
                                core::DocPage& page, const char* from_table) {
  const std::optional<uint64_t> epoch = doc_cache_ ? epochs().docs : std::nullopt;
  std::string key;
  if (list_from_cache(kind, org_id, q, epoch, page, key)) return {};
  Params p;
  p.text(org_id);
  bind_page(p, q);
  PG_CONN(c);
  // Built on a miss only: a hit needs no SQL text.
  PG_EXEC(r, c, page_sql(from_table, "WHERE org_id = $1", 2, q, "", "id"), p, "list documents");
  const size_t from = page.json.size();
  const int count_before = page.count;
  read_doc_page(r, q, page);
  if (epoch) doc_cache_->put(key, core::cached_page(page, from, count_before), *epoch);
  return {};
}

Result<core::Document> PostgresStore::get_doc(char kind, std::string_view org_id,
                                              std::string_view id, const std::string& sql,
                                              const char* what) {
  const std::optional<uint64_t> epoch = doc_cache_ ? epochs().docs : std::nullopt;
  std::string key;
  if (auto hit = doc_from_cache(kind, org_id, id, epoch, key)) return std::move(*hit);
  PG_CONN(c);
  PG_EXEC(r, c, sql, Params().text(id).text(org_id), what);
  if (r.rows() == 0) return make_error(Errc::not_found, std::string("no such ") + what);
  auto doc = read_doc(r, 0);
  // Found documents only: a flood of made-up ids would only evict good ones.
  if (epoch) doc_cache_->put(key, core::cached_doc(doc), *epoch);
  return doc;
}

Status PostgresStore::list_lead_docs(std::string_view org_id, const core::ListQuery& q,
                                     core::DocPage& page) {
  return list_docs('L', org_id, q, page, "id, created_at, doc FROM leads ");
}

Result<core::Document> PostgresStore::get_lead_doc(std::string_view org_id, std::string_view id) {
  static const std::string kSql =
      "SELECT id, created_at, doc FROM leads WHERE id = $1 AND org_id = $2";
  return get_doc('l', org_id, id, kSql, "lead");
}

Status PostgresStore::list_invoice_docs(std::string_view org_id, const core::ListQuery& q,
                                        core::DocPage& page) {
  return list_docs('I', org_id, q, page, "id, created_at, doc FROM invoices ");
}

Result<core::Document> PostgresStore::get_invoice_doc(std::string_view org_id,
                                                      std::string_view id) {
  static const std::string kSql =
      "SELECT id, created_at, doc FROM invoices WHERE id = $1 AND org_id = $2";
  return get_doc('i', org_id, id, kSql, "invoice");
}

Status PostgresStore::upsert_invoices(const std::vector<core::Invoice>& invoices) {
  if (invoices.empty()) return {};
  constexpr std::string_view kOwner = "SELECT org_id FROM invoices WHERE id = $1";
  constexpr std::string_view kLead = "SELECT 1 FROM leads WHERE id = $1 AND org_id = $2";
  constexpr std::string_view kUpsert =
      "INSERT INTO invoices(id, org_id, number, customer_name, customer_email, lead_id, status, "
      "currency, subtotal_cents, tax_cents, total_cents, amount_paid_cents, issued_at, due_at, "
      "paid_at, line_items, created_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
      "$9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT (id) DO UPDATE SET number = "
      "EXCLUDED.number, customer_name = EXCLUDED.customer_name, customer_email = "
      "EXCLUDED.customer_email, lead_id = EXCLUDED.lead_id, status = EXCLUDED.status, currency "
      "= EXCLUDED.currency, subtotal_cents = EXCLUDED.subtotal_cents, tax_cents = "
      "EXCLUDED.tax_cents, total_cents = EXCLUDED.total_cents, amount_paid_cents = "
      "EXCLUDED.amount_paid_cents, issued_at = EXCLUDED.issued_at, due_at = EXCLUDED.due_at, "
      "paid_at = EXCLUDED.paid_at, line_items = EXCLUDED.line_items, created_at = "
      "EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, doc = EXCLUDED.doc WHERE "
      "invoices.org_id = EXCLUDED.org_id";
  // Per invoice, the checks SqliteStore makes, in its order: the id is not
  // another organization's, the lead is one of the same organization; then
  // the upsert. The first failure in this order is the batch's result.
  enum class Kind { owner, lead, upsert };
  std::vector<Stmt> stmts;
  std::vector<std::pair<Kind, size_t>> what;  // per statement: its check and invoice
  stmts.reserve(invoices.size() * 3);
  for (size_t i = 0; i < invoices.size(); ++i) {
    const auto& v = invoices[i];
    if (v.lead_id) {
      // Checked before the upsert: an unknown lead would otherwise fail the
      // upsert's foreign key first and read as a conflict.
      stmts.push_back({kOwner, Params().text(v.id)});
      what.emplace_back(Kind::owner, i);
      stmts.push_back({kLead, Params().text(*v.lead_id).text(v.org_id)});
      what.emplace_back(Kind::lead, i);
    }
    Params p;
    p.text(v.id).text(v.org_id).text(v.number).text(v.customer_name);
    p.text_or_null(v.customer_email).opt_text(v.lead_id).text(v.status).text(v.currency);
    p.integer(v.subtotal_cents).integer(v.tax_cents).integer(v.total_cents);
    p.integer(v.amount_paid_cents).integer(v.issued_at).integer(v.due_at).opt_int(v.paid_at);
    p.text(v.line_items_json).integer(v.created_at).integer(v.updated_at);
    p.text(core::invoice_json(v));
    stmts.push_back({kUpsert, std::move(p)});
    what.emplace_back(Kind::upsert, i);
  }
  PG_CONN(c);
  Tx tx(c);
  PG_TRY(tx.began());
  PG_TRY(c.pipeline(stmts, "upsert invoices", [&](size_t s, const Res& r) -> core::Status {
    const auto& v = invoices[what[s].second];
    switch (what[s].first) {
      case Kind::owner:
        if (r.rows() > 0 && r.str(0, 0) != v.org_id)
          return make_error(Errc::conflict, "id " + v.id + " is already taken");
        return {};
      case Kind::lead:
        if (r.rows() == 0)
          return make_error(Errc::invalid_request, "no such lead: " + *v.lead_id, "lead_id");
        return {};
      case Kind::upsert:
        if (r.affected() == 0)
          return make_error(Errc::conflict, "id " + v.id + " is already taken");
        return {};
    }
    return {};
  }));
  return tx.commit();
}

// ---- request log and audit ----

namespace {
// `v` as a column of COPY's text format: backslash, tab, newline and
// carriage return escaped; NUL, which no PostgreSQL text can hold, written
// as U+FFFD (one such byte must not make the server refuse a whole batch).
void append_copy_text(std::string& out, std::string_view v) {
  for (char ch : v) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\0': out += "\xEF\xBF\xBD"; break;
      default: out.push_back(ch);
    }
  }
}
}  // namespace

// One COPY for the whole batch: about 30 % less of the server's CPU than
// multi-row INSERTs with ten parameters a row (docs/performance.md, change
// 28), and no statement to prepare per batch size.
Status PostgresStore::append_requests(const std::vector<core::RequestLogEntry>& entries) {
  if (entries.empty()) return {};
  static const std::string kCopy =
      "COPY request_log(request_id, org_id, key_id, method, path, status, latency_us, "
      "client_ip, user_agent, created_at) FROM STDIN";
  std::string data;
  data.reserve(entries.size() * 192);
  for (const auto& e : entries) {
    for (std::string_view col : {std::string_view(e.request_id), std::string_view(e.org_id),
                                 std::string_view(e.key_id), std::string_view(e.method),
                                 std::string_view(e.path)}) {
      append_copy_text(data, col);
      data.push_back('\t');
    }
    core::append_int(data, e.status);
    data.push_back('\t');
    core::append_int(data, e.latency_us);
    data.push_back('\t');
    append_copy_text(data, e.client_ip);
    data.push_back('\t');
    append_copy_text(data, e.user_agent);
    data.push_back('\t');
    core::append_int(data, e.created_at);
    data.push_back('\n');
  }
  PG_CONN(c);
  return c.copy_in(kCopy, data, "append requests");
}

Result<core::Page<core::RequestLogEntry>> PostgresStore::list_requests(std::string_view org_id,
                                                                       std::string_view key_id,
                                                                       const core::ListQuery& q) {
  Params p;
  p.text(org_id).text(key_id);
  bind_page(p, q);
  PG_CONN(c);
  PG_EXEC(r, c,
          page_sql("request_id, org_id, key_id, method, path, status, latency_us, client_ip, "
                   "user_agent, created_at FROM request_log ",
                   "WHERE org_id = $1 AND key_id = $2", 3, q, "", "request_id"),
          p, "list requests");
  return read_page<core::RequestLogEntry>(r, q, [](const Res& x, int i) {
    core::RequestLogEntry e;
    e.request_id = x.str(i, 0);
    e.org_id = x.str(i, 1);
    e.key_id = x.str(i, 2);
    e.method = x.str(i, 3);
    e.path = x.str(i, 4);
    e.status = static_cast<int>(x.i64(i, 5));
    e.latency_us = x.i64(i, 6);
    e.client_ip = x.str(i, 7);
    e.user_agent = x.str(i, 8);
    e.created_at = x.i64(i, 9);
    return e;
  });
}

Result<std::vector<std::pair<int64_t, int64_t>>> PostgresStore::hourly_counts(
    std::string_view org_id, std::string_view key_id, int64_t since) {
  PG_CONN(c);
  PG_EXEC(q, c,
          "SELECT created_at / 3600 * 3600 AS h, count(*) FROM request_log WHERE key_id = $1 AND "
          "org_id = $2 AND created_at >= $3 GROUP BY h ORDER BY h",
          Params().text(key_id).text(org_id).integer(since), "hourly counts");
  std::vector<std::pair<int64_t, int64_t>> out;
  out.reserve(static_cast<size_t>(q.rows()));
  for (int i = 0; i < q.rows(); ++i) out.emplace_back(q.i64(i, 0), q.i64(i, 1));
  return out;
}

Status PostgresStore::append_audit(const core::AuditEvent& e) {
  PG_CONN(c);
  return insert_audit_row(c, e);
}

Result<core::Page<core::AuditEvent>> PostgresStore::list_audit(std::string_view org_id,
                                                               const core::ListQuery& q) {
  Params p;
  p.text(org_id);
  bind_page(p, q);
  PG_CONN(c);
  PG_EXEC(r, c,
          page_sql("a.id, a.org_id, a.type, a.actor_user_id, u.email, a.key_id, a.ip, "
                   "a.created_at, k.name FROM audit_events a LEFT JOIN users u ON u.id = "
                   "a.actor_user_id LEFT JOIN api_keys k ON k.id = a.key_id ",
                   "WHERE a.org_id = $1", 2, q, "a.", "id"),
          p, "list audit");
  return read_page<core::AuditEvent>(r, q, [](const Res& x, int i) {
    core::AuditEvent e;
    e.id = x.str(i, 0);
    e.org_id = x.str(i, 1);
    e.type = x.str(i, 2);
    e.actor_user_id = x.opt_str(i, 3);
    e.actor_email = x.opt_str(i, 4);
    e.key_id = x.str(i, 5);
    e.ip = x.str(i, 6);
    e.created_at = x.i64(i, 7);
    e.key_name = x.str(i, 8);
    return e;
  });
}

}  // namespace dvs::store
