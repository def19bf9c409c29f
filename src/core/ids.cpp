#include "core/ids.hpp"

#include "core/base62.hpp"
#include "core/clock.hpp"

namespace dvs::core {

namespace {
constexpr size_t kTimeLen = 9;  // 62^9 µs is about 428 years
}

std::string new_id(std::string_view prefix, int64_t now_us) {
  std::string id(prefix);
  id.push_back('_');
  id += base62_encode(static_cast<uint64_t>(now_us < 0 ? 0 : now_us), kTimeLen);
  id += random_base62(kIdRandomLen - kTimeLen);
  return id;
}

std::string new_id(std::string_view prefix) { return new_id(prefix, SystemClock().now_us()); }

bool is_valid_id(std::string_view id, std::string_view prefix) {
  if (id.size() <= prefix.size() + 1 || id.size() > prefix.size() + 1 + 64) return false;
  if (id.substr(0, prefix.size()) != prefix || id[prefix.size()] != '_') return false;
  return is_base62(id.substr(prefix.size() + 1));
}

}  // namespace dvs::core
