#include "fuzz_env.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/api_key.hpp"
#include "core/ids.hpp"

namespace dvs::fuzz {

namespace {
std::mutex g_dirs_mu;
std::vector<std::string>* g_dirs = nullptr;

void remove_temp_dirs() {
  std::lock_guard lock(g_dirs_mu);
  if (!g_dirs) return;
  for (const auto& d : *g_dirs) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  }
}

[[noreturn]] void die(std::string_view why) {
  std::fprintf(stderr, "fuzz env: %.*s\n", static_cast<int>(why.size()), why.data());
  std::abort();
}

void ok_or_die(const core::Status& st, std::string_view what) {
  if (!st) die(std::string(what) + ": " + st.error().message);
}

core::Lead lead(std::string id, std::string org_id, std::string name) {
  core::Lead l;
  l.id = std::move(id);
  l.org_id = std::move(org_id);
  l.name = std::move(name);
  l.email = "lead@example.com";
  l.created_at = l.updated_at = kNowUs / 1'000'000 - 3600;
  return l;
}
}  // namespace

std::string make_temp_dir(std::string_view tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/dvs-fuzz-" + std::string(tag) + ".XXXXXX";
  if (!::mkdtemp(tmpl.data())) die("cannot create a temporary folder: " + tmpl);
  std::lock_guard lock(g_dirs_mu);
  if (!g_dirs) {
    g_dirs = new std::vector<std::string>();
    std::atexit(remove_temp_dirs);
  }
  g_dirs->push_back(tmpl);
  return tmpl;
}

std::unique_ptr<store::SqliteStore> make_store(const std::string& path, std::string& org_id) {
  auto st = std::make_unique<store::SqliteStore>(path);
  if (auto m = st->migrate(); !m) die("migrate: " + m.error().message);
  const int64_t now = kNowUs / 1'000'000;
  core::Organization org{core::new_id("org"), "Fuzz Org", now - 86400};
  ok_or_die(st->create_org(org), "create_org");
  org_id = org.id;
  core::Organization other{core::new_id("org"), "Other Org", now - 86400};
  ok_or_die(st->create_org(other), "create_org");
  ok_or_die(st->upsert_leads({lead(std::string(kLeadId), org.id, "Ada Lovelace")}), "lead");
  ok_or_die(st->upsert_leads({lead(std::string(kOtherOrgLeadId), other.id, "Other")}), "lead");
  core::Invoice inv;
  inv.id = std::string(kInvoiceId);
  inv.org_id = org.id;
  inv.number = "INV-0001";
  inv.customer_name = "Ada Lovelace";
  inv.lead_id = std::string(kLeadId);
  inv.subtotal_cents = inv.total_cents = 1250;
  inv.line_items_json =
      R"([{"description":"Widget","quantity":1,"unit_price_cents":1250,"amount_cents":1250}])";
  inv.created_at = inv.updated_at = inv.issued_at = now - 3600;
  inv.due_at = now + 30 * 86400;
  ok_or_die(st->upsert_invoices({inv}), "invoice");
  return st;
}

Env& Env::get() {
  static Env* env = new Env();  // never destroyed: libFuzzer may exit from anywhere
  return *env;
}

Env::Env() {
  // Failed sign-ins log a warning each; only errors (an unhandled exception
  // in the router) are worth seeing among millions of inputs.
  spdlog::set_level(spdlog::level::err);
  dir_ = make_temp_dir("router");
  store_ = make_store(dir_ + "/fuzz.db", org_id_);
  const int64_t now = clock_.now_s();

  core::User ceo{core::new_id("usr"), org_id_, "ceo@example.com", core::Role::ceo, "", now - 86400};
  ok_or_die(store_->create_user(ceo), "create_user");
  ceo_id_ = ceo.id;

  restore_session();

  key_secret_ =
      std::string(core::kKeyPrefix) + std::string(kKeyRandom) + core::key_checksum(kKeyRandom);
  auto add_key = [&](std::string id, std::string secret, std::string name) {
    core::ApiKey k;
    k.id = std::move(id);
    k.org_id = org_id_;
    k.name = std::move(name);
    k.hint = core::key_hint(secret);
    k.secret_hash = hasher_.hash(secret);
    k.scopes.add(core::Scope::leads_read);
    k.scopes.add(core::Scope::invoices_read);
    k.created_at = now - 3600;
    k.created_by_id = ceo_id_;
    ok_or_die(base().insert_key(k), "insert_key");
  };
  add_key(core::new_id("key"), key_secret_, "Fuzz key");
  add_key(std::string(kRotateKeyId), core::generate_key_secret(), "Rotate me");
  add_key(std::string(kRevokeKeyId), core::generate_key_secret(), "Revoke me");

  limiter_ = std::make_unique<core::LocalRateLimiter>(limiter_clock_);
  signin_limiter_ = std::make_unique<core::LocalRateLimiter>(clock_);
  store::RequestLogWriter::Options lo;
  lo.max_queue = 10'000;  // never started: entries beyond this are dropped, memory stays flat
  log_ = std::make_unique<store::RequestLogWriter>(*store_, lo);
  keys_ = std::make_unique<service::KeyService>(*store_, hasher_, clock_);
  service::SessionOptions so;
  so.failures_per_email_per_minute = 1;
  so.failures_per_ip_per_minute = 1;
  sessions_ = std::make_unique<service::SessionService>(*store_, *signin_limiter_, clock_, so);
  http::RouterOptions ro;
  ro.secure_cookies = false;
  router_ = std::make_unique<http::Router>(*store_, *keys_, *sessions_, *limiter_, *log_, clock_,
                                           metrics_, ro);

  // If the way sessions or keys are hashed changes, the fixed identities stop
  // working and the harnesses would silently explore nothing past a 401.
  if (!sessions_->authenticate(session_cookie()))
    die("the fixed session does not authenticate; update fuzz_env.cpp");
  if (!keys_->authenticate("Bearer " + key_secret_))
    die("the fixed API key does not authenticate; update fuzz_env.cpp");
}

