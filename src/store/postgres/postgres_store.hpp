#pragma once
// Store on PostgreSQL through libpq: the backend for several `serve`
// processes sharing one database. Behaves exactly as SqliteStore for every
// method of Store (the contract suite runs on both).
//
// Thread-safe. Calls borrow a connection from a pool of at most `pool_size`
// connections (opened on demand, the first one at construction) and give it
// back when they return; a call that waits more than 5 s for one gets
// Errc::unavailable. Each connection prepares every SQL text once and runs it
// with PQexecPrepared afterwards. A connection found broken (the server
// restarted, the network failed) is re-established the next time it is handed
// out, so the store recovers by itself once the server is back; the call that
// met the failure gets Errc::unavailable. Batches (upserts, the request log,
// touches) are sent in libpq pipeline mode: one round trip per few hundred
// statements, inside one transaction.
//
// The destructor closes every connection; no call may still be running.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "core/batch_worker.hpp"
#include "store/store.hpp"

namespace dvs::store {

class PostgresStore final : public Store {
 public:
  // `url`: a libpq connection URI, postgresql://USER[:PASS]@HOST:PORT/DB
  // (any libpq conninfo works). Connects once now, so a malformed URL, an
  // unreachable server or a refused login throws std::runtime_error with a
  // one-line message in which the password is masked: start-up only.
  // `pool_size` (at least 1) caps the connections; `acquire_timeout` is how
  // long a call waits for a free one before it is Errc::unavailable.
  explicit PostgresStore(std::string url, int pool_size = 8,
                         std::chrono::milliseconds acquire_timeout = std::chrono::seconds(5));
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // Applies the pending migrations, each in a transaction holding a
  // transaction-level advisory lock, so concurrent start-ups apply each once.
  Result<int> migrate() override;
  Status ping() override;
  PoolStats pool_stats() const override;
  WriteHealth write_health() const override;

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
  // The key epoch (migration 4), from a read started after this call and
  // shared with the calls made meanwhile (core/batch_worker.hpp); inside a
  // read scope, the scope's. Nothing when it cannot be read.
  std::optional<uint64_t> key_epoch() override;
  // No snapshot: the scope reads the request's key and document epochs
  // once, when first needed (and waits for them).
  std::unique_ptr<ReadScope> read_scope() override;
  // Both epochs, read by the epoch reader's thread in one statement for
  // every request queued since its previous read.
  bool reads_epochs_ahead() const override { return true; }
  void read_epochs_async(std::function<void(Epochs)> ready) override;
  std::unique_ptr<ReadScope> read_scope_at(const Epochs& epochs) override;
  // The filter of key hashes (core/key_filter.hpp), built on first use on a
  // thread of its own, kept current by the epoch reader from the key-insert
  // mark (migration 5). Unsure (false) outside a scope at read epochs,
  // while the filter is built, and while it is behind the scope's mark.
  bool surely_unknown_key(const core::KeyHash& hash) override;
  // For tests: the filter has been built.
  bool key_filter_ready();
  // One `= ANY` statement for every look-up queued since the previous one.
  void find_key_async(const core::KeyHash& hash,
                      std::function<void(Result<core::ApiKey>)> ready) override;
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

  class Conn;  // one connection and its prepared statements; internal
  class Pool;  // internal
  struct Health;  // whether the server takes writes; internal

 private:
  Epochs epochs();
  // `from_table`: the columns and FROM clause of the page's SELECT.
  Status list_docs(char kind, std::string_view org_id, const core::ListQuery& q,
                   core::DocPage& page, const char* from_table);
  Result<core::Document> get_doc(char kind, std::string_view org_id, std::string_view id,
                                 const std::string& sql, const char* what);

  std::unique_ptr<Pool> pool_;
  // After pool_: its builder thread reads through the pool.
  struct KeyFilterState;
  std::unique_ptr<KeyFilterState> filter_;
  void start_filter_build_locked();
  void build_filter();
  // Adds the keys stamped above the filter's mark, up to `mark` at least;
  // on the epoch reader's thread and connection.
  void learn_keys(Conn& c, uint64_t mark);
  struct KeyFind {
    core::KeyHash hash;
    std::function<void(Result<core::ApiKey>)> ready;
  };
  void find_keys(std::vector<KeyFind>& batch);
  // Last: their threads stop first, while the pool they read through exists.
  std::unique_ptr<core::BatchWorker<std::function<void(Epochs)>>> epoch_reader_;
  std::unique_ptr<core::BatchWorker<KeyFind>> key_finder_;
};

// `url` with the password replaced by "***" (the user-info password of a URI
// and any password=... parameter), safe for logs and error messages.
std::string mask_db_password(std::string_view url);

}  // namespace dvs::store
