#include "service/key_service.hpp"

#include <spdlog/spdlog.h>

#include "core/ids.hpp"
#include "core/scope.hpp"

namespace dvs::service {

using core::Errc;
using core::make_error;

std::optional<size_t> utf8_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0               ? 4
                                                    : 0;
    if (len == 0 || i + len > s.size()) return std::nullopt;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return std::nullopt;
    i += len;
    ++n;
  }
  return n;
}

namespace {
bool has_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F) return true;
  return false;
}
}  // namespace

Result<IssuedKey> KeyService::create(const NewKeyRequest& req) {
  auto len = utf8_length(req.name);
  bool blank = req.name.find_first_not_of(' ') == std::string::npos;
  if (!len || *len < 1 || *len > 100 || blank || has_control_chars(req.name))
    return make_error(Errc::invalid_request,
                      "name must be 1 to 100 characters, not all spaces, without control "
                      "characters",
                      "name");
  if (req.scopes.empty())
    return make_error(Errc::invalid_request, "at least one scope is required", "scopes");
  core::ScopeSet scopes;
  for (const auto& s : req.scopes) {
    auto sc = core::parse_scope(s);
    if (!sc)
      return make_error(Errc::invalid_request,
                        "unknown scope; known scopes are leads:read and invoices:read", "scopes");
    scopes.add(*sc);
  }
  const int64_t now = clock_.now_s();
  if (req.expires_at && *req.expires_at <= now)
    return make_error(Errc::invalid_request, "expires_at must be in the future", "expires_at");
  int64_t limit = req.rate_limit_per_minute.value_or(core::kDefaultRateLimit);
  if (limit < 1 || limit > core::kMaxRateLimit)
    return make_error(Errc::invalid_request, "rate_limit_per_minute must be 1 to 100000",
                      "rate_limit_per_minute");
  auto org = store_.get_org(req.org_id);
  if (!org) return org.error();
  auto active = store_.count_active_keys(req.org_id, now);
  if (!active) return active.error();
  if (*active >= max_active_keys_)
    return make_error(Errc::invalid_request,
                      "This organization has " + std::to_string(max_active_keys_) +
                          " active keys, the most allowed. Revoke one first.");

  IssuedKey out;
  out.secret = core::generate_key_secret();
  core::ApiKey& k = out.key;
  k.id = core::new_id("key", clock_.now_us());
  k.org_id = req.org_id;
  k.name = req.name;
  k.hint = core::key_hint(out.secret);
  k.secret_hash = hasher_.hash(out.secret);
  k.scopes = scopes;
  k.rate_limit_per_minute = static_cast<uint32_t>(limit);
  k.created_at = now;
  k.created_by_id = req.created_by;
  k.expires_at = req.expires_at;
  const auto event = make_audit(k, "api_key.created", req.created_by, req.ip);
  if (auto st = store_.insert_key(k, &event); !st) return st.error();
  if (k.created_by_id) {
    // Re-read so created_by carries the e-mail as stored.
    if (auto stored = store_.get_key(k.org_id, k.id)) k = *stored;
  }
  return out;
}

Result<RotatedKey> KeyService::rotate(std::string_view org_id, std::string_view key_id,
                                      int64_t grace_seconds,
                                      const std::optional<std::string>& actor,
                                      const std::string& ip) {
  if (grace_seconds < 0 || grace_seconds > kMaxRotationGraceSeconds)
    return make_error(Errc::invalid_request, "expire_old_in_seconds must be 0 to 604800",
                      "expire_old_in_seconds");
  auto old = store_.get_key(org_id, key_id);
  if (!old) return old.error();
  const int64_t now = clock_.now_s();
  if (old->status(now) != core::KeyStatus::active || old->replaced_by)
    return make_error(Errc::not_found, "no such active key");

  if (grace_seconds > 0) {
    // During the grace period both keys are active, so the new one counts
    // against the cap; without this, rotating with grace would bypass it.
    auto active = store_.count_active_keys(old->org_id, now);
    if (!active) return active.error();
    if (*active >= max_active_keys_)
      return make_error(Errc::invalid_request,
                        "This organization has " + std::to_string(max_active_keys_) +
                            " active keys, the most allowed. Rotate without a grace period, or "
                            "revoke a key first.",
                        "expire_old_in_seconds");
  }

  RotatedKey out;
  out.secret = core::generate_key_secret();
  core::ApiKey& k = out.key;
  k.id = core::new_id("key", clock_.now_us());
  k.org_id = old->org_id;
  k.name = old->name;
  k.hint = core::key_hint(out.secret);
  k.secret_hash = hasher_.hash(out.secret);
  k.scopes = old->scopes;
  k.rate_limit_per_minute = old->rate_limit_per_minute;
  k.created_at = now;
  k.created_by_id = actor ? actor : old->created_by_id;
  k.expires_at = old->expires_at;
  const auto event = make_audit(*old, "api_key.rotated", actor, ip);
  if (auto st = store_.rotate_key(old->org_id, old->id, k, now + grace_seconds, now, &event); !st)
    return st.error();
  auto fresh = store_.get_key(old->org_id, k.id);
  if (fresh) k = *fresh;
  auto replaced = store_.get_key(old->org_id, old->id);
  if (!replaced) return replaced.error();
  out.replaced = *replaced;
  return out;
}

