#include "http/router.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <exception>

#include "core/api_key.hpp"
#include "core/base62.hpp"
#include "core/ids.hpp"
#include "core/json_writer.hpp"
#include "http/errors.hpp"
#include "http/request_id.hpp"
#include "http/web_assets.hpp"

namespace dvs::http {

using core::Errc;
using core::make_error;
using core::Result;

std::string redact_secrets(std::string_view path) {
  return core::redact_keys(path.substr(0, 512));
}

Router::Router(store::Store& store, service::KeyService& keys,
               service::SessionService& sessions, core::RateLimiter& limiter,
               store::RequestLogWriter& log, const core::Clock& clock, core::Metrics& metrics,
               RouterOptions opts)
    : store_(store),
      keys_(keys),
      sessions_(sessions),
      limiter_(limiter),
      log_(log),
      clock_(clock),
      metrics_(metrics),
      opts_(opts) {}

bool Router::is_slow(const Request& req) {
  if (req.method != "POST") return false;
  auto t = req.target;
  return t == "/api/session" || t.starts_with("/api/session?");
}

namespace {
// The handler's response, or a 500 when it threw (the detail logged only).
template <typename F>
Response guarded(const std::string& rid, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    spdlog::error("{}: unhandled exception: {}", rid, e.what());
  } catch (...) {
    spdlog::error("{}: unhandled exception", rid);
  }
  return error_response(make_error(Errc::internal, {}), rid);
}

// A response deferred until `start(ready)` has passed a T to `ready` (on any
// thread); then `then(T)` makes it, on the request's thread.
template <typename T, typename Start, typename Then>
Response defer(Start start, Then then) {
  auto value = std::make_shared<std::optional<T>>();
  Response r;
  r.deferred = std::make_shared<Deferred>();
  r.deferred->wait = [value, start = std::move(start)](std::function<void()> done) mutable {
    start([value, done = std::move(done)](T v) {
      value->emplace(std::move(v));
      done();
    });
  };
  r.deferred->then = [value, then = std::move(then)]() mutable { return then(std::move(**value)); };
  return r;
}
}  // namespace

Response Router::handle(const Request& req) {
  std::string rid = new_request_id(clock_.now_us());
  Response res = guarded(rid, [&] { return dispatch(req, rid); });
  return finish(req, std::move(rid), std::move(res));
}

Response Router::finish(const Request& req, std::string rid, Response res) {
  if (res.deferred) {
    res.deferred->then = [this, &req, rid = std::move(rid), then = std::move(res.deferred->then)] {
      return finish(req, rid, guarded(rid, then));
    };
    return res;
  }
  res.set("X-Request-Id", std::move(rid));
  res.set("X-Content-Type-Options", "nosniff");
  const core::Route route = classify_route(req.method, req.target);
  const int64_t latency = req.start_us ? clock_.now_us() - req.start_us : 0;
  metrics_.record_request(route, res.status, latency);
  if (opts_.access_log) opts_.access_log(req, res, core::route_label(route), latency);
  return res;
}

// Only for an asynchronous limiter: a synchronous one is asked in place, so
// the hot path builds no continuation.
template <typename Then>
Response Router::decide_later(std::string bucket, uint32_t limit, Then then) {
  return defer<core::RateDecision>(
      [this, bucket = std::move(bucket), limit](auto ready) {
        limiter_.acquire_async(bucket, limit, std::move(ready));
      },
      std::move(then));
}

Response Router::dispatch(const Request& req, const std::string& rid) {
  auto target = parse_target(req.target);
  if (!target) return error_response(target.error(), rid);
  const std::string& path = target->path;
  if (path == "/v1/openapi.json") return openapi(req, rid);
  if (path == "/v1" || path.starts_with("/v1/")) return handle_v1(req, *target, rid);
  if (path == "/healthz" || path == "/readyz") return health(req, *target, rid);
  if (path == "/metrics") return metrics(req, rid);
  if (path == "/api" || path.starts_with("/api/")) return handle_api(req, *target, rid);
  if (path == "/" || path.starts_with("/assets/")) return web(req, *target, rid);
  return error_response(make_error(Errc::not_found, "Unrecognized request URL (" +
                                                        std::string(req.method) + " " +
                                                        redact_secrets(path) + ")."),
                        rid);
}

