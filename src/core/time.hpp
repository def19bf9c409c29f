#pragma once
// RFC 3339 timestamps in UTC, whole seconds.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dvs::core {

// "2026-11-29T12:00:00Z" for Unix seconds `t`.
std::string format_rfc3339(int64_t t);
// Appends the same to `out` (no allocation beyond growth of `out`).
void append_rfc3339(std::string& out, int64_t t);

// Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t' and 'z' accepted,
// a space instead of 'T' too). Fractions are truncated. Returns nullopt for
// anything else, including out-of-range fields.
std::optional<int64_t> parse_rfc3339(std::string_view s);

}  // namespace dvs::core
