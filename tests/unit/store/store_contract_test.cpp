// The store contract, run against every backend the test run has: SQLite
// always, PostgreSQL when DVS_TEST_PG_URL names a server (skipped, and said
// so, otherwise). Further backends register a factory in kBackends.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <unistd.h>

#include "core/ids.hpp"
#include "core/render.hpp"
#include "store/postgres/postgres_store.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "pg_test_db.hpp"

using namespace dvs;

namespace {

struct Backend {
  std::string name;
  std::function<std::unique_ptr<store::Store>()> make;
  // Why this backend cannot run here, or "" when it can.
  std::function<std::string()> unavailable = [] { return std::string(); };
};

void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

// A SQLite store in a fresh folder that is removed with the store.
class TempSqliteStore {
 public:
  static std::unique_ptr<store::Store> make() {
    static int n = 0;
    auto dir = std::filesystem::temp_directory_path() /
               ("dvs-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    dirs().push_back(dir);
    return std::make_unique<store::SqliteStore>((dir / "t.db").string());
  }
  static std::vector<std::filesystem::path>& dirs() {
    static std::vector<std::filesystem::path> d;
    return d;
  }
};

std::unique_ptr<store::Store> make_sqlite() { return TempSqliteStore::make(); }

// A PostgreSQL store on a database of its own, dropped after the test.
std::vector<std::unique_ptr<pgtest::TempPgDatabase>>& pg_databases() {
  static std::vector<std::unique_ptr<pgtest::TempPgDatabase>> d;
  return d;
}

std::unique_ptr<store::Store> make_postgres() {
  auto db = std::make_unique<pgtest::TempPgDatabase>(pgtest::pg_test_url());
  // A small pool, so the concurrency tests also wait for connections.
  auto s = std::make_unique<store::PostgresStore>(db->url(), 3);
  pg_databases().push_back(std::move(db));
  return s;
}

std::string postgres_unavailable() {
  return pgtest::pg_test_url().empty() ? pgtest::kPgSkipMessage : "";
}

const Backend kBackends[] = {{"sqlite", make_sqlite},
                             {"postgres", make_postgres, postgres_unavailable}};

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (auto why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
    s = GetParam().make();
    auto m = s->migrate();
    ASSERT_TRUE(m) << m.error().message;
    org_a = make_org("A");
    org_b = make_org("B");
  }
  std::string make_org(const std::string& name) {
    core::Organization o{core::new_id("org"), name, 1000};
    EXPECT_TRUE(s->create_org(o).ok());
    return o.id;
  }
  core::ApiKey make_key(const std::string& org, unsigned char tag) {
    core::ApiKey k;
    k.id = core::new_id("key");
    k.org_id = org;
    k.name = "k";
    k.hint = "dvs_live_abcd";
    k.secret_hash.fill(tag);
    k.scopes.add(core::Scope::leads_read);
    k.created_at = 2000;
    return k;
  }
  core::Lead lead(const std::string& org, int64_t created, const std::string& id = "") {
    core::Lead l;
    l.id = id.empty() ? core::new_id("lead") : id;
    l.org_id = org;
    l.name = "n";
    l.created_at = created;
    l.updated_at = created;
    return l;
  }
  std::string make_user(const std::string& org, const std::string& email) {
    core::User u;
    u.id = core::new_id("usr");
    u.org_id = org;
    u.email = email;
    u.role = core::Role::admin;
    u.created_at = 1000;
    EXPECT_TRUE(s->create_user(u).ok());
    return u.id;
  }
  core::Session session(const std::string& user, unsigned char tag, int64_t created, int64_t seen) {
    core::Session x;
    x.token_hash.fill(tag);
    x.user_id = user;
    x.created_at = created;
    x.last_seen_at = seen;
    x.ip = "127.0.0.1";
    x.user_agent = "test";
    return x;
  }
  core::RequestLogEntry request(const std::string& org, const std::string& key, int64_t at,
                                const std::string& id) {
    core::RequestLogEntry e;
    e.request_id = id;
    e.org_id = org;
    e.key_id = key;
    e.method = "GET";
    e.path = "/v1/leads";
    e.status = 200;
    e.latency_us = 42;
    e.client_ip = "10.0.0.1";
    e.user_agent = "curl/8";
    e.created_at = at;
    return e;
  }
  static std::set<std::string> ids(const std::vector<core::ApiKey>& keys) {
    std::set<std::string> out;
    for (const auto& k : keys) out.insert(k.id);
    return out;
  }
  void TearDown() override {
    s.reset();
    std::error_code ec;
    for (const auto& d : TempSqliteStore::dirs()) std::filesystem::remove_all(d, ec);
    TempSqliteStore::dirs().clear();
    pg_databases().clear();
  }
  std::unique_ptr<store::Store> s;
  std::string org_a, org_b;
};

}  // namespace

TEST_P(StoreContract, MigrateIsIdempotent) {
  auto again = s->migrate();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0);
}

TEST_P(StoreContract, FindsKeyByHashOnly) {
  auto k = make_key(org_a, 7);
  ASSERT_TRUE(s->insert_key(k).ok());
  auto found = s->find_key_by_hash(k.secret_hash);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, k.id);
  EXPECT_TRUE(found->scopes.has(core::Scope::leads_read));
  core::KeyHash other;
  other.fill(8);
  auto missing = s->find_key_by_hash(other);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, core::Errc::not_found);
}

TEST_P(StoreContract, DuplicateHashIsConflict) {
  ASSERT_TRUE(s->insert_key(make_key(org_a, 1)).ok());
  auto st = s->insert_key(make_key(org_a, 1));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, core::Errc::conflict);
}

