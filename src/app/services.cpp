#include "app/services.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "app/config.hpp"
#include "app/demo.hpp"
#include "app/logging.hpp"
#include "service/session_service.hpp"
#include "store/redis/redis_rate_limiter.hpp"

namespace dvs::app {

namespace {
// Plain HTTP is acceptable only here; elsewhere cookies are marked Secure and
// a TLS-terminating proxy is expected in front.
bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host.starts_with("127.");
}
}  // namespace

std::string describe_settings(const ServeOptions& o, const std::string& log_format,
                              const std::string& log_level) {
  auto mask_url = [](const std::string& url) {
    // scheme://user:PASSWORD@host -> scheme://user:***@host
    auto scheme = url.find("://");
    auto at = url.rfind('@');
    if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
    auto colon = url.find(':', scheme + 3);
    if (colon == std::string::npos || colon > at) return url;
    return url.substr(0, colon + 1) + "***" + url.substr(at);
  };
  std::string proxies;
  for (const auto& p : o.trusted_proxies) proxies += (proxies.empty() ? "" : ",") + p;
  std::string out;
  auto line = [&](const char* k, const std::string& v) { out += std::string(k) + " = " + v + "\n"; };
  line("listen", o.listen);
  line("db", mask_url(o.db_url));
  line("db_pool", o.db_pool > 0 ? std::to_string(o.db_pool) : std::to_string(o.threads + 4) + " (threads + 4)");
  line("redis", o.redis_url.empty() ? "(none: limits kept in process)" : mask_url(o.redis_url));
  line("nodes", std::to_string(o.nodes));
  line("threads", std::to_string(o.threads));
  line("trusted_proxies", proxies.empty() ? "(none)" : proxies);
  line("max_connections", std::to_string(o.max_connections));
  line("read_timeout", std::to_string(o.read_timeout_s) + "s");
  line("idle_timeout", std::to_string(o.idle_timeout_s) + "s");
  line("write_timeout", std::to_string(o.write_timeout_s) + "s");
  line("key_cache", o.key_cache ? std::to_string(o.key_cache) + " keys" : "off");
  line("doc_cache", o.doc_cache_mb ? std::to_string(o.doc_cache_mb) + " MiB" : "off");
  line("log_format", log_format);
  line("log_level", log_level);
  line("access_log", o.access_log ? "on" : "off");
  line("demo", o.demo ? "on" : "off");
  line("key_pepper", key_pepper().empty() ? "(unset: plain SHA-256)" : "(set)");
  return out;
}

int serve(const ServeOptions& opts) {
  ListenAddr listen = parse_listen(opts.listen);
  // Every thread that may hold a connection at once: the I/O threads, the two
  // sign-in threads, the request-log writer, and one spare.
  auto store = open_store(opts.db_url, true, opts.db_pool > 0 ? opts.db_pool : opts.threads + 4);
  core::SystemClock clock;

  std::string demo_org;
  if (opts.demo) {
    auto empty = store->empty();
    if (!empty) throw ConfigError("cannot read the database: " + empty.error().message);
    auto login = seed_demo(*store, clock);
    if (!login) throw ConfigError("cannot seed demo data: " + login.error().message);
    std::printf("%s\n", login->created ? "Demo data seeded: Acme Robotics (demo), 60 leads, 25 invoices."
                                       : "Demo data already present; the CEO's password was renewed.");
    std::printf("Login: %s\nPassword: %s\n", login->email.c_str(), login->password.c_str());
    std::printf("Organization: %s\n", login->org_id.c_str());
    demo_org = login->org_id;
  }

  core::KeyHasher hasher(key_pepper());
  std::unique_ptr<core::RateLimiter> limiter_ptr;
  if (opts.redis_url.empty()) {
    limiter_ptr = std::make_unique<core::LocalRateLimiter>(clock);
  } else {
    try {
      limiter_ptr = std::make_unique<store::RedisRateLimiter>(
          store::parse_redis_url(opts.redis_url), clock, opts.nodes);
    } catch (const std::exception& e) {
      throw ConfigError(e.what());
    }
  }
  core::RateLimiter& limiter = *limiter_ptr;
  store::RequestLogWriter log(*store, {});
  service::KeyService keys(*store, hasher, clock);
  // Revocation-safe through the store's key epoch (core/key_cache.hpp); a
  // store without one is asked every time.
  core::KeyCache key_cache(opts.key_cache);
  if (store->key_epoch()) keys.use_cache(&key_cache);
  // Exact through the store's document epoch (core/doc_cache.hpp); nothing
  // on a store without one.
  store->cache_documents(opts.doc_cache_mb << 20);
  // Sign-in throttling shares the limiter, so it holds across nodes too.
  service::SessionService sessions(*store, limiter, clock);
  http::RouterOptions ro;
  ro.secure_cookies = !is_loopback(listen.host);
  if (opts.access_log) ro.access_log = log_access;
  core::Metrics metrics;
  http::Router router(*store, keys, sessions, limiter, log, clock, metrics, ro);

  http::ServerOptions so;
  so.host = listen.host;
  so.port = listen.port;
  so.threads = opts.threads;
  so.trusted_proxies = opts.trusted_proxies;
  so.max_connections = opts.max_connections;
  so.read_timeout_s = opts.read_timeout_s;
  so.idle_timeout_s = opts.idle_timeout_s;
  so.write_timeout_s = opts.write_timeout_s;
  std::unique_ptr<http::Server> server;
  try {
    server = std::make_unique<http::Server>(
        so, [&router](const http::Request& r) { return router.handle(r); },
        &http::Router::is_slow);
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
  log.start();
  std::string host = listen.host.find(':') != std::string::npos ? "[" + listen.host + "]" : listen.host;
  std::printf("DevSphere API listening on http://%s:%u/ (%d threads, rate limits: %s)\n",
              host.c_str(), static_cast<unsigned>(server->port()), opts.threads,
              opts.redis_url.empty() ? "in process" : "shared through Redis");
  if (opts.demo)
    std::printf("Open http://%s:%u/ and sign in as above; create a key with:\n"
                "  %s keys create --org %s --name demo --scope leads:read --db %s\n",
                host.c_str(), static_cast<unsigned>(server->port()), opts.program.c_str(),
                demo_org.c_str(),
                opts.db_url.c_str());
  std::fflush(stdout);
  server->run();
  log.stop();
  spdlog::info("stopped: request log flushed ({} written, {} dropped)", log.written(),
               log.dropped());
  return 0;
}

}  // namespace dvs::app
