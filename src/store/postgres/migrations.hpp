#pragma once
// PostgreSQL's list of versioned migrations: the same versions and the same
// schema as sqlite_migrations(), in PostgreSQL's types.

#include <span>

#include "store/migrations.hpp"

namespace dvs::store {

std::span<const Migration> postgres_migrations();

}  // namespace dvs::store
