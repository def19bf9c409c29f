// Query strings: http::parse_target on any request target, then
// http::parse_list_query as /v1/leads, /v1/invoices and the /api lists call it,
// and http::reject_params. Every error renders as a valid JSON error body.
#include "http/query.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/models.hpp"
#include "fuzz_env.hpp"
#include "http/errors.hpp"

using namespace dvs;

namespace {
void check_error(const core::Error& e) {
  fuzz::require(e.code == core::Errc::invalid_request, "query errors are invalid_request");
  http::Response r = http::error_response(e, "req_fuzz");
  r.set("X-Request-Id", "req_fuzz");
  fuzz::check_response(r, "error_response");
}

void check_list(const http::Target& t, std::string_view prefix,
                std::span<const std::string_view> statuses) {
  auto q = http::parse_list_query(t, prefix, statuses);
  if (!q) return check_error(q.error());
  fuzz::require(q->limit >= 1 && q->limit <= 100, "limit is 1..100");
  if (!q->status.empty()) {
    bool known = false;
    for (auto s : statuses) known = known || s == q->status;
    fuzz::require(known, "status is one of the allowed values");
  }
  fuzz::require(q->after_created_at.has_value() == !q->after_id.empty(),
                "a cursor gives both created_at and id");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto t = http::parse_target(in);
  if (!t) {
    check_error(t.error());
    return 0;
  }
  fuzz::require(t->path.find('\0') == std::string::npos, "no NUL in a parsed path");
  check_list(*t, "lead", core::kLeadStatuses);
  check_list(*t, "inv", core::kInvoiceStatuses);
  check_list(*t, "req", {});
  check_list(*t, "evt", {});
  if (auto st = http::reject_params(*t); !st)
    check_error(st.error());
  else
    fuzz::require(t->params().empty(), "reject_params refuses any parameter");
  return 0;
}
