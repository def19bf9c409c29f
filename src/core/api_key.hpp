#pragma once
// API key secrets: generation, parsing, hashing, hints. No I/O.
//
// Format: "dvs_live_" + 32 random base62 + 6 base62 of CRC-32(random part),
// 47 characters in all. The checksum lets the server reject a mistyped or
// invented key before any look-up.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/errors.hpp"

namespace dvs::core {

inline constexpr std::string_view kKeyPrefix = "dvs_live_";
inline constexpr size_t kKeyRandomLen = 32;
inline constexpr size_t kKeyChecksumLen = 6;
inline constexpr size_t kKeyLen = 9 + kKeyRandomLen + kKeyChecksumLen;  // 47

// SHA-256 (or HMAC-SHA-256 with the pepper) of a secret: what is stored.
using KeyHash = std::array<unsigned char, 32>;

// Returns a new secret from libsodium's CSPRNG.
std::string generate_key_secret();

// The checksum characters for a 32-character random part.
std::string key_checksum(std::string_view random_part);

// Returns true when `secret` has the prefix, length, alphabet and checksum of
// a key. Constant work for a given length; never touches storage.
bool is_well_formed_key(std::string_view secret);

// "dvs_live_" + the first 4 random characters. `secret` must be well formed.
std::string key_hint(std::string_view secret);

// Hashes secrets for storage and look-up. With an empty pepper it is plain
// SHA-256; with a pepper it is HMAC-SHA-256 keyed by it, so a stolen database
// alone cannot confirm a guessed key. Immutable after construction; thread-safe.
class KeyHasher {
 public:
  explicit KeyHasher(std::string pepper = {}) : pepper_(std::move(pepper)) {}
  KeyHash hash(std::string_view secret) const;

 private:
  std::string pepper_;
};

// Constant-time equality of two hashes.
bool hash_equal(const KeyHash& a, const KeyHash& b);

// `text` with every API key in it replaced by "[REDACTED]": the characters
// after any "dvs_live_", and any run of 38 base62 characters whose last 6 are
// the checksum of the first 32 (a key pasted without its prefix). Used on
// everything echoed in an error or written to a log.
std::string redact_keys(std::string_view text);

// Extracts the token from an Authorization header value: "Bearer <token>",
// the scheme case-insensitive, one or more spaces. Returns nullopt otherwise.
std::optional<std::string_view> bearer_token(std::string_view header);

}  // namespace dvs::core