namespace {
void set_rate_headers(Response& r, const core::RateDecision& d);
Response rate_limited(const core::RateDecision& d, const std::string& rid);
}  // namespace

// The API's own description: public, so tools can fetch it without a key.
// Like every /v1 response it carries rate-limit headers: for this anonymous
// route, a budget per client IP.
Response Router::openapi(const Request& req, const std::string& rid) {
  std::string bucket = "openapi-ip:";
  bucket += req.client_ip;
  if (!limiter_.is_async()) return openapi_decided(req, rid, limiter_.acquire(bucket, kOpenApiPerMinute));
  return decide_later(std::move(bucket), kOpenApiPerMinute,
                      [this, &req, rid](core::RateDecision d) { return openapi_decided(req, rid, d); });
}

Response Router::openapi_decided(const Request& req, const std::string& rid,
                                 const core::RateDecision& d) {
  if (!d.allowed) {
    metrics_.record_rate_limited();
    return rate_limited(d, rid);
  }
  if (req.method != "GET" && req.method != "HEAD") {
    auto r = error_response(make_error(Errc::method_not_allowed, "Use GET."), rid);
    r.set("Allow", "GET, HEAD");
    set_rate_headers(r, d);
    return r;
  }
  Response r;
  set_rate_headers(r, d);
  // Embedded in the binary: sent from there (for HEAD too: the server
  // sends only its length).
  r.static_body = openapi_document();
  r.set("Cache-Control", "no-cache");
  r.set("Access-Control-Allow-Origin", "*");
  return r;
}

Response Router::health(const Request& req, const Target& t, const std::string& rid) {
  if (req.method != "GET") {
    auto r = error_response(make_error(Errc::method_not_allowed, "Use GET."), rid);
    r.set("Allow", "GET");
    return r;
  }
  Response r;
  r.set("Cache-Control", "no-store");
  if (t.path == "/healthz") {
    r.body = R"({"status":"ok"})";
    return r;
  }
  // Not ready without the database. A degraded rate limiter (Redis down,
  // per-node fallback) still serves, so it is reported but stays ready.
  const bool db_ok = store_.ping().ok();
  const std::string_view limiter = limiter_.health();
  r.status = db_ok ? 200 : 503;
  core::JsonWriter w(r.body);
  w.begin_object().key("status").string(!db_ok ? "unavailable" : limiter == "degraded" ? "degraded" : "ready");
  w.key("checks").begin_object().key("database").string(db_ok ? "ok" : "unavailable");
  w.key("rate_limiter").string(limiter).end_object().end_object();
  return r;
}

namespace {
void set_rate_headers(Response& r, const core::RateDecision& d) {
  r.set("X-RateLimit-Limit", std::to_string(d.limit));
  r.set("X-RateLimit-Remaining", std::to_string(d.remaining));
  r.set("X-RateLimit-Reset", std::to_string(d.reset_s));
  if (!d.allowed) r.set("Retry-After", std::to_string(d.retry_after_s));
}

Response rate_limited_body(int64_t retry_after_s, const std::string& rid) {
  return error_response(make_error(Errc::rate_limited, "Too many requests. Retry after " +
                                                           std::to_string(retry_after_s) +
                                                           " seconds."),
                        rid);
}

// A 429's body depends only on the seconds to wait (at most a window's 60):
// made once for each, by error_response itself so the bytes are the same,
// and shared by every 429 after (no message, JSON or body built per
// request; docs/performance.md, change 35).
Response rate_limited(const core::RateDecision& d, const std::string& rid) {
  static const auto kBodies = [] {
    std::array<std::string, 61> made;
    for (size_t s = 0; s < made.size(); ++s)
      made[s] = rate_limited_body(static_cast<int64_t>(s), "").body;
    return made;
  }();
  Response r;
  if (d.retry_after_s >= 0 && d.retry_after_s < static_cast<int64_t>(kBodies.size())) {
    r.status = 429;
    r.static_body = kBodies[static_cast<size_t>(d.retry_after_s)];
  } else {
    r = rate_limited_body(d.retry_after_s, rid);
  }
  set_rate_headers(r, d);
  return r;
}
}  // namespace

