// The store contract, run against every backend the test run has. SQLite
// always; further backends register a factory in kBackends.

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <unistd.h>

#include "core/ids.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace dvs;

namespace {

struct Backend {
  std::string name;
  std::function<std::unique_ptr<store::Store>()> make;
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

const Backend kBackends[] = {{"sqlite", make_sqlite}};

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
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
  void TearDown() override {
    s.reset();
    std::error_code ec;
    for (const auto& d : TempSqliteStore::dirs()) std::filesystem::remove_all(d, ec);
    TempSqliteStore::dirs().clear();
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

TEST_P(StoreContract, RequestLogPagesPerKey) {
  std::vector<core::RequestLogEntry> entries;
  for (int i = 0; i < 5; ++i) {
    core::RequestLogEntry e;
    e.request_id = "req_" + std::to_string(i);
    e.org_id = org_a;
    e.key_id = "key_1";
    e.method = "GET";
    e.path = "/v1/leads";
    e.status = 200;
    e.created_at = 1000 + i;
    entries.push_back(e);
  }
  ASSERT_TRUE(s->append_requests(entries).ok());
  core::ListQuery q;
  q.limit = 3;
  auto page = s->list_requests(org_a, "key_1", q);
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->items[0].request_id, "req_4");
  EXPECT_TRUE(s->list_requests(org_b, "key_1", q)->items.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return info.param.name; });
