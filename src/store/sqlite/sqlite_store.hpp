#pragma once
// Store on SQLite 3 in WAL mode: the embedded default.
//
// Thread-safe. Each thread that calls in gets its own connection (opened on
// first use, closed when the thread exits), with prepared statements cached
// per connection; WAL lets readers run beside the one writer, and a busy
// timeout makes concurrent writers (the request-log thread, a CLI import)
// wait for each other instead of failing.
//
// Storage failures (a full disk, a read-only file or file system, I/O errors)
// are Errc::unavailable: writes fail and roll back whole, reads go on, and
// writes work again once space or write access returns, without a restart.
// A database whose file system is read-only at start is served read-only
// (its -wal and -shm files are kept at close so that this is possible).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/doc_cache.hpp"
#include "core/key_filter.hpp"
#include "store/sqlite/change_signal.hpp"
#include "store/store.hpp"

namespace dvs::store {

class SqliteStore final : public Store {
 public:
  // Opens (creating the file and its folder when missing) the database at
  // `path`. Throws std::runtime_error when it cannot be opened: start-up only.
  explicit SqliteStore(std::string path);
  ~SqliteStore() override;

  Result<int> migrate() override;
  std::unique_ptr<ReadScope> read_scope() override;
  Status ping() override;

  Status create_org(const core::Organization& org) override;
  Result<core::Organization> get_org(std::string_view id) override;
  Result<core::Organization> find_org_by_name(std::string_view name) override;
  Status create_user(const core::User& user) override;
  Result<core::User> find_user_by_email(std::string_view email) override;
  Result<core::User> get_user(std::string_view id) override;
  Status set_user_password(std::string_view user_id, const std::string& hash) override;
  Result<bool> empty() override;

  Status insert_key(const core::ApiKey& key, const core::AuditEvent* audit) override;
  Result<core::ApiKey> find_key_by_hash(const core::KeyHash& hash) override;
  std::optional<uint64_t> key_epoch() override;
  Result<core::ApiKey> get_key(std::string_view org_id, std::string_view id) override;
  Result<std::vector<core::ApiKey>> list_keys(std::string_view org_id) override;
  Result<core::ApiKey> revoke_key(std::string_view org_id, std::string_view id,
                                  int64_t at, const core::AuditEvent* audit) override;
  Status rotate_key(std::string_view org_id, std::string_view old_id,
                    const core::ApiKey& replacement, int64_t stop_at, int64_t now,
                    const core::AuditEvent* audit) override;
  Status touch_keys(const std::vector<std::pair<std::string, int64_t>>& uses) override;
  Result<int64_t> count_active_keys(std::string_view org_id, int64_t now) override;
  Result<std::vector<core::ApiKey>> claim_expired_keys(std::string_view org_id,
                                                       int64_t now) override;

  Status create_session(const core::Session& s) override;
  Result<core::Session> find_session(const core::KeyHash& token_hash) override;
  Status touch_session(const core::KeyHash& token_hash, int64_t at) override;
  Status delete_session(const core::KeyHash& token_hash) override;
  Status delete_stale_sessions(int64_t idle_before, int64_t created_before) override;

  Result<core::Page<core::Lead>> list_leads(std::string_view org_id,
                                            const core::ListQuery& q) override;
  Result<core::Lead> get_lead(std::string_view org_id, std::string_view id) override;
  Status list_lead_docs(std::string_view org_id, const core::ListQuery& q,
                        core::DocPage& page) override;
  Result<core::Document> get_lead_doc(std::string_view org_id, std::string_view id) override;
  Status upsert_leads(const std::vector<core::Lead>& leads) override;

  Result<core::Page<core::Invoice>> list_invoices(std::string_view org_id,
                                                  const core::ListQuery& q) override;
  Result<core::Invoice> get_invoice(std::string_view org_id, std::string_view id) override;
  Status list_invoice_docs(std::string_view org_id, const core::ListQuery& q,
                           core::DocPage& page) override;
  Result<core::Document> get_invoice_doc(std::string_view org_id, std::string_view id) override;
  Status upsert_invoices(const std::vector<core::Invoice>& invoices) override;

  Status append_requests(const std::vector<core::RequestLogEntry>& entries) override;
  Result<core::Page<core::RequestLogEntry>> list_requests(std::string_view org_id,
                                                          std::string_view key_id,
                                                          const core::ListQuery& q) override;
  Result<std::vector<std::pair<int64_t, int64_t>>> hourly_counts(std::string_view org_id,
                                                                 std::string_view key_id,
                                                                 int64_t since) override;

