#pragma once
// Routes a Request to its handler and runs the middleware around /v1:
// request id -> authentication -> rate limit -> route -> scope -> handler ->
// request log. Handlers stay thin: parse, one call into a store or service,
// render.
//
// Thread-safe: handle() is called concurrently from every server thread; all
// state lives in the thread-safe collaborators.

#include <functional>
#include <string>

#include "core/clock.hpp"
#include "core/metrics.hpp"
#include "core/rate_limiter.hpp"
#include "http/query.hpp"
#include "http/types.hpp"
#include "service/key_service.hpp"
#include "service/session_service.hpp"
#include "store/request_log_writer.hpp"
#include "store/store.hpp"

namespace dvs::http {

struct RouterOptions {
  // Budget per client IP for requests with a missing or bad key, so a flood
  // of guesses gets 429s; 0 turns it off.
  uint32_t failed_auth_per_minute = 1200;
  // Mark the session cookie Secure. Off only when serving plain HTTP on
  // loopback (browsers drop Secure cookies over plain HTTP).
  bool secure_cookies = true;
  // Called once per request when set (the access log). Must be thread-safe.
  std::function<void(const Request&, const Response&, std::string_view route, int64_t latency_us)>
      access_log;
};

class Router {
 public:
  // Fetches of /v1/openapi.json allowed per client IP and minute.
  static constexpr uint32_t kOpenApiPerMinute = 600;

  Router(store::Store& store, service::KeyService& keys, service::SessionService& sessions,
         core::RateLimiter& limiter, store::RequestLogWriter& log, const core::Clock& clock,
         core::Metrics& metrics, RouterOptions opts = {});

  // Never throws: every failure is a JSON error response. Adds X-Request-Id.
  Response handle(const Request& req);

  // True for requests whose handling is slow by design (sign-in hashes a
  // password with Argon2id): the server runs them off its I/O threads.
  static bool is_slow(const Request& req);

 private:
  Response dispatch(const Request& req, const std::string& request_id);
  // The request id, headers, metrics and access log on a final response; a
  // deferred one gets them when it is ready.
  Response finish(const Request& req, std::string request_id, Response res);
  Response handle_v1(const Request& req, const Target& target, const std::string& request_id);
  // /v1 once the store's epochs for this request are known (nothing: the
  // store reads them itself, in its read scope).
  // A rate decision made beside the epoch read, for the key the cache
  // guessed (KeyService::guess); used only if authentication at the read
  // epochs gives that very key.
  struct Guessed {
    std::string key_id;
    core::RateDecision decision;
  };
  // `hashed`: the hash of the request's token when already computed.
  Response v1_with_epochs(const Request& req, const Target& target, const std::string& request_id,
                          const std::optional<store::Store::Epochs>& epochs,
                          const core::KeyHash* hashed = nullptr,
                          const Guessed* guessed = nullptr);
  // The epoch read and the guessed key's rate decision, waited for together.
  Response v1_guessed(const Request& req, const Target& target, const std::string& request_id,
                      const core::KeyHash& hash, core::ApiKey key);
  // /v1 once the key is known (or refused), in a read scope at `epochs`.
  Response v1_authenticated(const Request& req, const Target& target,
                            const std::string& request_id,
                            const std::optional<store::Store::Epochs>& epochs,
                            core::Result<core::ApiKey> key, core::KeyOutcome outcome,
                            core::ApiKey refused, const Guessed* guessed = nullptr);
  // A refused key's 401 (or 429) once the per-IP limit has decided.
  Response v1_refused(const Request& req, const Target& target, const std::string& request_id,
                      Response r, const core::ApiKey& refused, const core::RateDecision& d);
  // A valid key's response once its limit has decided: the route, or a 429.
  // `key` is consumed: its ids move into the request log's entry.
  Response v1_decided(const Request& req, const Target& target, const std::string& request_id,
                      core::ApiKey&& key, const core::RateDecision& d);
  // then(decision) as a deferred response, once an asynchronous limiter has
  // decided for `bucket`.
  template <typename Then>
  Response decide_later(std::string bucket, uint32_t limit, Then then);
  // Queues the request's log entry; `key`'s ids are moved into it.
  void log_request(const Request& req, const Target& target, core::ApiKey&& key, Response& res,
                   const std::string& request_id);
  Response v1_route(const Request& req, const Target& target, const core::ApiKey& key,
                    const std::string& request_id);
  Response list_leads(const Target& t, const core::ApiKey& key, const std::string& rid);
  Response get_lead(std::string_view id, const Target& t, const core::ApiKey& key,
                    const std::string& rid);
  Response list_invoices(const Target& t, const core::ApiKey& key, const std::string& rid);
  Response get_invoice(std::string_view id, const Target& t, const core::ApiKey& key,
                       const std::string& rid);
  Response get_key(const Target& t, const core::ApiKey& key, const std::string& rid);
  Response health(const Request& req, const Target& t, const std::string& rid);
  Response openapi(const Request& req, const std::string& rid);
  Response openapi_decided(const Request& req, const std::string& rid,
                           const core::RateDecision& d);
  Response metrics(const Request& req, const std::string& rid);

  // /api: the management API (handlers/api.cpp).
  Response handle_api(const Request& req, const Target& t, const std::string& rid);
  Response api_session(const Request& req, const std::string& rid);
  Response api_list_keys(const service::SessionContext& s, const std::string& rid);
  Response api_create_key(const Request& req, const service::SessionContext& s,
                          const std::string& rid);
  Response api_rotate_key(const Request& req, const service::SessionContext& s,
                          std::string_view id, const std::string& rid);
  Response api_revoke_key(const service::SessionContext& s, std::string_view id,
                          const Request& req, const std::string& rid);
  Response api_key_requests(const Target& t, const service::SessionContext& s,
                            std::string_view id, const std::string& rid);
  Response api_key_usage(const service::SessionContext& s, std::string_view id,
                         const std::string& rid);
  Response api_audit(const Target& t, const service::SessionContext& s, const std::string& rid);

  // The portal's static files (handlers/web.cpp).
  Response web(const Request& req, const Target& t, const std::string& rid);

  store::Store& store_;
  service::KeyService& keys_;
  service::SessionService& sessions_;
  core::RateLimiter& limiter_;
  store::RequestLogWriter& log_;
  const core::Clock& clock_;
  core::Metrics& metrics_;
  RouterOptions opts_;
};

// The route a request is counted under in the metrics.
core::Route classify_route(std::string_view method, std::string_view target);

// `path` (at most 512 bytes of it) with any API key in it replaced
// (core::redact_keys), so a key pasted into a URL never reaches a log or an
// error message.
std::string redact_secrets(std::string_view path);

}  // namespace dvs::http
