#include "core/api_key.hpp"

#include <sodium.h>

#include "core/base62.hpp"

namespace dvs::core {

std::string key_checksum(std::string_view random_part) {
  return base62_encode(crc32(random_part), kKeyChecksumLen);
}

std::string generate_key_secret() {
  std::string random = random_base62(kKeyRandomLen);
  std::string out;
  out.reserve(kKeyLen);
  out.append(kKeyPrefix).append(random).append(key_checksum(random));
  return out;
}

bool is_well_formed_key(std::string_view s) {
  if (s.size() != kKeyLen || s.substr(0, kKeyPrefix.size()) != kKeyPrefix) return false;
  auto body = s.substr(kKeyPrefix.size());
  if (!is_base62(body)) return false;
  auto random = body.substr(0, kKeyRandomLen);
  auto sum = body.substr(kKeyRandomLen);
  // Not secret material (the checksum is derivable from the key), so a plain
  // comparison is fine here.
  return key_checksum(random) == sum;
}

std::string key_hint(std::string_view secret) {
  return std::string(kKeyPrefix) + std::string(secret.substr(kKeyPrefix.size(), 4));
}

KeyHash KeyHasher::hash(std::string_view secret) const {
  KeyHash out{};
  const auto* in = reinterpret_cast<const unsigned char*>(secret.data());
  if (pepper_.empty()) {
    crypto_hash_sha256(out.data(), in, secret.size());
  } else {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(pepper_.data()),
                                pepper_.size());
    crypto_auth_hmacsha256_update(&st, in, secret.size());
    crypto_auth_hmacsha256_final(&st, out.data());
  }
  return out;
}

bool hash_equal(const KeyHash& a, const KeyHash& b) {
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {
bool b62char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
}  // namespace

std::string redact_keys(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  constexpr size_t kBody = kKeyRandomLen + kKeyChecksumLen;  // 38
  while (i < text.size()) {
    if (!b62char(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i;
    while (j < text.size() && b62char(text[j])) ++j;
    std::string_view run = text.substr(i, j - i);
    bool secret = false;
    if (std::string_view(out).ends_with(kKeyPrefix)) {
      secret = true;  // "dvs_live_" + anything
    } else if (run.size() >= kBody) {
      for (size_t k = 0; k + kBody <= run.size() && !secret; ++k)
        secret = key_checksum(run.substr(k, kKeyRandomLen)) ==
                 run.substr(k + kKeyRandomLen, kKeyChecksumLen);
    }
    if (secret) out.append("[REDACTED]");
    else out.append(run);
    i = j;
  }
  return out;
}

std::optional<std::string_view> bearer_token(std::string_view h) {
  constexpr std::string_view kScheme = "bearer";
  if (h.size() <= kScheme.size() + 1) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = h[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  h.remove_prefix(kScheme.size());
  if (h.front() != ' ') return std::nullopt;
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  if (h.empty()) return std::nullopt;
  return h;
}

}  // namespace dvs::core
