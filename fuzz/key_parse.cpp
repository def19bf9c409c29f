// Key parsing: core::is_well_formed_key on any bytes, core::key_hint on the
// well-formed ones, and that every key built with key_checksum is accepted.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/api_key.hpp"
#include "core/base62.hpp"
#include "fuzz_env.hpp"

using namespace dvs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (core::is_well_formed_key(in)) {
    fuzz::require(in.size() == core::kKeyLen, "a well-formed key has 47 characters");
    fuzz::require(in.starts_with(core::kKeyPrefix), "a well-formed key has the prefix");
    fuzz::require(core::is_base62(in.substr(core::kKeyPrefix.size())),
                  "a well-formed key is base62 after the prefix");
    const std::string hint = core::key_hint(in);
    fuzz::require(hint == in.substr(0, core::kKeyPrefix.size() + 4),
                  "key_hint is the prefix and 4 characters");
    fuzz::require(core::key_checksum(in.substr(core::kKeyPrefix.size(), core::kKeyRandomLen)) ==
                      in.substr(core::kKeyPrefix.size() + core::kKeyRandomLen),
                  "a well-formed key carries its checksum");
  }

  // Any 32 base62 characters plus their checksum make a key that parses, and
  // changing one checksum character makes one that does not.
  if (size >= core::kKeyRandomLen) {
    const std::string_view random = in.substr(0, core::kKeyRandomLen);
    if (core::is_base62(random)) {
      std::string key =
          std::string(core::kKeyPrefix) + std::string(random) + core::key_checksum(random);
      fuzz::require(key.size() == core::kKeyLen, "key_checksum gives 6 characters");
      fuzz::require(core::is_well_formed_key(key), "a key with its checksum is well formed");
      char& last = key.back();
      last = last == 'z' ? '0'
                         : static_cast<char>(last == '9'   ? 'A'
                                             : last == 'Z' ? 'a'
                                                           : last + 1);
      fuzz::require(!core::is_well_formed_key(key), "a changed checksum is refused");
    }
  }

  // Hashing takes any bytes.
  const core::KeyHasher plain, peppered("pepper");
  (void)core::hash_equal(plain.hash(in), peppered.hash(in));
  return 0;
}
