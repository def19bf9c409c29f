#pragma once
// Object ids: a type prefix, '_' and 24 random base62 characters.

#include <string>
#include <string_view>

namespace dvs::core {

inline constexpr size_t kIdRandomLen = 24;

// e.g. new_id("lead") -> "lead_3xY...". Uses the CSPRNG.
std::string new_id(std::string_view prefix);

// True when `id` is `prefix` + '_' + 1..64 base62 characters. Imported data may
// carry ids of other lengths, so only the shape is checked.
bool is_valid_id(std::string_view id, std::string_view prefix);

}  // namespace dvs::core