Result<core::ApiKey> KeyService::revoke(std::string_view org_id, std::string_view key_id,
                                        const std::optional<std::string>& actor,
                                        const std::string& ip) {
  auto before = store_.get_key(org_id, key_id);
  if (!before) return before.error();
  const int64_t now = clock_.now_s();
  // Written with the revocation, and only if this call revoked it.
  const auto event = make_audit(*before, "api_key.revoked", actor, ip);
  return store_.revoke_key(before->org_id, key_id, now, &event);
}

Result<core::ApiKey> KeyService::authenticate(std::string_view header,
                                              core::KeyOutcome* outcome,
                                              core::ApiKey* refused) const {
  auto begun = begin_authentication(header, outcome, refused);
  if (auto* lookup = std::get_if<KeyLookup>(&begun))
    return finish_authentication(*lookup, store_.find_key_by_hash(lookup->hash), outcome, refused);
  return std::move(std::get<Result<core::ApiKey>>(begun));
}

namespace {
Result<core::ApiKey> refuse(core::KeyOutcome& out, core::KeyOutcome why) {
  out = why;
  return make_error(Errc::invalid_api_key, std::string(core::kInvalidApiKeyMessage));
}
}  // namespace

std::variant<Result<core::ApiKey>, KeyService::KeyLookup> KeyService::begin_authentication(
    std::string_view header, core::KeyOutcome* outcome, core::ApiKey* refused,
    const core::KeyHash* hashed) const {
  core::KeyOutcome ignored;
  core::KeyOutcome& out = outcome ? *outcome : ignored;
  if (header.empty()) return refuse(out, core::KeyOutcome::missing);
  auto token = core::bearer_token(header);
  if (!token || !core::is_well_formed_key(*token)) return refuse(out, core::KeyOutcome::malformed);
  KeyLookup lookup;
  lookup.hash = hashed ? *hashed : hasher_.hash(*token);
  // The epoch first, then the key (core/key_cache.hpp).
  if (cache_ && cache_->enabled()) lookup.epoch = store_.key_epoch();
  if (lookup.epoch) {
    if (auto cached = cache_->get(lookup.hash, *lookup.epoch))
      return judge(Result<core::ApiKey>(std::move(*cached)), outcome, refused);
  }
  return lookup;
}

std::optional<core::ApiKey> KeyService::guess(const core::KeyHash& hash) const {
  if (!cache_ || !cache_->enabled()) return std::nullopt;
  auto key = cache_->peek(hash);
  if (key && key->status(clock_.now_s()) != core::KeyStatus::active) return std::nullopt;
  return key;
}

Result<core::ApiKey> KeyService::finish_authentication(const KeyLookup& lookup,
                                                       Result<core::ApiKey> key,
                                                       core::KeyOutcome* outcome,
                                                       core::ApiKey* refused) const {
  if (key && lookup.epoch) cache_->put(lookup.hash, *key, *lookup.epoch);
  return judge(std::move(key), outcome, refused);
}

Result<core::ApiKey> KeyService::judge(Result<core::ApiKey> key, core::KeyOutcome* outcome,
                                       core::ApiKey* refused) const {
  core::KeyOutcome ignored;
  core::KeyOutcome& out = outcome ? *outcome : ignored;
  if (!key) {
    if (key.error().code == Errc::not_found) return refuse(out, core::KeyOutcome::unknown);
    out = core::KeyOutcome::unknown;
    return key.error();
  }
  switch (key->status(clock_.now_s())) {
    case core::KeyStatus::revoked:
      if (refused) *refused = std::move(*key);
      return refuse(out, core::KeyOutcome::revoked);
    case core::KeyStatus::expired:
      if (refused) *refused = std::move(*key);
      return refuse(out, core::KeyOutcome::expired);
    case core::KeyStatus::active: break;
  }
  out = core::KeyOutcome::valid;
  return key;
}

core::Status KeyService::record_expirations(std::string_view org_id) {
  auto expired = store_.claim_expired_keys(org_id, clock_.now_s());
  if (!expired) return expired.error();
  // Claimed and recorded in two steps: a crash between them loses that
  // expiry's event (the key itself is expired either way).
  for (const auto& k : *expired) {
    const auto e = make_audit(k, "api_key.expired", std::nullopt, "", k.expires_at);
    if (auto st = store_.append_audit(e); !st)
      spdlog::error("audit event api_key.expired for {} not written: {}", k.id,
                    st.error().message);
  }
  return {};
}

core::AuditEvent KeyService::make_audit(const core::ApiKey& key, std::string_view type,
                                        const std::optional<std::string>& actor,
                                        const std::string& ip, std::optional<int64_t> at) const {
  core::AuditEvent e;
  e.id = core::new_id("evt", clock_.now_us());
  e.org_id = key.org_id;
  e.type = std::string(type);
  e.actor_user_id = actor;
  e.key_id = key.id;
  e.ip = ip;
  e.created_at = at.value_or(clock_.now_s());
  return e;
}

}  // namespace dvs::service
