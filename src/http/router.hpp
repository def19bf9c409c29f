#pragma once
// Routes a Request to its handler and runs the middleware around /v1:
// request id -> authentication -> rate limit -> route -> scope -> handler ->
// request log. Handlers stay thin: parse, one call into a store or service,
// render.
//
// Thread-safe: handle() is called concurrently from every server thread; all
// state lives in the thread-safe collaborators.

#include <string>

#include "core/clock.hpp"
#include "core/rate_limiter.hpp"
#include "http/query.hpp"
#include "http/types.hpp"
#include "service/key_service.hpp"
#include "store/request_log_writer.hpp"
#include "store/store.hpp"

namespace dvs::http {

struct RouterOptions {
  // Budget per client IP for requests with a missing or bad key, so a flood
  // of guesses gets 429s; 0 turns it off.
  uint32_t failed_auth_per_minute = 1200;
};

class Router {
 public:
  Router(store::Store& store, service::KeyService& keys, core::RateLimiter& limiter,
         store::RequestLogWriter& log, const core::Clock& clock, RouterOptions opts = {});

  // Never throws: every failure is a JSON error response. Adds X-Request-Id.
  Response handle(const Request& req);

 private:
  Response dispatch(const Request& req, const std::string& request_id);
  Response handle_v1(const Request& req, const Target& target, const std::string& request_id);
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

  store::Store& store_;
  service::KeyService& keys_;
  core::RateLimiter& limiter_;
  store::RequestLogWriter& log_;
  const core::Clock& clock_;
  RouterOptions opts_;
};

// `path` with the characters after any "dvs_live_" replaced, so a key pasted
// into a URL never reaches a log.
std::string redact_secrets(std::string_view path);

}  // namespace dvs::http