core::Route classify_route(std::string_view method, std::string_view target) {
  using core::Route;
  std::string_view p = target.substr(0, target.find('?'));
  auto under = [&](std::string_view prefix) {
    return p.size() > prefix.size() && p.starts_with(prefix) && p[prefix.size()] == '/';
  };
  if (p.starts_with("/v1")) {
    if (p == "/v1/leads") return Route::v1_leads_list;
    if (under("/v1/leads")) return Route::v1_leads_get;
    if (p == "/v1/invoices") return Route::v1_invoices_list;
    if (under("/v1/invoices")) return Route::v1_invoices_get;
    if (p == "/v1/key") return Route::v1_key;
    if (p == "/v1/openapi.json") return Route::v1_openapi;
    return Route::v1_unknown;
  }
  if (p == "/api/session") return Route::api_session;
  if (p == "/api/keys") return Route::api_keys;
  if (under("/api/keys")) return Route::api_key_action;
  if (p == "/api/audit-events") return Route::api_audit;
  if (p == "/" || p.starts_with("/assets/")) return Route::portal;
  if (p == "/healthz" || p == "/readyz") return Route::health;
  if (p == "/metrics" && method == "GET") return Route::metrics;
  return Route::unknown;
}

// Prometheus scrapes this. It reveals counts, never keys or data; keep it off
// the public internet all the same (docs/deploy.md: deny it at the proxy).
Response Router::metrics(const Request& req, const std::string& rid) {
  if (req.method != "GET") {
    auto r = error_response(make_error(Errc::method_not_allowed, "Use GET."), rid);
    r.set("Allow", "GET");
    return r;
  }
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.set("Cache-Control", "no-store");
  r.body = metrics_.render([this](std::string& out) {
    auto gauge = [&](std::string_view name, std::string_view help, std::string_view labels,
                     uint64_t v, std::string_view type = "gauge") {
      out.append("# HELP ").append(name).append(" ").append(help).append("\n");
      out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
      out.append(name);
      if (!labels.empty()) out.append("{").append(labels).append("}");
      out.append(" ").append(std::to_string(v)).append("\n");
    };
    gauge("dvs_request_log_queue", "Request-log entries waiting to be written.", "",
          log_.queued());
    gauge("dvs_request_log_written_total", "Request-log entries written.", "", log_.written(),
          "counter");
    gauge("dvs_request_log_dropped_total",
          "Request-log entries dropped (queue full or database down).", "", log_.dropped(),
          "counter");
    const auto pool = store_.pool_stats();
    gauge("dvs_db_pool_connections", "Database pool size (0 without a pool).", "", pool.size);
    gauge("dvs_db_pool_connections_open", "Database connections open.", "", pool.open);
    gauge("dvs_db_pool_connections_in_use", "Database connections lent out.", "", pool.in_use);
    const auto docs = store_.doc_cache_stats();
    gauge("dvs_doc_cache_hits_total", "/v1 pages and objects served from memory.", "", docs.hits,
          "counter");
    gauge("dvs_doc_cache_misses_total", "/v1 pages and objects read from the database.", "",
          docs.misses, "counter");
    gauge("dvs_doc_cache_bytes", "Bytes held by the document cache (0 without one).", "",
          docs.bytes);
    const auto writes = store_.write_health();
    gauge("dvs_db_write_failures_total",
          "Database writes refused by the storage (disk full, read-only, I/O error).", "",
          writes.failures, "counter");
    gauge("dvs_db_writes_failing", "1 while database writes fail so (until one succeeds).", "",
          writes.failing ? 1 : 0);
    const auto state = limiter_.health();
    out.append("# HELP dvs_rate_limiter_state 1 for the rate limiter's current state.\n");
    out.append("# TYPE dvs_rate_limiter_state gauge\n");
    for (std::string_view s : {"local", "shared", "degraded"})
      out.append("dvs_rate_limiter_state{state=\"")
          .append(s)
          .append("\"} ")
          .append(s == state ? "1" : "0")
          .append("\n");
  });
  return r;
}

