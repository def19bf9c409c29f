#include "core/base62.hpp"

#include <sodium.h>

#include <array>

namespace dvs::core {

namespace {
constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

constexpr std::array<bool, 256> make_b62_table() {
  std::array<bool, 256> t{};
  for (char c : kBase62Alphabet) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto kIsB62 = make_b62_table();
}  // namespace

bool is_base62(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!kIsB62[static_cast<unsigned char>(c)]) return false;
  return true;
}

std::string base62_encode(uint64_t value, size_t width) {
  std::string out;
  do {
    out.insert(out.begin(), kBase62Alphabet[value % 62]);
    value /= 62;
  } while (value > 0);
  if (out.size() < width) out.insert(0, width - out.size(), '0');
  return out;
}

std::string random_base62(size_t n) {
  std::string out;
  out.reserve(n);
  // randombytes_uniform avoids modulo bias.
  for (size_t i = 0; i < n; ++i) out.push_back(kBase62Alphabet[randombytes_uniform(62)]);
  return out;
}

uint32_t crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace dvs::core
