#pragma once
// Log set-up: text or JSON lines on stderr, a level, and the access log
// (one line per request when enabled). Nothing logged anywhere carries a
// secret: keys, passwords and session tokens are never passed to a logger.

#include <string>

#include "http/types.hpp"

namespace dvs::app {

enum class LogFormat { text, json };

// Installs the default logger. Throws std::invalid_argument for an unknown
// level ("trace", "debug", "info", "warn", "error", "off").
void setup_logging(LogFormat format, const std::string& level);

// One access-log line: time, level, request id, method, route, status,
// latency and key id (or null). Thread-safe.
void log_access(const http::Request& req, const http::Response& res, std::string_view route,
                int64_t latency_us);

}  // namespace dvs::app