Response Router::handle_v1(const Request& req, const Target& target, const std::string& rid) {
  if (!store_.reads_epochs_ahead()) return v1_with_epochs(req, target, rid, std::nullopt);
  // No well-formed key, nothing to read: refused without waiting for epochs.
  auto token = core::bearer_token(req.authorization);
  if (!token || !core::is_well_formed_key(*token))
    return v1_with_epochs(req, target, rid, store::Store::Epochs{});
  const core::KeyHash hash = keys_.hash(*token);  // once for the whole request
  // A key the cache knew: its rate decision is asked for at the same time
  // as the epochs, not after them (two round trips waited for as one).
  if (limiter_.is_async()) {
    if (auto key = keys_.guess(hash)) return v1_guessed(req, target, rid, hash, std::move(*key));
  }
  // The epochs without holding this thread: one read for all the requests
  // queued meanwhile (store.hpp, read_epochs_async).
  return defer<store::Store::Epochs>(
      [this](auto ready) { store_.read_epochs_async(std::move(ready)); },
      [this, &req, target, rid, hash](store::Store::Epochs e) {
        return v1_with_epochs(req, target, rid, e, &hash);
      });
}

Response Router::v1_guessed(const Request& req, const Target& target, const std::string& rid,
                            const core::KeyHash& hash, core::ApiKey key) {
  struct Both {
    store::Store::Epochs epochs;
    core::RateDecision decision;
    std::atomic<int> left{2};
  };
  auto both = std::make_shared<Both>();
  Response r;
  r.deferred = std::make_shared<Deferred>();
  r.deferred->wait = [this, both, bucket = key.id,
                      limit = key.rate_limit_per_minute](std::function<void()> done) {
    // Whichever answer comes second (on its worker's thread) ends the wait.
    auto one_done = [both, done = std::move(done)] {
      if (both->left.fetch_sub(1, std::memory_order_acq_rel) == 1) done();
    };
    store_.read_epochs_async([both, one_done](store::Store::Epochs e) {
      both->epochs = e;
      one_done();
    });
    limiter_.acquire_async(bucket, limit, [both, one_done](core::RateDecision d) {
      both->decision = d;
      one_done();
    });
  };
  r.deferred->then = [this, &req, target, rid, both, hash,
                      key_id = std::move(key.id)]() mutable {
    const Guessed guessed{std::move(key_id), both->decision};
    return v1_with_epochs(req, target, rid, both->epochs, &hash, &guessed);
  };
  return r;
}

