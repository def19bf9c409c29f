// devsphere: the command line (contract section 1). Every failure prints one
// line on stderr and exits non-zero: 2 for usage, 1 for everything else.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sodium.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>

#include "app/config.hpp"
#include "app/demo.hpp"
#include "app/importer.hpp"
#include "app/logging.hpp"
#include "app/services.hpp"
#include "core/ids.hpp"
#include "core/json_writer.hpp"
#include "core/password.hpp"
#include "core/time.hpp"
#include "http/render.hpp"
#include "service/key_service.hpp"

namespace {

using dvs::app::ConfigError;

struct Failure {
  std::string message;
  int code = 1;
};

[[noreturn]] void fail(const std::string& msg, int code = 1) { throw Failure{msg, code}; }

template <typename T>
T check(dvs::core::Result<T> r) {
  if (!r) fail(r.error().message);
  return std::move(r).value();
}

std::string read_password_stdin() {
  std::string pw;
  if (!std::getline(std::cin, pw)) fail("expected a password on standard input");
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.size() < 8) fail("the password must be at least 8 characters");
  if (pw.size() > 1024) fail("the password must be at most 1024 characters");
  return pw;
}

void print_key_table(const std::vector<dvs::core::ApiKey>& keys, int64_t now) {
  std::printf("%-29s %-24s %-13s %-26s %-8s %-20s %s\n", "ID", "NAME", "HINT", "SCOPES", "STATUS",
              "LAST USED", "EXPIRES");
  for (const auto& k : keys) {
    std::string name = k.name.size() > 24 ? k.name.substr(0, 21) + "..." : k.name;
    std::string scopes;
    for (auto s : k.scopes.names()) scopes += (scopes.empty() ? "" : ",") + std::string(s);
    std::printf("%-29s %-24s %-13s %-26s %-8s %-20s %s\n", k.id.c_str(), name.c_str(),
                k.hint.c_str(), scopes.c_str(),
                std::string(dvs::core::key_status_name(k.status(now))).c_str(),
                k.last_used_at ? dvs::core::format_rfc3339(*k.last_used_at).c_str() : "never",
                k.expires_at ? dvs::core::format_rfc3339(*k.expires_at).c_str() : "never");
  }
}

