#pragma once
// Error codes and Result<T>: how core and store functions report failure.
// Exceptions are for start-up and configuration only; everything reachable from
// a request returns a Result and the HTTP edge maps the Errc to the contract's
// JSON error (src/http/errors.cpp).

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dvs::core {

enum class Errc {
  invalid_request,     // 400: a bad parameter or body (Error::param names it)
  invalid_api_key,     // 401: missing, malformed, wrong, revoked or expired key
  unauthenticated,     // 401: /api without a valid session
  insufficient_scope,  // 403: the key lacks a scope (Error::param names it)
  forbidden,           // 403: authenticated but not allowed
  not_found,           // 404: no such object in this organization, or no route
  method_not_allowed,  // 405
  conflict,            // 409: unique constraint (e.g. an e-mail already taken)
  payload_too_large,   // 413
  unsupported_media_type,  // 415
  rate_limited,        // 429
  unavailable,         // 503: a dependency (database) cannot be reached
  internal,            // 500: a fault; details only in the log
};

// An error with an optional parameter name (invalid_request: the offending
// parameter; insufficient_scope: the required scope) and a human message that
// is safe to show a client: it never contains a secret.
struct Error {
  Errc code;
  std::string message;
  std::string param;
  // rate_limited: seconds until a retry may succeed; unavailable: a hint
  // (0: the default of 1 s; more when the disk is full or read-only).
  int64_t retry_after_s = 0;
};

// The one message of every refused API key (unknown, revoked, expired,
// malformed alike: the response never tells which).
inline constexpr std::string_view kInvalidApiKeyMessage = "Invalid API key provided.";

inline Error make_error(Errc code, std::string message, std::string param = {}) {
  return Error{code, std::move(message), std::move(param), 0};
}

// Either a value or an Error. Cheap to move; must be checked.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}           // NOLINT: implicit on purpose
  Result(Error error) : v_(std::move(error)) {}       // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return err_; }

 private:
  Error err_{Errc::internal, {}, {}};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace dvs::core
