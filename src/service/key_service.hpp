#pragma once
// API key lifecycle and authentication: the rules, on top of the KeyStore.
// Used by the CLI, the /v1 middleware and (later) the management API.
// Thread-safe (its only mutable state is the optional key cache, which is).

#include <optional>
#include <variant>
#include <string>
#include <string_view>
#include <vector>

#include "core/api_key.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/key_cache.hpp"
#include "core/metrics.hpp"
#include "core/models.hpp"
#include "store/store.hpp"

namespace dvs::service {

using core::Result;

struct NewKeyRequest {
  std::string org_id;
  std::string name;
  std::vector<std::string> scopes;
  std::optional<int64_t> expires_at;           // Unix seconds; must be in the future
  std::optional<int64_t> rate_limit_per_minute;  // 1..100000, default 120
  std::optional<std::string> created_by;       // user id; none from the CLI
  std::string ip;                              // for the audit log
};

struct IssuedKey {
  core::ApiKey key;
  std::string secret;  // shown once; never stored or logged
};

struct RotatedKey {
  core::ApiKey key;
  std::string secret;
  core::ApiKey replaced;
};

inline constexpr int64_t kMaxRotationGraceSeconds = 604800;
inline constexpr int64_t kDefaultMaxActiveKeys = 100;

class KeyService {
 public:
  KeyService(store::Store& store, const core::KeyHasher& hasher, const core::Clock& clock,
             int64_t max_active_keys = kDefaultMaxActiveKeys)
      : store_(store), hasher_(hasher), clock_(clock), max_active_keys_(max_active_keys) {}

  // Validates and issues a key. invalid_request (param: name, scopes,
  // expires_at or rate_limit_per_minute) for bad input, or without a param
  // when the organization already has max_active_keys active keys; not_found
  // when the organization does not exist.
  Result<IssuedKey> create(const NewKeyRequest& req);

  // Replaces an active key with a new one of the same name, scopes, limit and
  // expiry. The old one stops now (grace 0) or after `grace_seconds`
  // (0..604800), never later than its own expiry. not_found when no active key
  // `key_id` exists in `org_id` (empty org_id: any organization, for the CLI).
  Result<RotatedKey> rotate(std::string_view org_id, std::string_view key_id,
                            int64_t grace_seconds, const std::optional<std::string>& actor,
                            const std::string& ip);

  // Revokes at once. Revoking a revoked key returns it unchanged.
  Result<core::ApiKey> revoke(std::string_view org_id, std::string_view key_id,
                              const std::optional<std::string>& actor, const std::string& ip);

  // The active key for an Authorization header value. invalid_api_key for a
  // missing, malformed, unknown, revoked or expired key (one message for all,
  // so a caller learns nothing about which); unavailable/internal when the
  // store fails.
  // The key's ids, scopes, limit and dates are always there; its name, hint,
  // creator, last use and successor only when it was read from the store
  // (the cache keeps none of them: core::KeyCache::put).
  // `outcome`, when given, receives why (for metrics).
  // With a cache (use_cache), a key found before is not read again while the
  // store's key epoch is unchanged (core/key_cache.hpp); call it inside the
  // request's read snapshot (Store::read_scope) so the epoch and the key agree.
  // A revoked or expired key is refused like an unknown one (same error);
  // `refused`, when given, then receives the stored key, so that the request
  // can be written to that key's request log.
  Result<core::ApiKey> authenticate(std::string_view authorization_header,
                                    core::KeyOutcome* outcome = nullptr,
                                    core::ApiKey* refused = nullptr) const;
  // authenticate() in two steps, for a caller that must not wait for the
  // store (an event loop): begin_authentication() decides from the header
  // and the cache alone when it can (a value); otherwise it returns the
  // look-up to make (Store::find_key_async), and finish_authentication()
  // decides with what the store found. The cache rules are authenticate()'s.
  struct KeyLookup {
    core::KeyHash hash{};
    std::optional<uint64_t> epoch;  // the key epoch read before the look-up
  };
  // `hashed`, when given, is hash(token) of the header's token, so that it
  // is not computed twice.
  std::variant<Result<core::ApiKey>, KeyLookup> begin_authentication(
      std::string_view authorization_header, core::KeyOutcome* outcome = nullptr,
      core::ApiKey* refused = nullptr, const core::KeyHash* hashed = nullptr) const;
  // The stored hash of a well-formed token (SHA-256, or HMAC with the pepper).
  core::KeyHash hash(std::string_view token) const { return hasher_.hash(token); }
  // A guess at the key of `hash` before the store's epochs are read: the key
  // the cache last held for it, at any epoch, when that key is active now;
  // nothing otherwise or without a cache. Only for starting early what an
  // active key needs (its rate decision, beside the epoch read);
  // begin_authentication() at the read epochs still decides, and may refuse
  // the guessed key.
  std::optional<core::ApiKey> guess(const core::KeyHash& hash) const;
  Result<core::ApiKey> finish_authentication(const KeyLookup& lookup, Result<core::ApiKey> found,
                                             core::KeyOutcome* outcome = nullptr,
                                             core::ApiKey* refused = nullptr) const;

  // Caches keys in `cache` (not owned; null for none) when the store has a
  // key epoch. Set before serving.
  void use_cache(core::KeyCache* cache) { cache_ = cache; }

  // Writes an api_key.expired audit event (dated at the expiry) for each key
  // of the organization that has expired since the last call. Called before
  // keys or audit events are listed, so the log is complete when read.
  core::Status record_expirations(std::string_view org_id);

  const core::Clock& clock() const { return clock_; }

 private:
  // The decision on a key found (or not) by hash: its status at now.
  Result<core::ApiKey> judge(Result<core::ApiKey> key, core::KeyOutcome* outcome,
                             core::ApiKey* refused) const;
  // The audit record of a change to `key`, stored with the change itself.
  core::AuditEvent make_audit(const core::ApiKey& key, std::string_view type,
                              const std::optional<std::string>& actor, const std::string& ip,
                              std::optional<int64_t> at = std::nullopt) const;

  store::Store& store_;
  const core::KeyHasher& hasher_;
  const core::Clock& clock_;
  int64_t max_active_keys_;
  core::KeyCache* cache_ = nullptr;
};

// Number of Unicode code points in `s` when it is valid UTF-8, else nullopt.
std::optional<size_t> utf8_length(std::string_view s);

}  // namespace dvs::service
