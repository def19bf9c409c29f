// Query strings: http::parse_target on any request target, then
// http::parse_list_query as /v1/leads, /v1/invoices and the /api lists call it,
// and http::reject_params. Every error renders as a valid JSON error body.
// parse_target's one-pass check must decide as Boost.URL's grammar does, with
// the same path, query and parameters.
#include "http/query.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  auto u = boost::urls::parse_origin_form(in);
  const bool boost_accepts = u && std::string(u->path()).find('\0') == std::string::npos;
  fuzz::require(bool(t) == boost_accepts, "parse_target accepts what Boost.URL accepts");
  if (t) {
    fuzz::require(t->path == std::string(u->path()), "the path is Boost.URL's");
    fuzz::require(t->has_query == u->has_query(), "a query when Boost.URL sees one");
    fuzz::require(t->query == std::string(u->encoded_query()), "the query is Boost.URL's");
    std::vector<std::pair<std::string, std::string>> want;
    if (u->has_query())
      for (auto p : u->params())
        want.emplace_back(p.key, p.has_value ? std::string(p.value) : std::string());
    fuzz::require(t->params() == want, "the parameters are Boost.URL's");
  }
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
