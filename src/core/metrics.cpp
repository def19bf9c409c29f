#include "core/metrics.hpp"

namespace dvs::core {

std::string_view route_label(Route r) {
  switch (r) {
    case Route::v1_leads_list: return "GET /v1/leads";
    case Route::v1_leads_get: return "GET /v1/leads/{id}";
    case Route::v1_invoices_list: return "GET /v1/invoices";
    case Route::v1_invoices_get: return "GET /v1/invoices/{id}";
    case Route::v1_key: return "GET /v1/key";
    case Route::v1_openapi: return "GET /v1/openapi.json";
    case Route::v1_unknown: return "/v1 (no route)";
    case Route::api_session: return "/api/session";
    case Route::api_keys: return "/api/keys";
    case Route::api_key_action: return "/api/keys/{id}/*";
    case Route::api_audit: return "/api/audit-events";
    case Route::portal: return "portal";
    case Route::health: return "health";
    case Route::metrics: return "/metrics";
    case Route::unknown: case Route::kCount: break;
  }
  return "other";
}

std::string_view key_outcome_label(KeyOutcome o) {
  switch (o) {
    case KeyOutcome::valid: return "valid";
    case KeyOutcome::missing: return "missing";
    case KeyOutcome::malformed: return "malformed";
    case KeyOutcome::unknown: return "unknown";
    case KeyOutcome::revoked: return "revoked";
    case KeyOutcome::expired: return "expired";
    case KeyOutcome::wrong_scope: return "wrong_scope";
    case KeyOutcome::kCount: break;
  }
  return "other";
}

void Metrics::record_request(Route route, int status, int64_t latency_us) {
  const size_t r = static_cast<size_t>(route);
  size_t slot = kStatuses.size();
  for (size_t i = 0; i < kStatuses.size(); ++i)
    if (kStatuses[i] == status) {
      slot = i;
      break;
    }
  add(requests_[r][slot]);
  size_t b = 0;
  while (b < kBucketsUs.size() && latency_us > kBucketsUs[b]) ++b;
  add(latency_[r][b]);
  add(latency_sum_us_[r], static_cast<uint64_t>(latency_us < 0 ? 0 : latency_us));
}

std::string Metrics::render(const Gauges& gauges) const {
  std::string out;
  out.reserve(16384);
  auto load = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  auto line = [&](std::string_view name, std::string_view labels, uint64_t v) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(std::to_string(v)).append("\n");
  };
  out.append("# HELP dvs_http_requests_total HTTP requests answered, by route and status.\n");
  out.append("# TYPE dvs_http_requests_total counter\n");
  for (size_t r = 0; r < kRoutes; ++r)
    for (size_t s = 0; s < kStatusSlots; ++s) {
      uint64_t v = load(requests_[r][s]);
      if (v == 0) continue;
      std::string labels = "route=\"" + std::string(route_label(static_cast<Route>(r))) +
                           "\",status=\"" +
                           (s < kStatuses.size() ? std::to_string(kStatuses[s]) : "other") + "\"";
      line("dvs_http_requests_total", labels, v);
    }
  out.append("# HELP dvs_http_request_duration_seconds Time from a request having been read to its "
             "response being ready, by route.\n");
  out.append("# TYPE dvs_http_request_duration_seconds histogram\n");
  for (size_t r = 0; r < kRoutes; ++r) {
    uint64_t total = 0;
    for (const auto& b : latency_[r]) total += load(b);
    if (total == 0) continue;
    const std::string route = "route=\"" + std::string(route_label(static_cast<Route>(r))) + "\"";
    uint64_t cum = 0;
    for (size_t b = 0; b <= kBucketsUs.size(); ++b) {
      cum += load(latency_[r][b]);
      std::string le = b < kBucketsUs.size()
                           ? std::to_string(static_cast<double>(kBucketsUs[b]) / 1e6)
                           : "+Inf";
      // Trim std::to_string's trailing zeros: 0.000100 -> 0.0001.
      if (le != "+Inf") {
        while (le.back() == '0') le.pop_back();
        if (le.back() == '.') le.pop_back();
      }
      line("dvs_http_request_duration_seconds_bucket", route + ",le=\"" + le + "\"", cum);
    }
    out.append("dvs_http_request_duration_seconds_sum{").append(route).append("} ");
    out.append(std::to_string(static_cast<double>(load(latency_sum_us_[r])) / 1e6)).append("\n");
    line("dvs_http_request_duration_seconds_count", route, cum);
  }
  out.append("# HELP dvs_api_key_checks_total API key checks on /v1, by outcome.\n");
  out.append("# TYPE dvs_api_key_checks_total counter\n");
  for (size_t o = 0; o < keys_.size(); ++o)
    line("dvs_api_key_checks_total",
         "outcome=\"" + std::string(key_outcome_label(static_cast<KeyOutcome>(o))) + "\"",
         load(keys_[o]));
  out.append("# HELP dvs_rate_limited_total Requests refused with 429.\n");
  out.append("# TYPE dvs_rate_limited_total counter\n");
  line("dvs_rate_limited_total", "", load(rate_limited_));
  if (gauges) gauges(out);
  return out;
}

}  // namespace dvs::core