TEST_P(StoreContract, KeysAreScopedToTheirOrganization) {
  auto k = make_key(org_a, 2);
  ASSERT_TRUE(s->insert_key(k).ok());
  EXPECT_FALSE(s->get_key(org_b, k.id));
  EXPECT_TRUE(s->get_key(org_a, k.id));
  EXPECT_TRUE(s->list_keys(org_b)->empty());
  EXPECT_FALSE(s->revoke_key(org_b, k.id, 3000));
  EXPECT_FALSE(s->get_key(org_a, k.id)->revoked_at);
}

TEST_P(StoreContract, RevokeIsImmediateAndKeepsTheFirstTime) {
  auto k = make_key(org_a, 3);
  ASSERT_TRUE(s->insert_key(k).ok());
  auto r = s->revoke_key(org_a, k.id, 3000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->revoked_at, 3000);
  EXPECT_EQ(r->status(3000), core::KeyStatus::revoked);
  EXPECT_EQ(s->revoke_key(org_a, k.id, 4000)->revoked_at, 3000);
}

TEST_P(StoreContract, RotateStopsOldKeyAndInsertsNew) {
  auto old = make_key(org_a, 4);
  ASSERT_TRUE(s->insert_key(old).ok());
  auto fresh = make_key(org_a, 5);
  ASSERT_TRUE(s->rotate_key(org_a, old.id, fresh, 3000, 3000).ok());
  EXPECT_EQ(s->get_key(org_a, old.id)->status(3000), core::KeyStatus::revoked);
  EXPECT_EQ(s->get_key(org_a, old.id)->replaced_by, fresh.id);
  EXPECT_TRUE(s->get_key(org_a, fresh.id));
  // A replaced key cannot be rotated again.
  EXPECT_FALSE(s->rotate_key(org_a, old.id, make_key(org_a, 6), 3000, 3000).ok());
}

TEST_P(StoreContract, RotateWithGraceExpiresOldKeyLater) {
  auto old = make_key(org_a, 9);
  ASSERT_TRUE(s->insert_key(old).ok());
  ASSERT_TRUE(s->rotate_key(org_a, old.id, make_key(org_a, 10), 6600, 3000).ok());
  auto k = s->get_key(org_a, old.id);
  EXPECT_EQ(k->status(3000), core::KeyStatus::active);
  EXPECT_EQ(k->status(6600), core::KeyStatus::expired);
}

TEST_P(StoreContract, TouchOnlyRaisesLastUsed) {
  auto k = make_key(org_a, 11);
  ASSERT_TRUE(s->insert_key(k).ok());
  ASSERT_TRUE(s->touch_keys({{k.id, 5000}}).ok());
  ASSERT_TRUE(s->touch_keys({{k.id, 4000}}).ok());
  EXPECT_EQ(s->get_key(org_a, k.id)->last_used_at, 5000);
}

TEST_P(StoreContract, KeysetPagesAreNewestFirstTiesByIdWithoutGaps) {
  std::vector<core::Lead> leads;
  for (int i = 0; i < 50; ++i) leads.push_back(lead(org_a, 1000 + i / 7));
  leads.push_back(lead(org_b, 5000));
  ASSERT_TRUE(s->upsert_leads(leads).ok());
  core::ListQuery q;
  q.limit = 8;
  std::vector<core::Lead> all;
  for (;;) {
    auto page = s->list_leads(org_a, q);
    ASSERT_TRUE(page);
    all.insert(all.end(), page->items.begin(), page->items.end());
    if (!page->has_more) break;
    q.after_created_at = page->items.back().created_at;
    q.after_id = page->items.back().id;
  }
  ASSERT_EQ(all.size(), 50u);
  for (size_t i = 1; i < all.size(); ++i) {
    auto prev = std::make_pair(all[i - 1].created_at, all[i - 1].id);
    auto cur = std::make_pair(all[i].created_at, all[i].id);
    EXPECT_GT(prev, cur);
    EXPECT_EQ(all[i].org_id, org_a);
  }
}

TEST_P(StoreContract, FiltersByStatusAndUpdatedSince) {
  auto a = lead(org_a, 1000), b = lead(org_a, 2000);
  b.status = "won";
  b.updated_at = 3000;
  ASSERT_TRUE(s->upsert_leads({a, b}).ok());
  core::ListQuery q;
  q.status = "won";
  EXPECT_EQ(s->list_leads(org_a, q)->items.size(), 1u);
  core::ListQuery q2;
  q2.updated_since = 2500;
  auto page = s->list_leads(org_a, q2);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, b.id);
}

TEST_P(StoreContract, UpsertIsAllOrNothing) {
  auto mine = lead(org_b, 1000);
  ASSERT_TRUE(s->upsert_leads({mine}).ok());
  // The second lead reuses org B's id from org A: the whole batch fails.
  auto st = s->upsert_leads({lead(org_a, 1), lead(org_a, 2, mine.id)});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, core::Errc::conflict);
  EXPECT_TRUE(s->list_leads(org_a, {})->items.empty());
  EXPECT_EQ(s->get_lead(org_b, mine.id)->org_id, org_b);
}

