#include "app/config.hpp"

#include <cstdlib>

#include "store/postgres/postgres_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace dvs::app {

DbUrl parse_db_url(const std::string& url) {
  DbUrl out;
  if (url.starts_with("sqlite://")) {
    out.path = url.substr(9);
  } else if (url.starts_with("sqlite:")) {
    out.path = url.substr(7);
  } else if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    out.kind = DbUrl::Kind::postgresql;
    out.conninfo = url;
    auto rest = url.substr(url.find("://") + 3);
    if (rest.empty() || rest.find('/') == std::string::npos)
      throw ConfigError("malformed database URL (expected postgresql://USER[:PASS]@HOST:PORT/DB)");
    return out;
  } else {
    throw ConfigError("malformed database URL '" + url.substr(0, 40) +
                      "' (expected sqlite:PATH or postgresql://USER@HOST:PORT/DB)");
  }
  if (out.path.empty()) throw ConfigError("malformed database URL: sqlite: needs a file path");
  return out;
}

ListenAddr parse_listen(const std::string& s) {
  ListenAddr a;
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size())
    throw ConfigError("malformed listen address '" + s + "' (expected HOST:PORT)");
  a.host = s.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  if (a.host == "localhost") a.host = "127.0.0.1";
  const std::string port = s.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw ConfigError("malformed listen address '" + s + "' (bad port)");
  int p = std::stoi(port);
  if (p > 65535) throw ConfigError("malformed listen address '" + s + "' (port above 65535)");
  a.port = static_cast<uint16_t>(p);
  return a;
}

std::unique_ptr<store::Store> open_store(const std::string& url, bool migrate, int pool_size) {
  DbUrl db = parse_db_url(url);
  std::unique_ptr<store::Store> s;
  const std::string shown = db.kind == DbUrl::Kind::postgresql
                                ? store::mask_db_password(db.conninfo)
                                : db.path;
  try {
    if (db.kind == DbUrl::Kind::postgresql)
      s = std::make_unique<store::PostgresStore>(db.conninfo, pool_size);
    else
      s = std::make_unique<store::SqliteStore>(db.path);
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
  if (migrate) {
    auto r = s->migrate();
    if (!r) throw ConfigError("cannot migrate the database " + shown + ": " + r.error().message);
  }
  return s;
}

std::string key_pepper() {
  const char* p = std::getenv("DVS_KEY_PEPPER");
  return p ? std::string(p) : std::string();
}

}  // namespace dvs::app
