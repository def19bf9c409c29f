#pragma once
// The one place an Errc becomes the contract's JSON error (section 5).

#include <string_view>

#include "core/errors.hpp"
#include "http/types.hpp"

namespace dvs::http {

// HTTP status for an error code.
int http_status(core::Errc code);
// The contract's code string ("invalid_request", ...).
std::string_view error_code_name(core::Errc code);

// {"error":{"code","message"[,"param"|"required_scope"]}} with the status
// and headers the contract requires (WWW-Authenticate on invalid_api_key).
// internal and unavailable errors get a fixed message naming the request id;
// their detail belongs in the log, never in the response.
Response error_response(const core::Error& err, std::string_view request_id);

}  // namespace dvs::http
