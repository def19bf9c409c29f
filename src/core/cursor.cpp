#include "core/cursor.hpp"

#include <sodium.h>

#include <charconv>

#include "core/ids.hpp"

namespace dvs::core {

namespace {
constexpr std::string_view kVersion = "c1:";
constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr size_t kTagLen = 6;

// A check tag over the payload, so an edited cursor is refused (400) rather
// than silently repositioning the scan. It is not a signature: forging one
// gains nothing, since every scan is confined to the caller's organization.
std::string tag(std::string_view payload) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  static constexpr std::string_view kDomain = "devsphere cursor v1\n";
  crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(kDomain.data()),
                            kDomain.size());
  crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(payload.data()),
                            payload.size());
  crypto_hash_sha256_final(&st, h);
  return std::string(reinterpret_cast<const char*>(h), kTagLen);
}
}  // namespace

std::string encode_cursor(const CursorPos& pos) {
  std::string plain(kVersion);
  plain += std::to_string(pos.created_at);
  plain.push_back(':');
  plain += pos.id;
  plain += tag(plain);
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
  if (s.size() <= kTagLen) return std::nullopt;
  auto payload = s.substr(0, s.size() - kTagLen);
  if (sodium_memcmp(tag(payload).data(), s.data() + payload.size(), kTagLen) != 0)
    return std::nullopt;
  s = payload;
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
