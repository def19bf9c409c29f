#include "service/session_service.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "core/base62.hpp"
#include "core/password.hpp"

namespace dvs::service {

using core::Errc;
using core::make_error;

namespace {
constexpr size_t kTokenBytes = 32;
// base64url without padding of 32 bytes.
constexpr size_t kTokenChars = 43;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

core::KeyHash token_hash(std::string_view token) {
  core::KeyHash h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return h;
}

core::Error unauthenticated() {
  return make_error(Errc::unauthenticated, "Sign in to continue.");
}
}  // namespace

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) {
      auto v = part.substr(eq + 1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      return v;
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

SessionService::SessionService(store::Store& store, core::RateLimiter& limiter,
                               const core::Clock& clock, SessionOptions opts)
    : store_(store), limiter_(limiter), clock_(clock), opts_(opts) {
  dummy_hash_ = core::hash_password(core::random_base62(24)).value_or("");
}

core::Result<SignedIn> SessionService::sign_in(std::string_view email, std::string_view password,
                                               std::string_view ip,
                                               std::string_view user_agent) {
  const std::string email_key = "signin-email:" + lower(email.substr(0, 320));
  const std::string ip_key = "signin-ip:" + std::string(ip);
  auto by_email = limiter_.peek(email_key, opts_.failures_per_email_per_minute);
  auto by_ip = limiter_.peek(ip_key, opts_.failures_per_ip_per_minute);
  if (!by_email.allowed || !by_ip.allowed) {
    spdlog::warn("sign-in throttled for {} from {}", email.substr(0, 320), ip);
    auto e = make_error(Errc::rate_limited,
                        "Too many failed sign-ins. Wait a minute and try again.");
    e.retry_after_s = std::max(by_email.retry_after_s, by_ip.retry_after_s);
    return e;
  }

  auto user = store_.find_user_by_email(email);
  if (!user && user.error().code != Errc::not_found) return user.error();
  bool ok;
  if (user && !user->password_hash.empty()) {
    ok = core::verify_password(user->password_hash, password);
  } else {
    (void)core::verify_password(dummy_hash_, password);  // same cost as a real check
    ok = false;
  }
  if (!ok) {
    (void)limiter_.acquire(email_key, opts_.failures_per_email_per_minute);
    (void)limiter_.acquire(ip_key, opts_.failures_per_ip_per_minute);
    spdlog::warn("sign-in failed for {} from {}", email.substr(0, 320), ip);
    return make_error(Errc::unauthenticated, "Incorrect email or password.");
  }
  auto org = store_.get_org(user->org_id);
  if (!org) return org.error();

  unsigned char raw[kTokenBytes];
  randombytes_buf(raw, sizeof raw);
  std::string token(sodium_base64_encoded_len(kTokenBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                    '\0');
  sodium_bin2base64(token.data(), token.size(), raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  token.resize(kTokenChars);
  sodium_memzero(raw, sizeof raw);

  core::Session s;
  s.token_hash = token_hash(token);
  s.user_id = user->id;
  s.created_at = s.last_seen_at = clock_.now_s();
  s.ip = std::string(ip);
  s.user_agent = std::string(user_agent.substr(0, 256));
  if (auto st = store_.create_session(s); !st) return st.error();
  // Sign-ins are rare, so this is where dead sessions are swept away.
  (void)store_.delete_stale_sessions(s.created_at - opts_.idle_timeout_s,
                                     s.created_at - opts_.absolute_timeout_s);
  spdlog::info("sign-in: {} from {}", user->email, ip);
  SignedIn out;
  out.token = std::move(token);
  out.ctx.user = std::move(*user);
  out.ctx.org = std::move(*org);
  return out;
}

core::Result<SessionContext> SessionService::authenticate(std::string_view cookie_header) {
  auto token = cookie_value(cookie_header, kSessionCookie);
  if (!token || token->size() != kTokenChars) return unauthenticated();
  const auto h = token_hash(*token);
  auto s = store_.find_session(h);
  if (!s) return s.error().code == Errc::not_found ? unauthenticated() : s.error();
  const int64_t now = clock_.now_s();
  if (now - s->last_seen_at > opts_.idle_timeout_s ||
      now - s->created_at > opts_.absolute_timeout_s) {
    (void)store_.delete_session(h);
    return make_error(Errc::unauthenticated, "Your session has ended. Sign in again.");
  }
  // Sliding the idle timeout costs a write; once a minute is precise enough.
  if (now - s->last_seen_at >= 60) (void)store_.touch_session(h, now);
  auto user = store_.get_user(s->user_id);
  if (!user) return user.error().code == Errc::not_found ? unauthenticated() : user.error();
  auto org = store_.get_org(user->org_id);
  if (!org) return org.error();
  return SessionContext{std::move(*user), std::move(*org)};
}

core::Status SessionService::sign_out(std::string_view cookie_header) {
  auto token = cookie_value(cookie_header, kSessionCookie);
  if (!token || token->size() != kTokenChars) return {};
  return store_.delete_session(token_hash(*token));
}

}  // namespace dvs::service