std::string Env::session_cookie() const {
  return std::string(service::kSessionCookie) + "=" + std::string(kSessionToken);
}

void Env::restore_session() {
  // Stored as sign_in stores one: SHA-256 of the token.
  core::Session s;
  crypto_hash_sha256(s.token_hash.data(),
                     reinterpret_cast<const unsigned char*>(kSessionToken.data()),
                     kSessionToken.size());
  if (store_->find_session(s.token_hash)) return;
  s.user_id = ceo_id_;
  s.created_at = s.last_seen_at = clock_.now_s();
  s.ip = std::string(kClientIp);
  ok_or_die(store_->create_session(s), "create_session");
}

void Env::revoke_issued(const std::string& body) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return;
  const auto* key = v.as_object().if_contains("key");
  if (!key || !key->is_object()) return;
  const auto* id = key->as_object().if_contains("id");
  if (id && id->is_string())
    (void)base().revoke_key(org_id_, std::string(id->as_string()), clock_.now_s());
}

http::Response Env::handle(http::Request req) {
  limiter_clock_.advance_us(10'000);
  if (req.client_ip.empty()) req.client_ip = kClientIp;
  http::Response res = router_->handle(req);
  check_response(res, req.target);
  static const bool verbose = std::getenv("DVS_FUZZ_VERBOSE") != nullptr;
  if (verbose)
    std::fprintf(stderr, "%.*s %.*s -> %d %.*s\n", static_cast<int>(req.method.size()),
                 req.method.data(), static_cast<int>(req.target.size()), req.target.data(),
                 res.status, static_cast<int>(std::min<size_t>(res.body_view().size(), 200)),
                 res.body_view().data());
  // Keep the world as the seeds expect it: signed in (DELETE /api/session
  // signs out), and few active keys (a key a 201 issued is revoked at once).
  if (req.method == "DELETE") restore_session();
  if (res.status == 201) revoke_issued(std::string(res.body_view()));
  return res;
}

void require(bool ok, std::string_view why) {
  if (ok) return;
  std::fprintf(stderr, "FUZZ PROPERTY VIOLATED: %.*s\n", static_cast<int>(why.size()), why.data());
  std::fflush(stderr);
  __builtin_trap();
}

void check_response(const http::Response& res, std::string_view what) {
  // The message is built only when a property fails: this runs for every input.
  auto check = [&](bool ok, std::string_view problem) {
    if (ok) return;
    require(false, std::string(problem) + " (status " + std::to_string(res.status) +
                       ", content type " + std::string(res.content_type) + ", request " +
                       std::string(what.substr(0, 200)) + ")\nbody: " +
                       std::string(res.body_view().substr(0, 500)));
  };
  check(res.status >= 200 && res.status <= 599, "status outside 200..599");
  check(res.status != 500, "status 500");
  bool has_id = false;
  for (const auto& [k, v] : res.headers) has_id = has_id || (k == "X-Request-Id" && !v.empty());
  check(has_id, "no X-Request-Id");
  if (res.status != 204 && res.content_type.starts_with("application/json")) {
    boost::system::error_code ec;
    // The body as sent: shared bodies (a cached list page, a 429) included.
    boost::json::value v = boost::json::parse(res.body_view(), ec);
    check(!ec, ec ? "body is not valid JSON: " + ec.message() : std::string());
    if (res.status >= 400) {
      // Errors are {"error":{"code","message",...}} (contract).
      const auto* obj = v.if_object();
      const auto* err = obj ? obj->if_contains("error") : nullptr;
      check(err && err->is_object() && err->as_object().if_contains("code") &&
                err->as_object().if_contains("message"),
            "error body is not {\"error\":{\"code\",\"message\"}}");
    }
  }
}

}  // namespace dvs::fuzz
