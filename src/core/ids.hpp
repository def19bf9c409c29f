#pragma once
// Object ids: a type prefix, '_' and 24 base62 characters: 9 of time (µs since
// the epoch, most significant first) and 15 random. Base62's alphabet is in
// ASCII order, so ids sort by creation time; lists ordered by (created_at,
// id) therefore keep creation order among rows of the same second.

#include <cstdint>
#include <string>
#include <string_view>

namespace dvs::core {

inline constexpr size_t kIdRandomLen = 24;

// e.g. new_id("lead", now_us) -> "lead_0DhW7s2aB...". Random part from the CSPRNG.
std::string new_id(std::string_view prefix, int64_t now_us);
// The same with the system clock.
std::string new_id(std::string_view prefix);

// True when `id` is `prefix` + '_' + 1..64 base62 characters. Imported data may
// carry ids of other lengths, so only the shape is checked.
bool is_valid_id(std::string_view id, std::string_view prefix);

}  // namespace dvs::core
