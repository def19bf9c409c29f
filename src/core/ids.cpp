#include "core/ids.hpp"

#include "core/base62.hpp"

namespace dvs::core {

std::string new_id(std::string_view prefix) {
  std::string id(prefix);
  id.push_back('_');
  id += random_base62(kIdRandomLen);
  return id;
}

bool is_valid_id(std::string_view id, std::string_view prefix) {
  if (id.size() <= prefix.size() + 1 || id.size() > prefix.size() + 1 + 64) return false;
  if (id.substr(0, prefix.size()) != prefix || id[prefix.size()] != '_') return false;
  return is_base62(id.substr(prefix.size() + 1));
}

}  // namespace dvs::core
