#include "core/key_filter.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace dvs::core {

namespace {
constexpr uint64_t kMinBits = 1u << 16;

// Probe i: the i-th 32-bit word of the hash.
uint32_t probe(const KeyHash& h, int i) {
  uint32_t v;
  std::memcpy(&v, h.data() + 4 * i, sizeof v);
  return v;
}
static_assert(KeyFilter::kProbes * 4 <= sizeof(KeyHash));
}  // namespace

KeyFilter::KeyFilter(size_t capacity) : capacity_(capacity) {
  uint64_t bits = std::bit_ceil(std::max<uint64_t>(kMinBits, static_cast<uint64_t>(capacity) * 16));
  // Probes are 32 bits wide; 2^32 bits (512 MiB) is far beyond any key count.
  bits = std::min<uint64_t>(bits, uint64_t{1} << 32);
  words_.assign(bits / 64, 0);
  mask_ = bits - 1;
}

void KeyFilter::add(const KeyHash& h) {
  for (int i = 0; i < kProbes; ++i) {
    const uint64_t b = probe(h, i) & mask_;
    words_[b >> 6] |= uint64_t{1} << (b & 63);
  }
  ++size_;
}

bool KeyFilter::may_contain(const KeyHash& h) const {
  for (int i = 0; i < kProbes; ++i) {
    const uint64_t b = probe(h, i) & mask_;
    if (!(words_[b >> 6] & (uint64_t{1} << (b & 63)))) return false;
  }
  return true;
}

}  // namespace dvs::core