TEST_P(StoreContract, StoredDocumentsAreTheRenderedRowsInPageOrder) {
  auto a = lead(org_a, 1000), b = lead(org_a, 2000);
  a.email = "a@example.com";
  b.name = "Quote \" and \\ backslash";
  ASSERT_TRUE(s->upsert_leads({a, b}).ok());
  core::ListQuery q;
  core::DocPage docs;
  docs.json = "[";  // the store appends after what the caller put there
  ASSERT_TRUE(s->list_lead_docs(org_a, q, docs).ok());
  EXPECT_EQ(docs.count, 2);
  EXPECT_FALSE(docs.has_more);
  EXPECT_EQ(docs.json, "[" + core::lead_json(*s->get_lead(org_a, b.id)) + "," +
                           core::lead_json(*s->get_lead(org_a, a.id)));
  EXPECT_EQ(docs.last_id, a.id);
  EXPECT_EQ(docs.last_created_at, 1000);
  q.limit = 1;
  core::DocPage first;
  ASSERT_TRUE(s->list_lead_docs(org_a, q, first).ok());
  EXPECT_EQ(first.count, 1);
  EXPECT_TRUE(first.has_more);
  EXPECT_EQ(first.json, core::lead_json(*s->get_lead(org_a, b.id)));
  EXPECT_EQ(first.last_id, b.id);
  EXPECT_EQ(first.last_created_at, 2000);
  q.limit = 20;
  EXPECT_EQ(s->get_lead_doc(org_a, a.id)->json, core::lead_json(*s->get_lead(org_a, a.id)));
  EXPECT_FALSE(s->get_lead_doc(org_b, a.id));
  // Replacing a row replaces its document.
  a.status = "won";
  ASSERT_TRUE(s->upsert_leads({a}).ok());
  EXPECT_NE(s->get_lead_doc(org_a, a.id)->json.find("\"status\":\"won\""), std::string::npos);

  core::Invoice v;
  v.id = core::new_id("inv");
  v.org_id = org_a;
  v.number = "INV-1";
  v.customer_name = "C";
  v.line_items_json = R"([{"description":"x","quantity":1,"unit_price_cents":5,"amount_cents":5}])";
  ASSERT_TRUE(s->upsert_invoices({v}).ok());
  core::DocPage inv;
  ASSERT_TRUE(s->list_invoice_docs(org_a, q, inv).ok());
  EXPECT_EQ(inv.count, 1);
  EXPECT_EQ(inv.json, core::invoice_json(*s->get_invoice(org_a, v.id)));
  EXPECT_EQ(s->get_invoice_doc(org_a, v.id)->json, inv.json);
}

TEST_P(StoreContract, GetLeadOfAnotherOrganizationIsNotFound) {
  auto l = lead(org_b, 1000);
  ASSERT_TRUE(s->upsert_leads({l}).ok());
  auto r = s->get_lead(org_a, l.id);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::Errc::not_found);
}

TEST_P(StoreContract, InvoiceLeadMustBelongToTheSameOrganization) {
  auto l = lead(org_b, 1000);
  ASSERT_TRUE(s->upsert_leads({l}).ok());
  core::Invoice v;
  v.id = core::new_id("inv");
  v.org_id = org_a;
  v.number = "1";
  v.customer_name = "c";
  v.lead_id = l.id;
  auto st = s->upsert_invoices({v});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, core::Errc::invalid_request);
  v.lead_id.reset();
  ASSERT_TRUE(s->upsert_invoices({v}).ok());
  EXPECT_EQ(s->get_invoice(org_a, v.id)->line_items_json, "[]");
}

// Keys are real rows, as in the server: a key's log is listed through the
// key, which must be the organization's.
TEST_P(StoreContract, RequestLogPagesPerKey) {
  const auto k = make_key(org_a, 49);
  ASSERT_TRUE(s->insert_key(k).ok());
  std::vector<core::RequestLogEntry> entries;
  for (int i = 0; i < 5; ++i) {
    core::RequestLogEntry e;
    e.request_id = "req_" + std::to_string(i);
    e.org_id = org_a;
    e.key_id = k.id;
    e.method = "GET";
    e.path = "/v1/leads";
    e.status = 200;
    e.created_at = 1000 + i;
    entries.push_back(e);
  }
  ASSERT_TRUE(s->append_requests(entries).ok());
  core::ListQuery q;
  q.limit = 3;
  auto page = s->list_requests(org_a, k.id, q);
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->items[0].request_id, "req_4");
  EXPECT_TRUE(s->list_requests(org_b, k.id, q)->items.empty());
}

// Every field comes back byte for byte, whatever it holds: PostgreSQL
// writes the log with COPY, whose text format gives tabs, newlines and
// backslashes meanings of their own.
TEST_P(StoreContract, RequestLogKeepsTabsNewlinesAndBackslashes) {
  const auto k = make_key(org_a, 50);
  ASSERT_TRUE(s->insert_key(k).ok());
  core::RequestLogEntry e;
  e.request_id = "req_x";
  e.org_id = org_a;
  e.key_id = k.id;
  e.method = "GET";
  e.path = "/v1/leads/a\\b\\N";
  e.status = 404;
  e.latency_us = -1;
  e.client_ip = "2001:db8::1";
  e.user_agent = "tab\there\nnew line\r\\.\\N end";
  e.created_at = 1234;
  ASSERT_TRUE(s->append_requests({e}).ok());
  auto page = s->list_requests(org_a, k.id, core::ListQuery{});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1u);
  const auto& got = page->items[0];
  EXPECT_EQ(got.path, e.path);
  EXPECT_EQ(got.user_agent, e.user_agent);
  EXPECT_EQ(got.client_ip, e.client_ip);
  EXPECT_EQ(got.status, 404);
  EXPECT_EQ(got.latency_us, -1);
  EXPECT_EQ(got.created_at, 1234);
}

TEST_P(StoreContract, PingAnswersOnceMigrated) { EXPECT_TRUE(s->ping().ok()); }

