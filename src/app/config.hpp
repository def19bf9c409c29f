#pragma once
// Settings from flags and environment, and opening the configured store.
// Start-up code: errors are exceptions (ConfigError) with a one-line message.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "store/store.hpp"

namespace dvs::app {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr const char* kDefaultDb = "sqlite:./devsphere-data/devsphere.db";
inline constexpr const char* kDefaultListen = "127.0.0.1:8080";

struct DbUrl {
  enum class Kind { sqlite, postgresql } kind = Kind::sqlite;
  std::string path;     // sqlite: the file
  std::string conninfo; // postgresql: the URL as given
};

// "sqlite:PATH" (also "sqlite://PATH") or "postgresql://USER[:PASS]@HOST:PORT/DB"
// (also "postgres://"). Throws ConfigError otherwise.
DbUrl parse_db_url(const std::string& url);

struct ListenAddr {
  std::string host;
  uint16_t port = 0;
};
// "HOST:PORT" or "[V6]:PORT". Throws ConfigError otherwise.
ListenAddr parse_listen(const std::string& s);

// Opens the store for `url` and applies pending migrations when `migrate`.
// `pool_size`: PostgreSQL connections (ignored for SQLite, which keeps one
// per thread). Throws ConfigError when it cannot be opened or migrated; the
// message never contains the database password.
std::unique_ptr<store::Store> open_store(const std::string& url, bool migrate = true,
                                         int pool_size = 2);

// The optional server pepper for key hashes (DVS_KEY_PEPPER); empty if unset.
std::string key_pepper();

}  // namespace dvs::app
