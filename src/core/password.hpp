#pragma once
// Password hashing with Argon2id (libsodium), at or above OWASP's minimum
// (m = 19 MiB, t = 2, p = 1): here t = 2 and m = 64 MiB, libsodium's
// "interactive" profile.

#include <optional>
#include <string>
#include <string_view>

namespace dvs::core {

// The encoded hash ("$argon2id$v=19$m=65536,t=2,p=1$..."), or nullopt when
// memory for hashing could not be had.
std::optional<std::string> hash_password(std::string_view password);

// True when `password` matches `encoded`. Constant time in the password.
bool verify_password(std::string_view encoded, std::string_view password);

}  // namespace dvs::core
