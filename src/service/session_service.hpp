#pragma once
// Portal sign-in and sessions (OWASP session management guidance):
// - a new 256-bit random token at every sign-in, stored only as SHA-256;
// - idle (30 min) and absolute (12 h) timeouts enforced on the server;
// - sign-out deletes the session on the server;
// - failed sign-ins are throttled per e-mail (5 a minute) and per client IP
//   (20 a minute), checked *before* the password is verified so throttling
//   really stops guessing, and each failure is logged. A real user locked out
//   by someone else's guesses waits at most a minute.
// Thread-safe.

#include <optional>
#include <string>
#include <string_view>

#include "core/api_key.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/models.hpp"
#include "core/rate_limiter.hpp"
#include "store/store.hpp"

namespace dvs::service {

inline constexpr std::string_view kSessionCookie = "dvs_session";

struct SessionOptions {
  int64_t idle_timeout_s = 30 * 60;
  int64_t absolute_timeout_s = 12 * 3600;
  uint32_t failures_per_email_per_minute = 5;
  uint32_t failures_per_ip_per_minute = 20;
};

struct SessionContext {
  core::User user;
  core::Organization org;
};

struct SignedIn {
  std::string token;  // the cookie value; never stored or logged
  SessionContext ctx;
};

class SessionService {
 public:
  SessionService(store::Store& store, core::RateLimiter& limiter, const core::Clock& clock,
                 SessionOptions opts = {});

  // unauthenticated for a wrong e-mail or password (one message for both);
  // rate_limited (with retry_after_s) when throttled. Slow on purpose
  // (Argon2id): callers run it off the I/O threads.
  core::Result<SignedIn> sign_in(std::string_view email, std::string_view password,
                                 std::string_view ip, std::string_view user_agent);

  // The session named by a Cookie header; unauthenticated when there is none,
  // or it is unknown, idle too long or too old.
  core::Result<SessionContext> authenticate(std::string_view cookie_header);

  // Ends the session named by the Cookie header, if any.
  core::Status sign_out(std::string_view cookie_header);

  const SessionOptions& options() const { return opts_; }

 private:
  store::Store& store_;
  core::RateLimiter& limiter_;
  const core::Clock& clock_;
  SessionOptions opts_;
  std::string dummy_hash_;  // verified against for unknown e-mails: equal timing
};

// The value of cookie `name` in a Cookie header, if present.
std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name);

}  // namespace dvs::service