Response Router::v1_with_epochs(const Request& req, const Target& target, const std::string& rid,
                                const std::optional<store::Store::Epochs>& epochs,
                                const core::KeyHash* hashed, const Guessed* guessed) {
  // One snapshot for the key look-up and the page: cheaper on SQLite than a
  // transaction per statement, and the key checked is the key whose data is
  // read. /v1 handlers only read; the request log is written elsewhere. (A
  // rate decision that is waited for ends the snapshot; the page is then
  // read in a second one, at the same epochs.)
  auto snapshot = epochs ? store_.read_scope_at(*epochs) : store_.read_scope();
  core::KeyOutcome outcome = core::KeyOutcome::unknown;
  core::ApiKey refused;  // a revoked or expired key: its log shows the 401
  auto begun = keys_.begin_authentication(req.authorization, &outcome, &refused, hashed);
  auto* lookup = std::get_if<service::KeyService::KeyLookup>(&begun);
  if (!lookup)
    return v1_authenticated(req, target, rid, epochs, std::move(std::get<0>(begun)), outcome,
                            std::move(refused), guessed);
  if (!store_.reads_epochs_ahead()) {
    auto key = keys_.finish_authentication(*lookup, store_.find_key_by_hash(lookup->hash),
                                           &outcome, &refused);
    return v1_authenticated(req, target, rid, epochs, std::move(key), outcome, std::move(refused));
  }
  // A key the store's filter of key hashes has never seen (a guess, a
  // typo, a scanner): refused without a look-up.
  if (store_.surely_unknown_key(lookup->hash)) {
    auto key = keys_.finish_authentication(
        *lookup, make_error(Errc::not_found, "no such key"), &outcome, &refused);
    return v1_authenticated(req, target, rid, epochs, std::move(key), outcome, std::move(refused),
                            guessed);
  }
  // A key not in the cache (or unknown): looked up with the others queued
  // meanwhile, without holding this thread.
  std::optional<Guessed> guess;
  if (guessed) guess = *guessed;
  return defer<Result<core::ApiKey>>(
      [this, hash = lookup->hash](auto ready) { store_.find_key_async(hash, std::move(ready)); },
      [this, &req, target, rid, epochs, lookup = *lookup,
       guess = std::move(guess)](Result<core::ApiKey> found) {
        auto again = epochs ? store_.read_scope_at(*epochs) : store_.read_scope();
        core::KeyOutcome outcome = core::KeyOutcome::unknown;
        core::ApiKey refused;
        auto key = keys_.finish_authentication(lookup, std::move(found), &outcome, &refused);
        return v1_authenticated(req, target, rid, epochs, std::move(key), outcome,
                                std::move(refused), guess ? &*guess : nullptr);
      });
}

Response Router::v1_authenticated(const Request& req, const Target& target,
                                  const std::string& rid,
                                  const std::optional<store::Store::Epochs>& epochs,
                                  Result<core::ApiKey> key, core::KeyOutcome outcome,
                                  core::ApiKey refused, const Guessed* guessed) {
  metrics_.record_key(outcome);
  if (!key) {
    const auto& err = key.error();
    if (err.code != Errc::invalid_api_key) return error_response(err, rid);
    Response r = error_response(err, rid);
    if (opts_.failed_auth_per_minute == 0) {
      if (!refused.id.empty()) log_request(req, target, std::move(refused), r, rid);
      return r;
    }
    std::string bucket = "ip:";
    bucket += req.client_ip;
    const uint32_t limit = opts_.failed_auth_per_minute;
    if (!limiter_.is_async())
      return v1_refused(req, target, rid, std::move(r), refused, limiter_.acquire(bucket, limit));
    return decide_later(std::move(bucket), limit,
                        [this, &req, target, rid, r = std::move(r),
                         refused = std::move(refused)](core::RateDecision d) mutable {
                          return v1_refused(req, target, rid, std::move(r), refused, d);
                        });
  }
  if (!limiter_.is_async()) {
    const core::RateDecision d = limiter_.acquire(key->id, key->rate_limit_per_minute);
    return v1_decided(req, target, rid, std::move(*key), d);
  }
  // The guessed key is this one (an id names one key and one limit for
  // good): its decision, made beside the epoch read, stands; the page is
  // read in this scope. (A guess that the epochs disproved, a key revoked
  // meanwhile, has counted one request in that refused key's bucket.)
  if (guessed && guessed->key_id == key->id)
    return v1_decided(req, target, rid, std::move(*key), guessed->decision);
  // The page is read after the wait, in a second scope at the same epochs.
  std::string bucket = key->id;
  const uint32_t limit = key->rate_limit_per_minute;
  return decide_later(std::move(bucket), limit,
                      [this, &req, target, rid, key = std::move(*key),
                       epochs](core::RateDecision d) mutable {
                        auto again = epochs ? store_.read_scope_at(*epochs) : store_.read_scope();
                        return v1_decided(req, target, rid, std::move(key), d);
                      });
}

Response Router::v1_refused(const Request& req, const Target& target, const std::string& rid,
                            Response r, const core::ApiKey& refused, const core::RateDecision& d) {
  if (!d.allowed) {
    metrics_.record_rate_limited();
    r = rate_limited(d, rid);
  } else {
    set_rate_headers(r, d);
  }
  if (!refused.id.empty()) log_request(req, target, core::ApiKey(refused), r, rid);
  return r;
}

