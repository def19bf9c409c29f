#include "http/errors.hpp"

#include "core/json_writer.hpp"

namespace dvs::http {

using core::Errc;

int http_status(Errc code) {
  switch (code) {
    case Errc::invalid_request: return 400;
    case Errc::invalid_api_key: return 401;
    case Errc::unauthenticated: return 401;
    case Errc::insufficient_scope: return 403;
    case Errc::forbidden: return 403;
    case Errc::not_found: return 404;
    case Errc::method_not_allowed: return 405;
    case Errc::conflict: return 409;
    case Errc::payload_too_large: return 413;
    case Errc::unsupported_media_type: return 415;
    case Errc::rate_limited: return 429;
    case Errc::unavailable: return 503;
    case Errc::internal: return 500;
  }
  return 500;
}

std::string_view error_code_name(Errc code) {
  switch (code) {
    case Errc::invalid_request: return "invalid_request";
    case Errc::invalid_api_key: return "invalid_api_key";
    case Errc::unauthenticated: return "unauthenticated";
    case Errc::insufficient_scope: return "insufficient_scope";
    case Errc::forbidden: return "forbidden";
    case Errc::not_found: return "not_found";
    case Errc::method_not_allowed: return "method_not_allowed";
    case Errc::conflict: return "conflict";
    case Errc::payload_too_large: return "payload_too_large";
    case Errc::unsupported_media_type: return "unsupported_media_type";
    case Errc::rate_limited: return "rate_limited";
    case Errc::unavailable: return "service_unavailable";
    case Errc::internal: return "internal_error";
  }
  return "internal_error";
}

namespace {
void write_error_body(const core::Error& err, std::string_view message, std::string& out) {
  out.reserve(64 + message.size() + err.param.size());  // one allocation, not one per doubling
  core::JsonWriter w(out);
  w.begin_object().key("error").begin_object();
  w.key("code").string(error_code_name(err.code));
  w.key("message").string(message);
  if (!err.param.empty()) {
    if (err.code == Errc::insufficient_scope) w.key("required_scope").string(err.param);
    else w.key("param").string(err.param);
  }
  w.end_object().end_object();
}
}  // namespace

Response error_response(const core::Error& err, std::string_view request_id) {
  Response r;
  r.status = http_status(err.code);
  if (err.code == Errc::internal) {
    write_error_body(err,
                     "An internal error occurred. Reference: " + std::string(request_id) + ".",
                     r.body);
  } else if (err.code == Errc::unavailable) {
    write_error_body(
        err,
        "The service is temporarily unavailable. Reference: " + std::string(request_id) + ".",
        r.body);
  } else if (err.code == Errc::invalid_api_key && err.param.empty() &&
             err.message == core::kInvalidApiKeyMessage) {
    // Every refused key gets these bytes (a bad-key flood's whole body):
    // written once, by the same code, and sent from there.
    static const std::string kBody = [&err] {
      std::string b;
      write_error_body(err, core::kInvalidApiKeyMessage, b);
      return b;
    }();
    r.static_body = kBody;
  } else {
    write_error_body(err, err.message, r.body);
  }
  if (err.code == Errc::invalid_api_key)
    r.set("WWW-Authenticate", "Bearer realm=\"DevSphere API\", error=\"invalid_token\"");
  if (err.code == Errc::insufficient_scope)
    r.set("WWW-Authenticate",
          "Bearer realm=\"DevSphere API\", error=\"insufficient_scope\", scope=\"" + err.param +
              "\"");
  if (err.code == Errc::unavailable)
    r.set("Retry-After", err.retry_after_s > 0 ? std::to_string(err.retry_after_s) : "1");
  if (err.code == Errc::rate_limited && err.retry_after_s > 0)
    r.set("Retry-After", std::to_string(err.retry_after_s));
  return r;
}

}  // namespace dvs::http