  Status append_audit(const core::AuditEvent& event) override;
  Result<core::Page<core::AuditEvent>> list_audit(std::string_view org_id,
                                                  const core::ListQuery& q) override;

  WriteHealth write_health() const override;

  class Conn;    // one connection and its statement cache; internal
  struct Health;  // whether the storage takes writes; internal

  // This thread's connection, opened on first use, in use until the lease
  // ends; nested leases on one thread share it. Internal.
  class Lease {
   public:
    explicit Lease(SqliteStore& store);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Conn& operator*() const { return *c_; }

   private:
    SqliteStore& store_;
    Conn* c_;
  };

 private:
  // A new connection (throws std::runtime_error when it cannot be opened).
  // One on a read-only file system is transient: closed when its use ends,
  // so that writes resume once the file system is writable again.
  std::unique_ptr<Conn> open_conn();
  std::string path_;
  uint64_t instance_;
  std::shared_ptr<Health> health_;
  // Ends WAL growth under constant reads (append_requests).
  void restart_wal_if_due(Conn& c);
  std::atomic<int64_t> wal_restarted_ms_{0};
  void index_requests_if_due(Conn& c);
  std::atomic<int64_t> requests_indexed_ms_{0};

  // When something was read from the database for a cache (an epoch, the
  // filter below): the change signal's value just before (change_signal.hpp)
  // and the time. What was read stays current while the signal is unchanged
  // and for at most kEpochRecheckMs (plain-SQL changes do not raise it).
  struct Stamp {
    uint64_t signal = 0;
    int64_t at_ms = -1;  // never
    bool current(uint64_t signal_now, int64_t now_ms) const {
      return at_ms >= 0 && signal == signal_now && now_ms - at_ms < kEpochRecheckMs;
    }
  };
  std::unique_ptr<ChangeSignal> signal_;
  // An epoch as last read (the key epoch, the document epoch).
  struct Epoch {
    std::mutex mu;
    Stamp stamp;
    uint64_t value = 0;
  };
  Epoch key_epoch_;
  Epoch doc_epoch_;
  std::optional<uint64_t> read_epoch(Epoch& e, ChangeSignal::Counter counter,
                                     const std::string& sql);
  // Raise the signal: after a committed change to a key, to a document.
  void keys_changed();
  void documents_changed();

  // The document epoch when documents may be served from the cache
  // (Store::doc_cache_).
  std::optional<uint64_t> doc_cache_epoch();
  Status list_docs(char kind, const std::string& sql, std::string_view org_id,
                   const core::ListQuery& q, core::DocPage& page);
  Result<core::Document> get_doc_cached(char kind, const std::string& sql,
                                        std::string_view org_id, std::string_view id,
                                        const char* what);

  // Every stored key's hash (core/key_filter.hpp). New keys are added by
  // rowid on the request path (cheap); a whole build (at first use, after a
  // hash left the table, past capacity) runs on a thread of its own, and
  // until it is done unknown keys are looked up as before.
  struct Filter {
    std::unique_ptr<core::KeyFilter> bloom;
    Stamp stamp;
    int64_t last_rowid = 0;
    int64_t removed = -1;  // key_hashes_removed (migration 7) when built
  };
  std::mutex filter_mu_;
  Filter filter_;
  bool filter_building_ = false;
  int64_t filter_retry_ms_ = 0;
  std::thread filter_builder_;
  std::atomic<bool> stopping_{false};
  enum class Refresh { done, rebuild };
  Result<Refresh> refresh_filter(Conn& c);
  void start_filter_build_locked(int64_t now_ms);
  void build_filter();

 public:
  // How long a change to a key made without a store (an operator's SQL) can
  // go unseen by a server that holds the key in its cache.
  static constexpr int64_t kEpochRecheckMs = 100;
  // True when no stored key has this hash (no read while the filter is
  // current); false when one may, or when it cannot tell. find_key_by_hash()
  // asks it first.
  bool surely_unknown_key(const core::KeyHash& hash) override;
  // Whether unknown keys are answered from the filter of key hashes now
  // (built on first use, on a thread of its own).
  bool key_filter_ready();
};

}  // namespace dvs::store
