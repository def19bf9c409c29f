// Cursor decoding: core::decode_cursor on any bytes; a decoded position
// re-encodes to a cursor that decodes to the same position; and a position
// built from the input survives encode -> decode.
#include "core/cursor.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/base62.hpp"
#include "core/ids.hpp"
#include "fuzz_env.hpp"

using namespace dvs;

namespace {
constexpr std::string_view kPrefixes[] = {"lead", "inv", "req", "evt"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  for (std::string_view prefix : kPrefixes) {
    auto pos = core::decode_cursor(in, prefix);
    if (!pos) continue;
    fuzz::require(core::is_valid_id(pos->id, prefix), "a decoded cursor holds an id of the type");
    const std::string again = core::encode_cursor(*pos);
    auto back = core::decode_cursor(again, prefix);
    fuzz::require(back.has_value(), "a re-encoded cursor decodes");
    fuzz::require(back->created_at == pos->created_at && back->id == pos->id,
                  "decode(encode(decode(c))) == decode(c)");
  }

  // encode -> decode from a position made of the input: 8 bytes of time, the
  // rest as the id's characters.
  if (size >= 9) {
    core::CursorPos p;
    std::memcpy(&p.created_at, data, sizeof p.created_at);
    const std::string_view rest = in.substr(8);
    const std::string_view prefix = kPrefixes[static_cast<uint8_t>(rest[0]) % 4];
    p.id = std::string(prefix) + "_" + std::string(rest.substr(1));
    const std::string c = core::encode_cursor(p);
    auto back = core::decode_cursor(c, prefix);
    if (core::is_valid_id(p.id, prefix) && c.size() <= 256) {
      fuzz::require(back.has_value(), "an encoded valid position decodes");
      fuzz::require(back->created_at == p.created_at && back->id == p.id, "decode(encode(p)) == p");
    } else if (!core::is_valid_id(p.id, prefix)) {
      fuzz::require(!back.has_value(), "a cursor with a malformed id is refused");
    }
  }
  return 0;
}
