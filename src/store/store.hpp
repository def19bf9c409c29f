#pragma once
// Storage interfaces. Every method that reads tenant data takes the
// organization id and never returns another organization's rows.
//
// Conventions for every interface here:
// - Thread-safe: any thread may call any method; implementations keep one
//   connection per thread (SQLite) or a pool (PostgreSQL).
// - Nothing found: Errc::not_found (for single objects); lists are empty.
// - A unique constraint broken: Errc::conflict. Storage unreachable, busy
//   beyond its timeout, full or read-only: Errc::unavailable (a write that
//   fails so changes nothing; reads go on where the storage allows). Anything else: Errc::internal, with
//   the detail logged (never returned, since it could carry data).
// - Values in and out are owned by the caller; nothing is retained.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/doc_cache.hpp"
#include "core/errors.hpp"
#include "core/models.hpp"

namespace dvs::store {

using core::Result;
using core::Status;

class OrgStore {
 public:
  virtual ~OrgStore() = default;
  virtual Status create_org(const core::Organization& org) = 0;
  virtual Result<core::Organization> get_org(std::string_view id) = 0;
  // Returns the organization with that exact name (oldest first), or not_found.
  virtual Result<core::Organization> find_org_by_name(std::string_view name) = 0;
  // conflict when the e-mail (case-insensitive) is taken.
  virtual Status create_user(const core::User& user) = 0;
  virtual Result<core::User> find_user_by_email(std::string_view email) = 0;
  virtual Result<core::User> get_user(std::string_view id) = 0;
  virtual Status set_user_password(std::string_view user_id, const std::string& hash) = 0;
  // True when no organization exists yet.
  virtual Result<bool> empty() = 0;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // conflict when the id or the hash exists. With `audit`, the event is
  // written in the same transaction: a key change and its audit record
  // survive a crash together or not at all.
  virtual Status insert_key(const core::ApiKey& key, const core::AuditEvent* audit = nullptr) = 0;
  // The key with this secret hash, whatever its status, or not_found. On the
  // hot path: created_by_email is left empty (get_key has it).
  virtual Result<core::ApiKey> find_key_by_hash(const core::KeyHash& hash) = 0;
  // The key epoch (core/key_cache.hpp): a counter raised in the same
  // transaction as every change to a key that matters for authentication.
  // Nothing when the store has none, or cannot read it cheaply (then keys are
  // not cached). Read it before the key, in the same snapshot.
  virtual std::optional<uint64_t> key_epoch() { return std::nullopt; }
  // The key `id` of organization `org_id` (empty org_id: any organization).
  virtual Result<core::ApiKey> get_key(std::string_view org_id, std::string_view id) = 0;
  // All keys of the organization, newest first.
  virtual Result<std::vector<core::ApiKey>> list_keys(std::string_view org_id) = 0;
  // Sets revoked_at to `at` unless already revoked; returns the key as stored.
  // `audit` is written, in the same transaction, only when this call revoked it.
  virtual Result<core::ApiKey> revoke_key(std::string_view org_id, std::string_view id,
                                          int64_t at, const core::AuditEvent* audit = nullptr) = 0;
  // Atomically inserts `replacement` and stops `old_id`: revoked at `stop_at`
  // when `stop_at` <= now, else expires_at lowered to `stop_at`. not_found when
  // the old key does not exist or is no longer active.
  virtual Status rotate_key(std::string_view org_id, std::string_view old_id,
                            const core::ApiKey& replacement, int64_t stop_at, int64_t now,
                            const core::AuditEvent* audit = nullptr) = 0;
  // Raises last_used_at for each (key id, time) pair; never lowers it.
  virtual Status touch_keys(const std::vector<std::pair<std::string, int64_t>>& uses) = 0;
  // Keys of the organization that are neither revoked nor expired at `now`.
  virtual Result<int64_t> count_active_keys(std::string_view org_id, int64_t now) = 0;
  // Keys of the organization that expired by `now` and whose expiry has not
  // been recorded yet; marks them recorded in the same transaction, so each
  // is returned once even with several callers.
  virtual Result<std::vector<core::ApiKey>> claim_expired_keys(std::string_view org_id,
                                                               int64_t now) = 0;
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;
  virtual Status create_session(const core::Session& s) = 0;
  virtual Result<core::Session> find_session(const core::KeyHash& token_hash) = 0;
  virtual Status touch_session(const core::KeyHash& token_hash, int64_t at) = 0;
  // Deleting a missing session is not an error.
  virtual Status delete_session(const core::KeyHash& token_hash) = 0;
  // Deletes sessions last seen before `idle_before` or created before
  // `created_before`: those can never be used again.
  virtual Status delete_stale_sessions(int64_t idle_before, int64_t created_before) = 0;
};

class LeadStore {
 public:
  virtual ~LeadStore() = default;
  virtual Result<core::Page<core::Lead>> list_leads(std::string_view org_id,
                                                    const core::ListQuery& q) = 0;
  virtual Result<core::Lead> get_lead(std::string_view org_id, std::string_view id) = 0;
  // The same rows as their stored JSON: what the API serves (no decoding and
  // re-encoding of columns on the hot path).
  virtual Status list_lead_docs(std::string_view org_id, const core::ListQuery& q,
                                core::DocPage& page) = 0;
  virtual Result<core::Document> get_lead_doc(std::string_view org_id, std::string_view id) = 0;
  // Inserts or replaces every lead in one transaction: all or nothing. A lead
  // whose id belongs to another organization is a conflict.
  virtual Status upsert_leads(const std::vector<core::Lead>& leads) = 0;
};

class InvoiceStore {
 public:
  virtual ~InvoiceStore() = default;
  virtual Result<core::Page<core::Invoice>> list_invoices(std::string_view org_id,
                                                          const core::ListQuery& q) = 0;
  virtual Result<core::Invoice> get_invoice(std::string_view org_id, std::string_view id) = 0;
  virtual Status list_invoice_docs(std::string_view org_id, const core::ListQuery& q,
                                   core::DocPage& page) = 0;
  virtual Result<core::Document> get_invoice_doc(std::string_view org_id,
                                                 std::string_view id) = 0;
  // As upsert_leads; a lead_id that is not a lead of the same organization is
  // invalid_request.
  virtual Status upsert_invoices(const std::vector<core::Invoice>& invoices) = 0;
};

class RequestLogStore {
 public:
  virtual ~RequestLogStore() = default;
  // Appends the entries in one transaction.
  virtual Status append_requests(const std::vector<core::RequestLogEntry>& entries) = 0;
  // The key's requests, newest first; ListQuery's cursor fields page them.
  virtual Result<core::Page<core::RequestLogEntry>> list_requests(std::string_view org_id,
                                                                  std::string_view key_id,
                                                                  const core::ListQuery& q) = 0;
  // (hour start in Unix seconds, request count) for the key's requests at or
  // after `since`, oldest first; hours without requests are left out.
  virtual Result<std::vector<std::pair<int64_t, int64_t>>> hourly_counts(
      std::string_view org_id, std::string_view key_id, int64_t since) = 0;
};

class AuditStore {
 public:
  virtual ~AuditStore() = default;
  virtual Status append_audit(const core::AuditEvent& event) = 0;
  virtual Result<core::Page<core::AuditEvent>> list_audit(std::string_view org_id,
                                                          const core::ListQuery& q) = 0;
};

// Everything the service stores. Created by open_store() (src/app).
// Connection use, for metrics. Both zero for backends without a pool.
struct PoolStats {
  size_t size = 0;    // the most connections the pool will open
  size_t open = 0;    // connections open now
  size_t in_use = 0;  // connections lent out now
};

// The document cache (Store::cache_documents), for metrics.
struct DocCacheStats {
  size_t entries = 0;
  size_t bytes = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
};

// Writes the storage itself refused (a full disk, a read-only database or
// file system, I/O errors), for metrics. Zero for backends that do not count.
struct WriteHealth {
  uint64_t failures = 0;  // such failed writes since start
  bool failing = false;   // the most recent write failed so
};

class Store : public OrgStore,
              public KeyStore,
              public SessionStore,
              public LeadStore,
              public InvoiceStore,
              public RequestLogStore,
              public AuditStore {
 public:
  // Keeps one consistent snapshot for the reads made on this thread until
  // the returned scope ends (SQLite: one read transaction instead of one per
  // statement). Reads only: nothing may be written through the store while
  // it is open on this thread. May return null (nothing to do).
  class ReadScope {
   public:
    virtual ~ReadScope() = default;
  };
  virtual std::unique_ptr<ReadScope> read_scope() { return nullptr; }

  // The epochs a request's cached reads are checked against (the key cache,
  // the document cache: core/epoch_cache.hpp), read for that request.
  struct Epochs {
    std::optional<uint64_t> keys;
    std::optional<uint64_t> docs;
    // PostgreSQL's key-insert mark (migration 5): every key committed before
    // the read is stamped at most this.
    std::optional<uint64_t> key_inserts;
  };
  // True for a store whose reads cost a round trip (PostgreSQL): a caller on
  // an event loop should get the epochs with read_epochs_async() and then
  // open read_scope_at() with them, instead of read_scope(), which would
  // wait; and look keys up with find_key_async().
  virtual bool reads_epochs_ahead() const { return false; }
  // Calls `ready` (once, on any thread) with epochs read by a read that
  // started after this call, so they reflect every change committed before
  // it. A store without epochs calls it at once with none.
  virtual void read_epochs_async(std::function<void(Epochs)> ready) { ready({}); }
  // find_key_by_hash(), with the answer passed to `ready` (once, on any
  // thread). PostgreSQL: one statement for all the look-ups queued meanwhile.
  virtual void find_key_async(const core::KeyHash& hash,
                              std::function<void(Result<core::ApiKey>)> ready) {
    ready(find_key_by_hash(hash));
  }
  // True when no key with this hash was committed before this thread's
  // read scope (its snapshot, or the epochs it was opened at): a filter of
  // every stored key's hash says so, and the key can be refused without a
  // look-up. False when unsure. find_key_by_hash() may ask it itself; a
  // caller about to find_key_async() asks it first.
  virtual bool surely_unknown_key(const core::KeyHash& /*hash*/) { return false; }
  // read_scope(), in which key_epoch() and the document cache use `epochs`
  // (from read_epochs_async() for this request) instead of reading them.
  virtual std::unique_ptr<ReadScope> read_scope_at(const Epochs& /*epochs*/) {
    return read_scope();
  }

  // Applies pending migrations; returns how many were applied.
  virtual Result<int> migrate() = 0;
  // Cheap reachability check for /readyz.
  virtual Status ping() = 0;
  virtual PoolStats pool_stats() const { return {}; }
  virtual WriteHealth write_health() const { return {}; }
  // Keeps /v1 list pages and objects in memory, up to `bytes` (0: none),
  // checked against the document epoch (SQLite migration 8, PostgreSQL
  // migration 4; core/doc_cache.hpp). Call before serving.
  void cache_documents(size_t bytes) {
    doc_cache_ = bytes ? std::make_unique<core::DocCache>(bytes) : nullptr;
  }
  DocCacheStats doc_cache_stats() const {
    if (!doc_cache_) return {};
    return {doc_cache_->size(), doc_cache_->cost(), doc_cache_->hits(), doc_cache_->misses()};
  }

 protected:
  // Null when off; the stores' document reads consult it.
  std::unique_ptr<core::DocCache> doc_cache_;

  // A list read's first step, at the document epoch `epoch` (nothing: no
  // cache, or no epoch): true when the cache gave the answer to `page`
  // (core::give_cached); otherwise `key` says where to keep what the read
  // finds (empty: keep nothing), and `page` has room for it.
  bool list_from_cache(char kind, std::string_view org_id, const core::ListQuery& q,
                       std::optional<uint64_t> epoch, core::DocPage& page, std::string& key) {
    if (epoch && doc_cache_) {
      // Looked up with a key built in this thread's buffer: a hit allocates
      // nothing; only a miss keeps a copy for the put.
      thread_local std::string scratch;
      core::doc_list_key(scratch, kind, org_id, q);
      if (auto hit = doc_cache_->get(scratch, *epoch)) {
        core::give_cached(*hit, page);
        return true;
      }
      key = scratch;
    }
    // A read follows: room for a page of documents at once.
    page.json.reserve(page.json.size() + 512 + 640 * static_cast<size_t>(q.limit));
    if (page.take_whole && page.json.empty()) page.json.append(core::kListHead);
    return false;
  }
  // The same for one object: the cached document, or nothing (then `key`
  // as above).
  std::optional<core::Document> doc_from_cache(char kind, std::string_view org_id,
                                               std::string_view id, std::optional<uint64_t> epoch,
                                               std::string& key) {
    if (!epoch || !doc_cache_) return std::nullopt;
    thread_local std::string scratch;  // as in list_from_cache
    core::doc_key(scratch, kind, org_id, id);
    auto hit = doc_cache_->get(scratch, *epoch);
    if (!hit) {
      key = scratch;
      return std::nullopt;
    }
    return core::cached_to_doc(**hit);
  }
};

}  // namespace dvs::store