Response Router::v1_decided(const Request& req, const Target& target, const std::string& rid,
                            core::ApiKey&& key, const core::RateDecision& d) {
  Response res;
  if (!d.allowed) {
    metrics_.record_rate_limited();
    res = rate_limited(d, rid);
  } else {
    res = v1_route(req, target, key, rid);
    set_rate_headers(res, d);
  }
  log_request(req, target, std::move(key), res, rid);
  return res;
}

// Queues the request for `key`'s request log (written in batches by
// RequestLogWriter), and names the key on the response for the access log.
void Router::log_request(const Request& req, const Target& target, core::ApiKey&& key,
                         Response& res, const std::string& rid) {
  if (opts_.access_log) res.key_id = key.id;  // only the access log reads it
  const int64_t now_us = clock_.now_us();
  core::RequestLogEntry e;
  e.request_id = rid;
  e.org_id = std::move(key.org_id);
  e.key_id = std::move(key.id);
  // Valid UTF-8 only: one odd byte must not make the database refuse a batch.
  e.method = core::to_valid_utf8(req.method.substr(0, 16));
  e.path = core::to_valid_utf8(redact_secrets(target.path));
  e.status = res.status;
  e.latency_us = req.start_us ? now_us - req.start_us : 0;
  e.client_ip = std::string(req.client_ip);
  e.user_agent = core::to_valid_utf8(req.user_agent.substr(0, 256));
  e.created_at = now_us / 1'000'000;
  log_.submit(std::move(e));
}

Response Router::v1_route(const Request& req, const Target& t, const core::ApiKey& key,
                          const std::string& rid) {
  std::string_view rest = std::string_view(t.path).substr(3);  // after "/v1"
  enum class Kind { none, leads, lead, invoices, invoice, key } kind = Kind::none;
  std::string_view id;
  auto split = [&](std::string_view collection, Kind list, Kind one) {
    std::string prefix = "/" + std::string(collection);
    if (rest == prefix) {
      kind = list;
    } else if (rest.starts_with(prefix + "/")) {
      id = rest.substr(prefix.size() + 1);
      if (!id.empty() && id.find('/') == std::string_view::npos) kind = one;
    }
  };
  split("leads", Kind::leads, Kind::lead);
  if (kind == Kind::none) split("invoices", Kind::invoices, Kind::invoice);
  if (kind == Kind::none && rest == "/key") kind = Kind::key;
  if (kind == Kind::none)
    return error_response(make_error(Errc::not_found, "Unrecognized request URL (" +
                                                          std::string(req.method.substr(0, 16)) +
                                                          " " + redact_secrets(t.path) + ")."),
                          rid);
  if (req.method != "GET") {
    auto r = error_response(
        make_error(Errc::method_not_allowed,
                   "Method " + std::string(req.method.substr(0, 16)) + " is not allowed here."),
        rid);
    r.set("Allow", "GET");
    return r;
  }
  auto need = [&](core::Scope s) -> std::optional<Response> {
    if (key.scopes.has(s)) return std::nullopt;
    metrics_.record_key(core::KeyOutcome::wrong_scope);
    std::string name(core::scope_name(s));
    return error_response(
        make_error(Errc::insufficient_scope, "This API key lacks the scope " + name + ".", name),
        rid);
  };
  switch (kind) {
    case Kind::leads:
      if (auto r = need(core::Scope::leads_read)) return std::move(*r);
      return list_leads(t, key, rid);
    case Kind::lead:
      if (auto r = need(core::Scope::leads_read)) return std::move(*r);
      return get_lead(id, t, key, rid);
    case Kind::invoices:
      if (auto r = need(core::Scope::invoices_read)) return std::move(*r);
      return list_invoices(t, key, rid);
    case Kind::invoice:
      if (auto r = need(core::Scope::invoices_read)) return std::move(*r);
      return get_invoice(id, t, key, rid);
    case Kind::key: return get_key(t, key, rid);
    case Kind::none: break;
  }
  return error_response(make_error(Errc::not_found, "Not found."), rid);
}

}  // namespace dvs::http