TEST_P(StoreContract, OrganizationsAreFoundByIdAndOldestByName) {
  core::Organization newer{core::new_id("org"), "Twin", 500};
  core::Organization older{core::new_id("org"), "Twin", 400};
  ASSERT_TRUE(s->create_org(newer).ok());
  ASSERT_TRUE(s->create_org(older).ok());
  EXPECT_EQ(s->find_org_by_name("Twin")->id, older.id);
  EXPECT_EQ(s->get_org(newer.id)->name, "Twin");
  EXPECT_EQ(s->get_org(newer.id)->created_at, 500);
  EXPECT_EQ(s->get_org("org_missing").error().code, core::Errc::not_found);
  EXPECT_EQ(s->find_org_by_name("twin").error().code, core::Errc::not_found);
  EXPECT_EQ(s->create_org(older).error().code, core::Errc::conflict);
  EXPECT_FALSE(*s->empty());
}

TEST_P(StoreContract, EmailsAreUniqueWhateverTheirCase) {
  auto id = make_user(org_a, "Ceo@Example.com");
  auto found = s->find_user_by_email("ceo@EXAMPLE.COM");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, id);
  EXPECT_EQ(found->email, "Ceo@Example.com");
  EXPECT_EQ(found->role, core::Role::admin);
  core::User twin;
  twin.id = core::new_id("usr");
  twin.org_id = org_b;  // unique across organizations too
  twin.email = "CEO@example.COM";
  twin.created_at = 1000;
  EXPECT_EQ(s->create_user(twin).error().code, core::Errc::conflict);
  EXPECT_EQ(s->find_user_by_email("other@example.com").error().code, core::Errc::not_found);
}

TEST_P(StoreContract, PasswordsAreSetOnExistingUsersOnly) {
  auto id = make_user(org_a, "a@example.com");
  EXPECT_EQ(s->get_user(id)->password_hash, "");  // none yet: cannot sign in
  ASSERT_TRUE(s->set_user_password(id, "$argon2id$v=19$x").ok());
  EXPECT_EQ(s->get_user(id)->password_hash, "$argon2id$v=19$x");
  EXPECT_EQ(s->set_user_password("usr_missing", "h").error().code, core::Errc::not_found);
  EXPECT_EQ(s->get_user("usr_missing").error().code, core::Errc::not_found);
}

TEST_P(StoreContract, KeysKeepEveryField) {
  auto user = make_user(org_a, "owner@example.com");
  auto k = make_key(org_a, 20);
  k.name = "CRM sync";
  k.scopes.add(core::Scope::invoices_read);
  k.rate_limit_per_minute = 100000;
  k.created_by_id = user;
  k.expires_at = 9000;
  ASSERT_TRUE(s->insert_key(k).ok());
  auto got = s->get_key(org_a, k.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "CRM sync");
  EXPECT_EQ(got->hint, k.hint);
  EXPECT_EQ(got->secret_hash, k.secret_hash);
  EXPECT_EQ(got->scopes, k.scopes);
  EXPECT_EQ(got->rate_limit_per_minute, 100000u);
  EXPECT_EQ(got->created_at, 2000);
  EXPECT_EQ(got->created_by_id, user);
  EXPECT_EQ(got->created_by_email, "owner@example.com");
  EXPECT_EQ(got->expires_at, 9000);
  EXPECT_FALSE(got->last_used_at);
  EXPECT_FALSE(got->revoked_at);
  EXPECT_FALSE(got->replaced_by);
  // An empty organization id finds the key in any organization.
  EXPECT_EQ(s->get_key("", k.id)->org_id, org_a);
  EXPECT_EQ(s->get_key(org_a, "key_missing").error().code, core::Errc::not_found);
  EXPECT_EQ(s->revoke_key(org_a, "key_missing", 3000).error().code, core::Errc::not_found);
}

TEST_P(StoreContract, KeysAreListedNewestFirst) {
  auto a = make_key(org_a, 21), b = make_key(org_a, 22), c = make_key(org_a, 23);
  a.created_at = 100;
  b.created_at = 300;
  c.created_at = 200;
  for (const auto& k : {a, b, c}) ASSERT_TRUE(s->insert_key(k).ok());
  auto list = s->list_keys(org_a);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, b.id);
  EXPECT_EQ((*list)[1].id, c.id);
  EXPECT_EQ((*list)[2].id, a.id);
}

TEST_P(StoreContract, CountsOnlyActiveKeys) {
  auto active = make_key(org_a, 30), revoked = make_key(org_a, 31), expired = make_key(org_a, 32);
  auto later = make_key(org_a, 33), other = make_key(org_b, 34);
  expired.expires_at = 2500;
  later.revoked_at = 4000;  // revoked in the future: still active now
  for (const auto& k : {active, revoked, expired, later, other}) ASSERT_TRUE(s->insert_key(k).ok());
  ASSERT_TRUE(s->revoke_key(org_a, revoked.id, 2500));
  EXPECT_EQ(*s->count_active_keys(org_a, 3000), 2);
  EXPECT_EQ(*s->count_active_keys(org_a, 4000), 1);
  EXPECT_EQ(*s->count_active_keys(org_b, 3000), 1);
}

TEST_P(StoreContract, RotateRefusesKeysThatAreNotActive) {
  auto revoked = make_key(org_a, 40), expired = make_key(org_a, 41), other = make_key(org_b, 42);
  expired.expires_at = 2500;
  for (const auto& k : {revoked, expired, other}) ASSERT_TRUE(s->insert_key(k).ok());
  ASSERT_TRUE(s->revoke_key(org_a, revoked.id, 2500));
  auto fresh = make_key(org_a, 43);
  for (const auto& id : {revoked.id, expired.id, other.id, std::string("key_missing")}) {
    auto st = s->rotate_key(org_a, id, fresh, 3000, 3000);
    ASSERT_FALSE(st.ok()) << id;
    EXPECT_EQ(st.error().code, core::Errc::not_found) << id;
  }
  EXPECT_FALSE(s->get_key(org_a, fresh.id));  // nothing inserted
  EXPECT_FALSE(s->get_key(org_b, other.id)->replaced_by);
}

