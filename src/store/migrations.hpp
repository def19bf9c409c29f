#pragma once
// Versioned schema migrations. Each backend has its own list; versions only
// ever grow, and an applied migration is never edited.

#include <span>
#include <string_view>

namespace dvs::store {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

std::span<const Migration> sqlite_migrations();

}  // namespace dvs::store
