#include "core/cursor.hpp"

#include <sodium.h>

#include <charconv>

#include "core/ids.hpp"

namespace dvs::core {

namespace {
constexpr std::string_view kVersion = "c1:";
constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
}  // namespace

std::string encode_cursor(const CursorPos& pos) {
  std::string plain(kVersion);
  plain += std::to_string(pos.created_at);
  plain.push_back(':');
  plain += pos.id;
  std::string out(sodium_base64_encoded_len(plain.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(plain.data()),
                    plain.size(), kVariant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<CursorPos> decode_cursor(std::string_view cursor, std::string_view prefix) {
  if (cursor.empty() || cursor.size() > 256) return std::nullopt;
  std::string bin(cursor.size(), '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), cursor.data(),
                        cursor.size(), nullptr, &len, &end, kVariant) != 0 ||
      end != cursor.data() + cursor.size())
    return std::nullopt;
  std::string_view s(bin.data(), len);
  if (s.substr(0, kVersion.size()) != kVersion) return std::nullopt;
  s.remove_prefix(kVersion.size());
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  CursorPos pos;
  auto ts = s.substr(0, colon);
  auto r = std::from_chars(ts.data(), ts.data() + ts.size(), pos.created_at);
  if (r.ec != std::errc() || r.ptr != ts.data() + ts.size()) return std::nullopt;
  pos.id = std::string(s.substr(colon + 1));
  if (!is_valid_id(pos.id, prefix)) return std::nullopt;
  return pos;
}

}  // namespace dvs::core
