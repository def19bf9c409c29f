#pragma once
// Base62 with the alphabet 0-9A-Z a-z (ASCII order), and CRC-32 (IEEE, as zlib).

#include <cstdint>
#include <string>
#include <string_view>

namespace dvs::core {

inline constexpr std::string_view kBase62Alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// True when every character is in the base62 alphabet (and s is non-empty).
bool is_base62(std::string_view s);

// `value` in base62, most significant digit first, left-padded with '0' to
// `width` characters (longer if the value needs more).
std::string base62_encode(uint64_t value, size_t width);

// `n` characters drawn uniformly from the alphabet with libsodium's CSPRNG.
std::string random_base62(size_t n);

// CRC-32 as zlib's crc32() computes it (polynomial 0xEDB88320, reflected).
uint32_t crc32(std::string_view data);

}  // namespace dvs::core