void print_issued(const dvs::core::ApiKey& k, const std::string& secret) {
  std::string scopes;
  for (auto s : k.scopes.names()) scopes += (scopes.empty() ? "" : " ") + std::string(s);
  std::printf("id: %s\nname: %s\nscopes: %s\nrate limit: %u/minute\nexpires: %s\n", k.id.c_str(),
              k.name.c_str(), scopes.c_str(), k.rate_limit_per_minute,
              k.expires_at ? dvs::core::format_rfc3339(*k.expires_at).c_str() : "never");
  std::printf("Store this secret now; it cannot be shown again:\n%s\n", secret.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  dvs::app::setup_logging(dvs::app::LogFormat::text, "info");
  if (sodium_init() < 0) {
    std::fprintf(stderr, "devsphere: cannot initialise libsodium\n");
    return 1;
  }

  CLI::App app{"DevSphere OS: API access and keys.\n\n"
               "Each setting comes from its flag; failing that, from the file given with\n"
               "--config (TOML: keys as the long flag names, under [serve] etc.); failing\n"
               "that, from its DVS_* environment variable; failing that, the default."};
  app.require_subcommand(1);
  app.set_config("--config", "", "read settings from this TOML file (or DVS_CONFIG)");
  app.set_version_flag("--version", "devsphere 0.1.0");
  dvs::core::SystemClock clock;

  std::string db = dvs::app::kDefaultDb;
  auto add_db = [&](CLI::App* sub) {
    sub->add_option("--db", db, "database URL: sqlite:PATH or postgresql://USER@HOST:PORT/DB")
        ->envname("DVS_DB")
        ->capture_default_str();
  };

  // serve
  dvs::app::ServeOptions so;
  so.listen = dvs::app::kDefaultListen;
  so.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string redis;
  auto* serve = app.add_subcommand("serve", "run the HTTP service");
  serve->add_option("--listen", so.listen, "HOST:PORT to listen on")
      ->envname("DVS_LISTEN")
      ->capture_default_str();
  add_db(serve);
  serve->add_option("--redis", redis, "redis://HOST:PORT for shared rate limits")
      ->envname("DVS_REDIS");
  serve->add_option("--threads", so.threads, "I/O threads")->check(CLI::Range(1, 256));
  serve->add_option("--db-pool", so.db_pool,
                    "PostgreSQL connections per process (default: threads + 4)")
      ->envname("DVS_DB_POOL")
      ->check(CLI::Range(1, 1000));
  serve->add_option("--nodes", so.nodes,
                    "serve processes sharing the Redis limits (each falls back to limit/N "
                    "while Redis is unreachable)")
      ->envname("DVS_NODES")
      ->check(CLI::Range(1, 1000));
  serve->add_option("--trusted-proxy", so.trusted_proxies,
                    "address of a load balancer whose X-Forwarded-For is believed (repeatable)")
      ->envname("DVS_TRUSTED_PROXIES")
      ->delimiter(',');
  serve->add_option("--max-connections", so.max_connections,
                    "open connections beyond this get 503 and are closed")
      ->envname("DVS_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  serve->add_option("--key-cache", so.key_cache,
                    "API keys kept in memory so a known key is checked without a database "
                    "read (revocation stays immediate); 0 turns it off")
      ->envname("DVS_KEY_CACHE")
      ->check(CLI::Range(0, 10000000))
      ->capture_default_str();
  serve->add_option("--doc-cache-mb", so.doc_cache_mb,
                    "MiB of /v1 list pages and objects kept in memory, each served until a "
                    "lead or invoice changes (exact: a change is seen by the next request); "
                    "0 turns it off")
      ->envname("DVS_DOC_CACHE_MB")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  serve->add_option("--read-timeout", so.read_timeout_s,
                    "seconds a client has to send a whole request")
      ->envname("DVS_READ_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--idle-timeout", so.idle_timeout_s,
                    "seconds a kept-alive connection may sit idle")
      ->envname("DVS_IDLE_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--write-timeout", so.write_timeout_s,
                    "seconds a client has to take a whole response (one that stops reading "
                    "is closed)")
      ->envname("DVS_WRITE_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_flag("--demo", so.demo, "seed demo data when missing and print the login");
  std::string log_format = "text", log_level = "info";
  bool print_config = false;
  serve->add_option("--log-format", log_format, "text or json (one JSON object per line)")
      ->envname("DVS_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  serve->add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->envname("DVS_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  serve->add_flag("--access-log", so.access_log,
                  "log one line per request (request id, route, status, latency, key id)")
      ->envname("DVS_ACCESS_LOG");
  serve->add_flag("--print-config", print_config,
                  "print the effective settings (secrets masked) and exit");

  auto* migrate = app.add_subcommand("migrate", "apply pending database migrations");
  add_db(migrate);

  // org create
  auto* org = app.add_subcommand("org", "manage organizations");
  org->require_subcommand(1);
  auto* org_create = org->add_subcommand("create", "create an organization and its owner (CEO)");
  std::string org_name, owner_email;
  bool owner_pw = false;
  org_create->add_option("--name", org_name, "organization name")->required();
  org_create->add_option("--owner-email", owner_email, "e-mail of the CEO")->required();
  org_create->add_flag("--owner-password-stdin", owner_pw, "read the CEO's password from stdin");
  add_db(org_create);

  // user add
  auto* user = app.add_subcommand("user", "manage users");
  user->require_subcommand(1);
  auto* user_add = user->add_subcommand("add", "add a user to an organization");
  std::string user_org, user_email, user_role;
  bool user_pw = false;
  user_add->add_option("--org", user_org, "organization id (org_...)")->required();
  user_add->add_option("--email", user_email, "e-mail")->required();
  user_add->add_option("--role", user_role, "ceo, admin or member")
      ->required()
      ->check(CLI::IsMember({"ceo", "admin", "member"}));
  user_add->add_flag("--password-stdin", user_pw, "read the password from stdin");
  add_db(user_add);

  // keys
  auto* keys = app.add_subcommand("keys", "manage API keys");
  keys->require_subcommand(1);
  auto* keys_create = keys->add_subcommand("create", "issue a key; prints the secret once");
  std::string key_org, key_name;
  std::vector<std::string> key_scopes;
  double expires_days = 0;
  int64_t rate_limit = 0;
  keys_create->add_option("--org", key_org, "organization id (org_...)")->required();
  keys_create->add_option("--name", key_name, "a name people recognise (1-100 characters)")
      ->required();
  keys_create->add_option("--scope", key_scopes, "leads:read or invoices:read (repeatable)")
      ->required();
  auto* exp_opt = keys_create->add_option("--expires-in", expires_days, "days until it expires");
  auto* rl_opt = keys_create->add_option("--rate-limit", rate_limit,
                                         "requests per minute (1-100000, default 120)");
  add_db(keys_create);

  auto* keys_list = keys->add_subcommand("list", "list an organization's keys");
  bool list_json = false;
  keys_list->add_option("--org", key_org, "organization id (org_...)")->required();
  keys_list->add_flag("--json", list_json, "print JSON (as the API's api_key objects)");
  add_db(keys_list);

  std::string key_id;
  auto* keys_revoke = keys->add_subcommand("revoke", "revoke a key at once");
  keys_revoke->add_option("KEY_ID", key_id, "key id (key_...)")->required();
  add_db(keys_revoke);
  auto* keys_rotate = keys->add_subcommand("rotate", "replace a key; the old one stops at once");
  keys_rotate->add_option("KEY_ID", key_id, "key id (key_...)")->required();
  add_db(keys_rotate);

  // import
  auto* imp = app.add_subcommand("import", "import leads or invoices from .jsonl or .csv");
  std::string imp_kind, imp_org, imp_file;
  imp->add_option("KIND", imp_kind, "leads or invoices")
      ->required()
      ->check(CLI::IsMember({"leads", "invoices"}));
  imp->add_option("--org", imp_org, "organization id (org_...)")->required();
  imp->add_option("FILE", imp_file, ".jsonl or .csv file")->required();
  add_db(imp);

  auto* demo = app.add_subcommand("demo", "seed a demo organization and print its login");
  add_db(demo);

  // CLI11 reads the config file's name before environment variables, so
  // DVS_CONFIG is handled here: as if --config had been given first.
  std::vector<std::string> args(argv + 1, argv + argc);
  if (const char* cfg = std::getenv("DVS_CONFIG");
      cfg && *cfg && std::find(args.begin(), args.end(), "--config") == args.end() &&
      std::none_of(args.begin(), args.end(), [](const std::string& a) {
        return a.starts_with("--config=");
      }))
    args.insert(args.begin(), {"--config", cfg});
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first

  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::fprintf(stderr, "devsphere: %s (see devsphere --help)\n", msg.c_str());
    return 2;
  }

  try {
    if (serve->parsed()) {
      so.redis_url = redis;
      so.db_url = db;
      so.program = argv[0];
      dvs::app::setup_logging(
          log_format == "json" ? dvs::app::LogFormat::json : dvs::app::LogFormat::text, log_level);
      if (print_config) {
        std::printf("%s", dvs::app::describe_settings(so, log_format, log_level).c_str());
        return 0;
      }
      return dvs::app::serve(so);
    }
    auto store = dvs::app::open_store(db);
    dvs::core::KeyHasher hasher(dvs::app::key_pepper());
    dvs::service::KeyService svc(*store, hasher, clock);
    const int64_t now = clock.now_s();

    if (migrate->parsed()) {
      std::printf("database is up to date\n");
    } else if (org_create->parsed()) {
      if (org_name.empty() || org_name.size() > 200) fail("--name must be 1 to 200 characters");
      if (owner_email.find('@') == std::string::npos || owner_email.size() > 320)
        fail("--owner-email is not an e-mail address");
      std::string hash;
      if (owner_pw) {
        auto h = dvs::core::hash_password(read_password_stdin());
        if (!h) fail("cannot hash the password");
        hash = *h;
      }
      dvs::core::Organization o{dvs::core::new_id("org"), org_name, now};
      auto st = store->create_org(o);
      if (!st) fail(st.error().message);
      dvs::core::User u{dvs::core::new_id("usr"), o.id, owner_email, dvs::core::Role::ceo, hash,
                        now};
      if (auto su = store->create_user(u); !su)
        fail(su.error().code == dvs::core::Errc::conflict ? "a user with that e-mail exists"
                                                          : su.error().message);
      std::printf("%s\n", o.id.c_str());
    } else if (user_add->parsed()) {
      check(store->get_org(user_org));
      if (user_email.find('@') == std::string::npos || user_email.size() > 320)
        fail("--email is not an e-mail address");
      std::string hash;
      if (user_pw) {
        auto h = dvs::core::hash_password(read_password_stdin());
        if (!h) fail("cannot hash the password");
        hash = *h;
      }
      dvs::core::User u{dvs::core::new_id("usr"), user_org, user_email,
                        *dvs::core::parse_role(user_role), hash, now};
      if (auto st = store->create_user(u); !st)
        fail(st.error().code == dvs::core::Errc::conflict ? "a user with that e-mail exists"
                                                          : st.error().message);
      std::printf("%s\n", u.id.c_str());
    } else if (keys_create->parsed()) {
      dvs::service::NewKeyRequest req;
      req.org_id = key_org;
      req.name = key_name;
      req.scopes = key_scopes;
      req.ip = "cli";
      if (exp_opt->count()) {
        if (!(expires_days > 0) || expires_days > 36500)
          fail("--expires-in must be a number of days from 0 to 36500 (exclusive of 0)");
        req.expires_at = now + static_cast<int64_t>(std::ceil(expires_days * 86400));
      }
      if (rl_opt->count()) req.rate_limit_per_minute = rate_limit;
      auto issued = svc.create(req);
      if (!issued) {
        const auto& e = issued.error();
        std::string flag = e.param == "scopes"                  ? "--scope"
                           : e.param == "rate_limit_per_minute" ? "--rate-limit"
                           : e.param == "expires_at"            ? "--expires-in"
                           : e.param == "name"                  ? "--name"
                                                                : "";
        fail((flag.empty() ? "" : flag + ": ") + e.message);
      }
      print_issued(issued->key, issued->secret);
    } else if (keys_list->parsed()) {
      check(store->get_org(key_org));
      auto list = check(store->list_keys(key_org));
      if (list_json) {
        std::string out;
        dvs::core::JsonWriter w(out);
        w.begin_object().key("object").string("list").key("data").begin_array();
        for (const auto& k : list) dvs::http::render_api_key(w, k, now);
        w.end_array().end_object();
        std::printf("%s\n", out.c_str());
      } else {
        print_key_table(list, now);
      }
    } else if (keys_revoke->parsed()) {
      auto k = check(svc.revoke("", key_id, std::nullopt, "cli"));
      std::printf("revoked %s (%s)\n", k.id.c_str(), k.name.c_str());
    } else if (keys_rotate->parsed()) {
      auto r = svc.rotate("", key_id, 0, std::nullopt, "cli");
      if (!r) fail(r.error().code == dvs::core::Errc::not_found ? "no active key " + key_id.substr(0, 64)
                                                                : r.error().message);
      std::printf("replaced %s, which stopped working now\n", r->replaced.id.c_str());
      print_issued(r->key, r->secret);
    } else if (imp->parsed()) {
      const bool tty = isatty(STDERR_FILENO);
      dvs::app::ImportProgress progress;
      if (tty) {
        progress = [](uint64_t done, uint64_t total) {
          if (total < (1u << 20)) return;  // small files need no bar
          int pct = static_cast<int>(done * 100 / total);
          std::string bar(static_cast<size_t>(pct / 4), '#');
          std::fprintf(stderr, "\r[%-25s] %3d%%", bar.c_str(), pct);
          if (done == total) std::fprintf(stderr, "\n");
        };
      }
      auto n = dvs::app::import_file(*store, clock, imp_org,
                                     imp_kind == "leads" ? dvs::app::ImportKind::leads
                                                         : dvs::app::ImportKind::invoices,
                                     imp_file, progress);
      if (!n) fail(n.error().message);
      std::printf("imported %zu %s\n", *n, imp_kind.c_str());
    } else if (demo->parsed()) {
      auto login = check(dvs::app::seed_demo(*store, clock));
      std::printf("%s\nLogin: %s\nPassword: %s\nOrganization: %s\n",
                  login.created ? "Demo data seeded." : "Demo data already present; password renewed.",
                  login.email.c_str(), login.password.c_str(), login.org_id.c_str());
    }
    return 0;
  } catch (const Failure& f) {
    std::fprintf(stderr, "devsphere: %s\n", f.message.c_str());
    return f.code;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "devsphere: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "devsphere: %s\n", e.what());
    return 1;
  }
}
