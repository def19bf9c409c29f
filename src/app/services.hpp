#pragma once
// The one place that wires concrete types together for `serve`.

#include <memory>
#include <string>
#include <vector>

#include "core/api_key.hpp"
#include "core/clock.hpp"
#include "core/rate_limiter.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "service/key_service.hpp"
#include "store/request_log_writer.hpp"
#include "store/store.hpp"

namespace dvs::app {

struct ServeOptions {
  std::string db_url;
  std::string listen;
  std::string redis_url;  // empty: rate limits kept in process
  uint32_t nodes = 1;     // serve processes sharing the limits (Redis fallback)
  int threads = 2;
  int db_pool = 0;  // PostgreSQL connections; 0: threads + 4
  std::vector<std::string> trusted_proxies;
  size_t max_connections = 10000;
  int read_timeout_s = 30;
  int idle_timeout_s = 60;
  int write_timeout_s = 30;
  size_t key_cache = 50000;  // keys cached in memory; 0: none
  size_t doc_cache_mb = 16;  // /v1 pages and objects cached in memory; 0: none
  bool demo = false;
  bool access_log = false;
  std::string program = "devsphere";  // how this binary was invoked, for hints
};

// The effective settings as "name = value" lines, secrets masked (the
// database and Redis passwords; the key pepper is shown only as set/unset).
std::string describe_settings(const ServeOptions& opts, const std::string& log_format,
                              const std::string& log_level);

// Runs the service until SIGTERM/SIGINT; returns the process exit code.
// Throws ConfigError for bad settings (before anything is served).
int serve(const ServeOptions& opts);

}  // namespace dvs::app
