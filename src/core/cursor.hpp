#pragma once
// Opaque keyset-pagination cursors: the (created_at, id) of the last row of a
// page, base64url-encoded. A cursor only positions a scan inside the caller's
// own organization, so it needs no signature; it is validated on decode.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dvs::core {

struct CursorPos {
  int64_t created_at = 0;
  std::string id;
};

std::string encode_cursor(const CursorPos& pos);

// Returns nullopt unless `cursor` decodes to a position whose id has `prefix`
// (so a leads cursor is rejected on /v1/invoices).
std::optional<CursorPos> decode_cursor(std::string_view cursor, std::string_view prefix);

}  // namespace dvs::core