TEST_P(StoreContract, RotateIsAllOrNothing) {
  auto old = make_key(org_a, 44), taken = make_key(org_a, 45);
  ASSERT_TRUE(s->insert_key(old).ok());
  ASSERT_TRUE(s->insert_key(taken).ok());
  auto clash = make_key(org_a, 45);  // the hash of `taken`: the insert fails
  auto st = s->rotate_key(org_a, old.id, clash, 3000, 3000);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, core::Errc::conflict);
  auto k = s->get_key(org_a, old.id);
  EXPECT_FALSE(k->revoked_at);  // the old key was not stopped
  EXPECT_FALSE(k->replaced_by);
}

TEST_P(StoreContract, TouchTakesTheLatestTimeOfABatch) {
  auto k = make_key(org_a, 50);
  ASSERT_TRUE(s->insert_key(k).ok());
  ASSERT_TRUE(s->touch_keys({{k.id, 5000}, {k.id, 4000}, {"key_missing", 1}}).ok());
  EXPECT_EQ(s->get_key(org_a, k.id)->last_used_at, 5000);
  ASSERT_TRUE(s->touch_keys({}).ok());
}

TEST_P(StoreContract, ClaimsExpiredKeysOnce) {
  auto expired = make_key(org_a, 60), later = make_key(org_a, 61);
  auto revoked_first = make_key(org_a, 62), revoked_after = make_key(org_a, 63);
  auto never = make_key(org_a, 64), other = make_key(org_b, 65);
  expired.expires_at = 2500;
  later.expires_at = 5000;
  revoked_first.expires_at = 2500;  // revoked before it expired: never "expires"
  revoked_first.revoked_at = 2400;
  revoked_after.expires_at = 2500;
  revoked_after.revoked_at = 2600;
  other.expires_at = 2500;
  for (const auto& k : {expired, later, revoked_first, revoked_after, never, other})
    ASSERT_TRUE(s->insert_key(k).ok());
  auto first = s->claim_expired_keys(org_a, 3000);
  ASSERT_TRUE(first);
  EXPECT_EQ(ids(*first), (std::set<std::string>{expired.id, revoked_after.id}));
  EXPECT_TRUE(s->claim_expired_keys(org_a, 3000)->empty());
  EXPECT_EQ(ids(*s->claim_expired_keys(org_a, 6000)), std::set<std::string>{later.id});
  EXPECT_EQ(ids(*s->claim_expired_keys(org_b, 6000)), std::set<std::string>{other.id});
}

TEST_P(StoreContract, ConcurrentClaimsReturnEachExpiredKeyOnce) {
  std::set<std::string> want;
  for (int i = 0; i < 40; ++i) {
    auto k = make_key(org_a, static_cast<unsigned char>(100 + i));
    k.expires_at = 2500;
    ASSERT_TRUE(s->insert_key(k).ok());
    want.insert(k.id);
  }
  std::vector<std::vector<core::ApiKey>> got(4);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (auto& mine : got) {
    threads.emplace_back([&] {
      for (int round = 0; round < 3; ++round) {
        auto r = s->claim_expired_keys(org_a, 3000);
        if (!r) {
          ++failures;
          continue;
        }
        mine.insert(mine.end(), r->begin(), r->end());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<std::string> all;
  for (const auto& v : got)
    for (const auto& k : v) all.push_back(k.id);
  EXPECT_EQ(all.size(), want.size());  // no key twice
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()), want);
}

TEST_P(StoreContract, SessionsAreFoundTouchedAndDeleted) {
  auto user = make_user(org_a, "s@example.com");
  auto x = session(user, 70, 1000, 1000);
  ASSERT_TRUE(s->create_session(x).ok());
  EXPECT_EQ(s->create_session(x).error().code, core::Errc::conflict);
  auto found = s->find_session(x.token_hash);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->token_hash, x.token_hash);
  EXPECT_EQ(found->user_id, user);
  EXPECT_EQ(found->created_at, 1000);
  EXPECT_EQ(found->ip, "127.0.0.1");
  EXPECT_EQ(found->user_agent, "test");
  ASSERT_TRUE(s->touch_session(x.token_hash, 2000).ok());
  ASSERT_TRUE(s->touch_session(x.token_hash, 1500).ok());  // never lowered
  EXPECT_EQ(s->find_session(x.token_hash)->last_seen_at, 2000);
  core::KeyHash other;
  other.fill(71);
  EXPECT_EQ(s->find_session(other).error().code, core::Errc::not_found);
  ASSERT_TRUE(s->delete_session(x.token_hash).ok());
  EXPECT_EQ(s->find_session(x.token_hash).error().code, core::Errc::not_found);
  EXPECT_TRUE(s->delete_session(x.token_hash).ok());  // missing: not an error
}

TEST_P(StoreContract, StaleSessionsAreDeleted) {
  auto user = make_user(org_a, "t@example.com");
  auto old = session(user, 80, 1000, 5000);   // created too long ago
  auto idle = session(user, 81, 3000, 3500);  // idle too long
  auto fresh = session(user, 82, 4000, 6000);
  for (const auto& x : {old, idle, fresh}) ASSERT_TRUE(s->create_session(x).ok());
  ASSERT_TRUE(s->delete_stale_sessions(/*idle_before=*/4000, /*created_before=*/2000).ok());
  EXPECT_FALSE(s->find_session(old.token_hash));
  EXPECT_FALSE(s->find_session(idle.token_hash));
  EXPECT_TRUE(s->find_session(fresh.token_hash));
}

TEST_P(StoreContract, TiesAreBrokenByIdBytes) {
  // Byte order ('b' > 'a' > 'B'), whatever the database's collation.
  ASSERT_TRUE(s->upsert_leads({lead(org_a, 1000, "lead_a"), lead(org_a, 1000, "lead_B"),
                               lead(org_a, 1000, "lead_b")})
                  .ok());
  auto page = s->list_leads(org_a, {});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_EQ(page->items[0].id, "lead_b");
  EXPECT_EQ(page->items[1].id, "lead_a");
  EXPECT_EQ(page->items[2].id, "lead_B");
  core::ListQuery q;
  q.after_created_at = 1000;
  q.after_id = "lead_a";
  auto rest = s->list_leads(org_a, q);
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].id, "lead_B");
}

