#pragma once
// Request targets: path and query parameters (Boost.URL), and the validation
// of list parameters (contract section 3). Thread-safe (pure functions).

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/errors.hpp"
#include "core/models.hpp"

namespace dvs::http {

struct Target {
  std::string path;  // percent-decoded
  // The query as sent (percent-encoded; parse_target checked its syntax).
  // Its parameters are decoded only where they are read: a refused key, a
  // 429 or a query-less single object never needs them.
  std::string query;
  bool has_query = false;  // a '?', even with nothing after it

  // The parameters, decoded, in order.
  std::vector<std::pair<std::string, std::string>> params() const;
};

// invalid_request for a target that is not a valid origin-form URL.
core::Result<Target> parse_target(std::string_view target);

// Validates limit (1-100, default 20), cursor (for ids with `id_prefix`),
// status (one of `statuses`) and updated_since (RFC 3339). Any other or any
// repeated parameter is invalid_request naming it, as Stripe does: a typo
// like "limt" should fail loudly, not silently return 20 rows.
// `filters`: whether status and updated_since apply (leads and invoices);
// without them both are unknown parameters.
core::Result<core::ListQuery> parse_list_query(const Target& t, std::string_view id_prefix,
                                               std::span<const std::string_view> statuses,
                                               bool filters = true);

// invalid_request naming the first parameter, if there is any.
core::Status reject_params(const Target& t);

}  // namespace dvs::http
