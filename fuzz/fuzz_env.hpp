#pragma once
// What the router-level harnesses (api_json, http_request) share: a real
// SqliteStore in a temporary folder, an organization with a CEO, a signed-in
// session, an API key, leads and invoices, and a Router wired as
// src/app/services.cpp wires it. Created once per fuzzing process.
//
// The session token and the key are fixed (FUZZ ONLY, never used elsewhere) so
// that the seed corpus can carry them. Not thread-safe: libFuzzer calls the
// harness from one thread.

#include <memory>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/metrics.hpp"
#include "core/rate_limiter.hpp"
#include "http/router.hpp"
#include "service/key_service.hpp"
#include "service/session_service.hpp"
#include "store/request_log_writer.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace dvs::fuzz {

// The session cookie's value: 43 base64url characters, as sign_in issues.
inline constexpr std::string_view kSessionToken = "FuzzOnlySessionToken_0123456789abcdefghijkl";
// The random part of the fixed API key (scopes leads:read and invoices:read,
// 120 requests a minute); the secret is kKeyPrefix + this + its checksum.
inline constexpr std::string_view kKeyRandom = "FuzzOnlyKey0123456789abcdefghijk";
// Keys the seeds rotate or revoke (each works once per process, then 404).
inline constexpr std::string_view kRotateKeyId = "key_000000000FuzzRotateVictim01";
inline constexpr std::string_view kRevokeKeyId = "key_000000000FuzzRevokeVictim01";
inline constexpr std::string_view kLeadId = "lead_000000000FuzzLead000000001";
inline constexpr std::string_view kInvoiceId = "inv_000000000FuzzInvoice0000001";
// Where a lead of another organization lives (for import conflicts).
inline constexpr std::string_view kOtherOrgLeadId = "lead_000000000FuzzOtherOrgLead1";
inline constexpr std::string_view kHost = "127.0.0.1:8080";
inline constexpr std::string_view kClientIp = "203.0.113.7";
inline constexpr int64_t kNowUs = 1'800'000'000'000'000;  // 2027-01-15

// A temporary folder removed at normal exit (crashes leave it in $TMPDIR).
std::string make_temp_dir(std::string_view tag);

// A migrated SqliteStore with an organization (returned in org_id), its lead
// kLeadId and invoice kInvoiceId, and another organization owning
// kOtherOrgLeadId.
std::unique_ptr<store::SqliteStore> make_store(const std::string& path, std::string& org_id);

class Env {
 public:
  static Env& get();  // built on first use; lives until the process exits

  // Router::handle, after moving the rate limiter's clock on 10 ms (so the
  // per-key limit of 120 a minute both bites and recovers), then
  // check_response(). Fills in client_ip when empty. Afterwards the session
  // is restored if the request signed out, and a key a 201 issued is revoked.
  // With DVS_FUZZ_VERBOSE set, prints each request and its answer to stderr.
  http::Response handle(http::Request req);

  const std::string& org_id() const { return org_id_; }
  const std::string& key_secret() const { return key_secret_; }
  std::string session_cookie() const;
  store::Store& store() { return *store_; }
  service::KeyService& keys() { return *keys_; }
  const core::Clock& clock() const { return clock_; }
  const std::string& ceo_id() const { return ceo_id_; }

 private:
  Env();
  void restore_session();
  // Calls through the interface, whose declarations carry the default arguments.
  store::Store& base() { return *store_; }
  void revoke_issued(const std::string& body);

  core::ManualClock clock_{kNowUs};          // the store's and services' "now": fixed
  core::ManualClock limiter_clock_{kNowUs};  // the /v1 limiter's: moves per request
  core::KeyHasher hasher_{};
  std::string dir_;
  std::string org_id_, ceo_id_, key_secret_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<core::LocalRateLimiter> limiter_;
  // Sign-in throttling on the fixed clock with a budget of one failure: after
  // the first failed sign-in every later one is refused before Argon2id runs,
  // so POST /api/session costs microseconds, not 100 ms.
  std::unique_ptr<core::LocalRateLimiter> signin_limiter_;
  std::unique_ptr<store::RequestLogWriter> log_;
  core::Metrics metrics_;
  std::unique_ptr<service::KeyService> keys_;
  std::unique_ptr<service::SessionService> sessions_;
  std::unique_ptr<http::Router> router_;
};

// The properties every response must have; prints what is wrong and traps
// otherwise: status 200..599 and never 500, an X-Request-Id, and a body that is
// valid JSON (strict UTF-8) whenever the content type is application/json and
// the status is not 204.
void check_response(const http::Response& res, std::string_view what);

// Traps after printing `why` when `ok` is false.
void require(bool ok, std::string_view why);

}  // namespace dvs::fuzz