TEST_P(StoreContract, UpsertReplacesEveryFieldOfALead) {
  auto l = lead(org_a, 1000);
  l.email = "x@example.com";
  l.phone = "+1 555";
  l.company = "Co";
  l.source = "web";
  l.value_cents = 12345;
  l.currency = "EUR";
  ASSERT_TRUE(s->upsert_leads({l}).ok());
  auto got = s->get_lead(org_a, l.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->email, "x@example.com");
  EXPECT_EQ(got->phone, "+1 555");
  EXPECT_EQ(got->company, "Co");
  EXPECT_EQ(got->source, "web");
  EXPECT_EQ(got->value_cents, 12345);
  EXPECT_EQ(got->currency, "EUR");
  l.name = "renamed";
  l.email.clear();
  l.status = "won";
  l.updated_at = 2000;
  ASSERT_TRUE(s->upsert_leads({l}).ok());
  got = s->get_lead(org_a, l.id);
  EXPECT_EQ(got->name, "renamed");
  EXPECT_EQ(got->email, "");
  EXPECT_EQ(got->status, "won");
  EXPECT_EQ(got->updated_at, 2000);
  EXPECT_EQ(s->list_leads(org_a, {})->items.size(), 1u);
}

TEST_P(StoreContract, InvoicesKeepEveryFieldAndTheirLeadCanChange) {
  auto l = lead(org_a, 1000);
  ASSERT_TRUE(s->upsert_leads({l}).ok());
  core::Invoice v;
  v.id = core::new_id("inv");
  v.org_id = org_a;
  v.number = "INV-1";
  v.customer_name = "Customer";
  v.customer_email = "c@example.com";
  v.lead_id = l.id;
  v.status = "paid";
  v.currency = "EUR";
  v.subtotal_cents = 1000;
  v.tax_cents = 200;
  v.total_cents = 1200;
  v.amount_paid_cents = 1200;
  v.issued_at = 1100;
  v.due_at = 1200;
  v.paid_at = 1150;
  v.line_items_json =
      R"([{"description":"x","quantity":1,"unit_price_cents":1000,"amount_cents":1000}])";
  v.created_at = 1100;
  v.updated_at = 1150;
  ASSERT_TRUE(s->upsert_invoices({v}).ok());
  auto got = s->get_invoice(org_a, v.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, "INV-1");
  EXPECT_EQ(got->customer_email, "c@example.com");
  EXPECT_EQ(got->lead_id, l.id);
  EXPECT_EQ(got->status, "paid");
  EXPECT_EQ(got->total_cents, 1200);
  EXPECT_EQ(got->paid_at, 1150);
  EXPECT_EQ(got->due_at, 1200);
  EXPECT_EQ(got->line_items_json, v.line_items_json);
  // The lead it points at can be upserted again.
  ASSERT_TRUE(s->upsert_leads({l}).ok());
  v.lead_id.reset();
  v.paid_at.reset();
  ASSERT_TRUE(s->upsert_invoices({v}).ok());
  got = s->get_invoice(org_a, v.id);
  EXPECT_FALSE(got->lead_id);
  EXPECT_FALSE(got->paid_at);
  EXPECT_EQ(s->get_invoice(org_b, v.id).error().code, core::Errc::not_found);
  core::ListQuery q;
  q.status = "paid";
  EXPECT_EQ(s->list_invoices(org_a, q)->items.size(), 1u);
}

TEST_P(StoreContract, UpsertInvoicesIsAllOrNothing) {
  core::Invoice good;
  good.id = core::new_id("inv");
  good.org_id = org_a;
  good.number = "1";
  good.customer_name = "c";
  auto bad = good;
  bad.id = core::new_id("inv");
  bad.lead_id = "lead_missing";
  auto st = s->upsert_invoices({good, bad});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, core::Errc::invalid_request);
  EXPECT_EQ(st.error().param, "lead_id");
  EXPECT_FALSE(s->get_invoice(org_a, good.id));
  // An id taken by another organization: conflict, nothing stored.
  auto mine = good;
  mine.org_id = org_b;
  ASSERT_TRUE(s->upsert_invoices({mine}).ok());
  auto other = good;
  other.id = core::new_id("inv");
  st = s->upsert_invoices({other, good});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, core::Errc::conflict);
  EXPECT_FALSE(s->get_invoice(org_a, other.id));
  EXPECT_EQ(s->get_invoice(org_b, good.id)->org_id, org_b);
}

