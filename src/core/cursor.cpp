#include "core/cursor.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "core/ids.hpp"

namespace dvs::core {

namespace {
// Version 2 (written since 2026-11-30): "c2:<created_at>:<id>" and a 6-byte
// SipHash-2-4 tag. Version 1 ("c1:", a tag from SHA-256) is still read, so
// cursors handed out before an upgrade keep working.
constexpr std::string_view kVersion1 = "c1:";
constexpr std::string_view kVersion2 = "c2:";
constexpr size_t kTagLen = 6;
constexpr size_t kMaxCursor = 256;

// A check tag over the payload, so an edited cursor is refused (400) rather
// than silently repositioning the scan. It is not a signature (the key is
// no secret): forging one gains nothing, since every scan is confined to the
// caller's organization. SipHash because a deep page decodes a cursor on
// every request: about 40 ns where SHA-256 took about 500.
using Tag = std::array<unsigned char, kTagLen>;

Tag tag_v2(std::string_view payload) {
  static constexpr unsigned char kKey[crypto_shorthash_siphash24_KEYBYTES] = {
      'd', 'e', 'v', 's', 'p', 'h', 'e', 'r', 'e', ' ', 'c', 'u', 'r', 's', 'o', 'r'};
  unsigned char h[crypto_shorthash_siphash24_BYTES];
  crypto_shorthash_siphash24(h, reinterpret_cast<const unsigned char*>(payload.data()),
                             payload.size(), kKey);
  Tag t;
  std::copy(h, h + kTagLen, t.begin());
  return t;
}

Tag tag_v1(std::string_view payload) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  static constexpr std::string_view kDomain = "devsphere cursor v1\n";
  crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(kDomain.data()),
                            kDomain.size());
  crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(payload.data()),
                            payload.size());
  crypto_hash_sha256_final(&st, h);
  Tag t;
  std::copy(h, h + kTagLen, t.begin());
  return t;
}

// base64url without padding, by table: a cursor is no secret, so the
// constant-time decoder of libsodium is not needed here.
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> make_values() {
  std::array<int8_t, 256> v{};
  for (auto& x : v) x = -1;
  for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return v;
}
constexpr std::array<int8_t, 256> kValues = make_values();

void append_base64url(std::string& out, std::string_view bin) {
  const auto* p = reinterpret_cast<const unsigned char*>(bin.data());
  size_t i = 0;
  for (; i + 3 <= bin.size(); i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (const size_t rest = bin.size() - i; rest > 0) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (rest == 2) v |= uint32_t{p[i + 1]} << 8;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
}

// Strict: only the alphabet, no padding, and the unused low bits of the
// last character zero, so each byte string has exactly one encoding (an
// edited character never decodes to the same cursor).
// `out` holds at least in.size() * 3 / 4 bytes; `n` gets how many were written.
bool decode_base64url(std::string_view in, char* out, size_t& n) {
  if (in.size() % 4 == 1) return false;
  n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    const int8_t v = kValues[c];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}
}  // namespace

std::string encode_cursor(const CursorPos& pos) {
  std::string plain;
  plain.reserve(kVersion2.size() + 21 + pos.id.size() + kTagLen);
  plain.append(kVersion2);
  char digits[24];
  auto r = std::to_chars(digits, digits + sizeof digits, pos.created_at);
  plain.append(digits, r.ptr);
  plain.push_back(':');
  plain += pos.id;
  const Tag t = tag_v2(plain);
  plain.append(reinterpret_cast<const char*>(t.data()), t.size());
  std::string out;
  out.reserve((plain.size() * 4 + 2) / 3);
  append_base64url(out, plain);
  return out;
}

std::optional<CursorPos> decode_cursor(std::string_view cursor, std::string_view prefix) {
  if (cursor.empty() || cursor.size() > kMaxCursor) return std::nullopt;
  std::array<char, kMaxCursor * 3 / 4> bin;
  size_t n = 0;
  if (!decode_base64url(cursor, bin.data(), n)) return std::nullopt;
  std::string_view s(bin.data(), n);
  if (s.size() <= kVersion2.size() + kTagLen) return std::nullopt;
  const auto payload = s.substr(0, s.size() - kTagLen);
  const auto version = payload.substr(0, kVersion2.size());
  Tag expected;
  if (version == kVersion2)
    expected = tag_v2(payload);
  else if (version == kVersion1)
    expected = tag_v1(payload);
  else
    return std::nullopt;
  if (sodium_memcmp(expected.data(), s.data() + payload.size(), kTagLen) != 0) return std::nullopt;
  s = payload.substr(version.size());
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  CursorPos pos;
  auto ts = s.substr(0, colon);
  auto r = std::from_chars(ts.data(), ts.data() + ts.size(), pos.created_at);
  if (r.ec != std::errc() || r.ptr != ts.data() + ts.size()) return std::nullopt;
  const auto id = s.substr(colon + 1);
  if (!is_valid_id(id, prefix)) return std::nullopt;
  pos.id = std::string(id);
  return pos;
}

}  // namespace dvs::core
