#include "app/logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

#include "core/json_writer.hpp"
#include "core/time.hpp"

namespace dvs::app {

namespace {

LogFormat g_format = LogFormat::text;

void append_time(std::string& out, std::chrono::system_clock::time_point tp) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(tp.time_since_epoch()).count();
  std::string t = core::format_rfc3339(us / 1'000'000);
  t.pop_back();  // 'Z'
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(us / 1000 % 1000));
  out += t;
  out += ms;
}

// {"time":"...","level":"info","msg":"..."} with the message escaped.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(64 + msg.payload.size());
    line += "{\"time\":\"";
    append_time(line, msg.time);
    line += "\",\"level\":";
    auto lv = spdlog::level::to_string_view(msg.level);
    core::append_json_string(line, std::string_view(lv.data(), lv.size()));
    line += ",\"msg\":";
    core::append_json_string(line, std::string_view(msg.payload.data(), msg.payload.size()));
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void setup_logging(LogFormat format, const std::string& level) {
  auto lv = spdlog::level::from_str(level);
  if (lv == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level '" + level +
                                "' (trace, debug, info, warn, error, off)");
  g_format = format;
  auto logger = spdlog::get("devsphere");
  if (!logger) {
    logger = std::make_shared<spdlog::logger>(
        "devsphere", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    spdlog::register_logger(logger);
  }
  if (format == LogFormat::json)
    logger->set_formatter(std::make_unique<JsonFormatter>());
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  logger->set_level(lv);
  spdlog::set_default_logger(logger);
}

void log_access(const http::Request& req, const http::Response& res, std::string_view route,
                int64_t latency_us) {
  auto logger = spdlog::default_logger_raw();
  if (!logger->should_log(spdlog::level::info)) return;
  std::string rid, key;
  for (const auto& [k, v] : res.headers)
    if (k == "X-Request-Id") rid = v;
  if (g_format == LogFormat::json) {
    // Fields as fields, not inside the message.
    std::string line = "{\"time\":\"";
    append_time(line, std::chrono::system_clock::now());
    line += "\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":";
    core::append_json_string(line, rid);
    line += ",\"method\":";
    core::append_json_string(line, req.method.substr(0, 16));
    line += ",\"route\":";
    core::append_json_string(line, route);
    line += ",\"status\":" + std::to_string(res.status);
    line += ",\"latency_us\":" + std::to_string(latency_us);
    line += ",\"key_id\":";
    if (res.key_id.empty()) line += "null";
    else core::append_json_string(line, res.key_id);
    line += ",\"client_ip\":";
    core::append_json_string(line, req.client_ip);
    line += "}";
    std::fputs((line + "\n").c_str(), stderr);
    return;
  }
  logger->info("request {} {} {} {} {}us key={} ip={}", rid, req.method.substr(0, 16), route,
               res.status, latency_us, res.key_id.empty() ? "-" : res.key_id, req.client_ip);
}

}  // namespace dvs::app