TEST_P(StoreContract, LargeRequestLogBatchesAreStoredWhole) {
  auto k = make_key(org_a, 40);
  ASSERT_TRUE(s->insert_key(k).ok());
  std::vector<core::RequestLogEntry> entries;
  for (int i = 0; i < 1000; ++i)
    entries.push_back(request(org_a, k.id, 3600 + i * 10, "req_" + std::to_string(10000 + i)));
  ASSERT_TRUE(s->append_requests(entries).ok());
  ASSERT_TRUE(s->append_requests({}).ok());
  auto hours = s->hourly_counts(org_a, k.id, 0);
  ASSERT_TRUE(hours);
  int64_t total = 0;
  for (const auto& [h, n] : *hours) total += n;
  EXPECT_EQ(total, 1000);
  core::ListQuery q;
  q.limit = 2;
  auto page = s->list_requests(org_a, k.id, q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 2u);
  const auto& e = page->items[0];
  EXPECT_EQ(e.request_id, "req_10999");
  EXPECT_EQ(e.org_id, org_a);
  EXPECT_EQ(e.key_id, k.id);
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.path, "/v1/leads");
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.latency_us, 42);
  EXPECT_EQ(e.client_ip, "10.0.0.1");
  EXPECT_EQ(e.user_agent, "curl/8");
  EXPECT_EQ(e.created_at, 3600 + 9990);
  q.after_created_at = page->items[1].created_at;
  q.after_id = page->items[1].request_id;
  EXPECT_EQ(s->list_requests(org_a, k.id, q)->items[0].request_id, "req_10997");
}

// Keys are real rows: SQLite's per-key index of the log holds no
// organization and scopes a count through the key's (migration 9).
TEST_P(StoreContract, HourlyCountsAreOldestFirstPerKey) {
  auto k1 = make_key(org_a, 41), k2 = make_key(org_a, 42), k3 = make_key(org_b, 43);
  for (const auto& k : {k1, k2, k3}) ASSERT_TRUE(s->insert_key(k).ok());
  ASSERT_TRUE(s->append_requests({request(org_a, k1.id, 7200 + 5, "r1"),
                                  request(org_a, k1.id, 7200 + 100, "r2"),
                                  request(org_a, k1.id, 18000 + 10, "r3"),
                                  request(org_a, k1.id, 10800 + 1, "r4"),
                                  request(org_a, k1.id, 7199, "r5"),  // before `since`
                                  request(org_a, k2.id, 7300, "r6"),
                                  request(org_b, k3.id, 7300, "r7")})
                  .ok());
  auto hours = s->hourly_counts(org_a, k1.id, 7200);
  ASSERT_TRUE(hours);
  std::vector<std::pair<int64_t, int64_t>> want{{7200, 2}, {10800, 1}, {18000, 1}};
  EXPECT_EQ(*hours, want);
  // Another organization's key counts nothing, whoever asks.
  EXPECT_TRUE(s->hourly_counts(org_b, k1.id, 0)->empty());
  EXPECT_TRUE(s->hourly_counts(org_b, k2.id, 0)->empty());
  EXPECT_EQ(*s->hourly_counts(org_b, k3.id, 0), (std::vector<std::pair<int64_t, int64_t>>{{7200, 1}}));
}

// SQLite indexes the log per key in passes every few seconds (the first
// batch is indexed at once, the next ones wait): listing and counting must
// merge what is indexed with what is not yet, in order, per organization.
// (Pruning with plain SQL: KeyCacheServiceTest.PruningTheRequestLogPrunesItsIndex.)
TEST_P(StoreContract, RequestLogListsMergeIndexedAndRecentRows) {
  auto km = make_key(org_a, 44), ko = make_key(org_a, 45), kb = make_key(org_b, 46);
  for (const auto& k : {km, ko, kb}) ASSERT_TRUE(s->insert_key(k).ok());
  ASSERT_TRUE(s->append_requests({request(org_a, km.id, 3600 + 1, "req_a1"),
                                  request(org_a, km.id, 3600 + 3, "req_a3"),
                                  request(org_b, kb.id, 3600 + 4, "req_b4")})
                  .ok());
  ASSERT_TRUE(s->append_requests({request(org_a, km.id, 3600 + 2, "req_a2"),
                                  request(org_a, km.id, 7200 + 5, "req_a5"),
                                  request(org_a, ko.id, 3600 + 6, "req_o6"),
                                  request(org_b, kb.id, 3600 + 7, "req_b7")})
                  .ok());
  core::ListQuery q;
  q.limit = 2;
  std::vector<std::string> seen;
  for (int pages = 0; pages < 5; ++pages) {
    auto page = s->list_requests(org_a, km.id, q);
    ASSERT_TRUE(page);
    for (const auto& e : page->items) seen.push_back(e.request_id);
    if (!page->has_more) break;
    q.after_created_at = page->items.back().created_at;
    q.after_id = page->items.back().request_id;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"req_a5", "req_a3", "req_a2", "req_a1"}));
  auto hours = s->hourly_counts(org_a, km.id, 0);
  ASSERT_TRUE(hours);
  EXPECT_EQ(*hours, (std::vector<std::pair<int64_t, int64_t>>{{3600, 3}, {7200, 1}}));
  // Per organization: another's key lists nothing, indexed or not.
  auto foreign = s->list_requests(org_b, km.id, core::ListQuery{});
  ASSERT_TRUE(foreign);
  EXPECT_TRUE(foreign->items.empty());
  auto theirs = s->list_requests(org_b, kb.id, core::ListQuery{});
  ASSERT_TRUE(theirs);
  ASSERT_EQ(theirs->items.size(), 2u);
  EXPECT_EQ(theirs->items[0].request_id, "req_b7");
  EXPECT_EQ(theirs->items[1].request_id, "req_b4");
}

// Thousands of requests of one key, logged out of time order (a request
// that started earlier can be logged later), across hours and ties on the
// second: every page, from the top or from a deep cursor, is newest first by
// time then id, without a gap or a repeat. (On SQLite the index pass splits
// these into many chunks: at most 256 rows and 59 s each.)
TEST_P(StoreContract, RequestLogPagesAreExactOverThousandsOfRows) {
  auto k = make_key(org_a, 47), other = make_key(org_a, 48);
  for (const auto& key : {k, other}) ASSERT_TRUE(s->insert_key(key).ok());
  std::vector<core::RequestLogEntry> first, second;
  std::vector<std::pair<int64_t, std::string>> want;
  for (int i = 0; i < 3000; ++i) {
    // Three rows a second on average, with times up to 40 s out of order.
    const int64_t at = 3000 + i / 3 + ((i * 7919) % 41) - 20;
    char id[24];
    std::snprintf(id, sizeof id, "req_%05d", (i * 4099) % 10007);
    (i < 2000 ? first : second).push_back(request(org_a, k.id, at, id));
    want.emplace_back(at, id);
    if (i % 5 == 0) (i < 2000 ? first : second).push_back(request(org_a, other.id, at, id));
  }
  ASSERT_TRUE(s->append_requests(first).ok());   // indexed at once on SQLite
  ASSERT_TRUE(s->append_requests(second).ok());  // not yet
  std::sort(want.begin(), want.end(), std::greater<>());
  auto all_from = [&](core::ListQuery q) {
    std::vector<std::pair<int64_t, std::string>> seen;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = s->list_requests(org_a, k.id, q);
      EXPECT_TRUE(page);
      if (!page) break;
      for (const auto& e : page->items) seen.emplace_back(e.created_at, e.request_id);
      if (!page->has_more) break;
      q.after_created_at = page->items.back().created_at;
      q.after_id = page->items.back().request_id;
    }
    return seen;
  };
  core::ListQuery q;
  q.limit = 37;
  EXPECT_EQ(all_from(q), want);
  // From a cursor in the middle (a deep page) to the end.
  const size_t mid = want.size() / 2;
  q.after_created_at = want[mid].first;
  q.after_id = want[mid].second;
  EXPECT_EQ(all_from(q), std::vector(want.begin() + static_cast<std::ptrdiff_t>(mid) + 1, want.end()));
  // The hours count every row once.
  auto hours = s->hourly_counts(org_a, k.id, 0);
  ASSERT_TRUE(hours);
  std::map<int64_t, int64_t> want_hours;
  for (const auto& [at, id] : want) ++want_hours[at / 3600 * 3600];
  EXPECT_EQ(*hours, (std::vector<std::pair<int64_t, int64_t>>(want_hours.begin(), want_hours.end())));
  auto since = s->hourly_counts(org_a, k.id, 3600 + 17);
  ASSERT_TRUE(since);
  int64_t after = 0;
  for (const auto& [at, id] : want) after += at >= 3600 + 17;
  ASSERT_EQ(since->size(), 1u);
  EXPECT_EQ((*since)[0], (std::pair<int64_t, int64_t>{3600, after}));
}

TEST_P(StoreContract, AuditEventsNameTheKeyAndTheActor) {
  auto user = make_user(org_a, "admin@example.com");
  auto k = make_key(org_a, 90);
  k.name = "CRM sync";
  ASSERT_TRUE(s->insert_key(k).ok());
  core::AuditEvent created{core::new_id("evt"), org_a, "api_key.created", user, std::nullopt,
                           k.id, "", "10.0.0.2", 100};
  core::AuditEvent expired{core::new_id("evt"), org_a, "api_key.expired", std::nullopt,
                           std::nullopt, "key_gone", "", "", 200};
  core::AuditEvent theirs{core::new_id("evt"), org_b, "api_key.created", std::nullopt,
                          std::nullopt, k.id, "", "", 300};
  for (const auto& e : {created, expired, theirs}) ASSERT_TRUE(s->append_audit(e).ok());
  EXPECT_EQ(s->append_audit(created).error().code, core::Errc::conflict);
  core::ListQuery q;
  q.limit = 1;
  auto page = s->list_audit(org_a, q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->items[0].id, expired.id);
  EXPECT_FALSE(page->items[0].actor_user_id);
  EXPECT_FALSE(page->items[0].actor_email);
  EXPECT_EQ(page->items[0].key_name, "");  // the key is unknown
  q.after_created_at = page->items[0].created_at;
  q.after_id = page->items[0].id;
  page = s->list_audit(org_a, q);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_FALSE(page->has_more);
  const auto& e = page->items[0];
  EXPECT_EQ(e.id, created.id);
  EXPECT_EQ(e.type, "api_key.created");
  EXPECT_EQ(e.actor_user_id, user);
  EXPECT_EQ(e.actor_email, "admin@example.com");
  EXPECT_EQ(e.key_id, k.id);
  EXPECT_EQ(e.key_name, "CRM sync");
  EXPECT_EQ(e.ip, "10.0.0.2");
  EXPECT_EQ(e.created_at, 100);
}

TEST_P(StoreContract, ManyThreadsCanUseOneStore) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        if (!s->upsert_leads({lead(org_a, 1000 + t * 100 + i)}).ok()) ++failures;
        core::ListQuery q;
        q.limit = 5;
        if (!s->list_leads(org_a, q)) ++failures;
        if (!s->append_requests({request(org_a, "key_t", 1000 + i, core::new_id("req"))}).ok())
          ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  core::ListQuery q;
  q.limit = 100;
  int n = 0;
  for (;;) {
    auto page = s->list_leads(org_a, q);
    ASSERT_TRUE(page);
    n += static_cast<int>(page->items.size());
    if (!page->has_more) break;
    q.after_created_at = page->items.back().created_at;
    q.after_id = page->items.back().id;
  }
  EXPECT_EQ(n, 8 * 15);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return info.param.name; });
