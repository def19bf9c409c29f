#include "app/demo.hpp"

#include "core/base62.hpp"
#include "core/ids.hpp"
#include "core/json_writer.hpp"
#include "core/models.hpp"
#include "core/password.hpp"

namespace dvs::app {

using core::Errc;
using core::make_error;

namespace {
// A fixed-seed generator: the demo looks the same every time it is seeded.
struct Lcg {
  uint64_t s = 0x2545F4914F6CDD1Dull;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
  template <typename T, size_t N>
  const T& pick(const T (&a)[N]) { return a[next() % N]; }
};

constexpr const char* kFirst[] = {"Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara",
                                  "Ken", "Frances", "Dennis", "Radia", "Tim", "Hedy",
                                  "John", "Katherine", "Edsger", "Sophie"};
constexpr const char* kLast[] = {"Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing",
                                 "Liskov", "Thompson", "Allen", "Ritchie", "Perlman",
                                 "Berners-Lee", "Lamarr", "Backus", "Johnson", "Dijkstra",
                                 "Wilson"};
constexpr const char* kCompany[] = {"Northwind Traders", "Globex", "Initech", "Umbrella Health",
                                    "Stark Logistics", "Wayne Foods", "Hooli", "Vandelay Imports",
                                    "Soylent Labs", "Cyberdyne Parts", "Tyrell Farms",
                                    "Wonka Sweets"};
constexpr const char* kSource[] = {"website", "referral", "trade show", "cold email", "partner",
                                   "webinar"};
constexpr const char* kItems[] = {"Robot arm RX-7", "Installation", "Annual maintenance",
                                  "Gripper kit", "Operator training (day)", "Vision module",
                                  "Spare servo pack"};

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}
}  // namespace

core::Result<DemoLogin> seed_demo(store::Store& store, const core::Clock& clock) {
  DemoLogin out;
  out.email = kDemoCeoEmail;
  out.password = core::random_base62(16);
  auto hash = core::hash_password(out.password);
  if (!hash) return make_error(Errc::internal, "cannot hash the demo password");
  const int64_t now = clock.now_s();

  auto existing = store.find_org_by_name(kDemoOrgName);
  if (existing) {
    auto ceo = store.find_user_by_email(kDemoCeoEmail);
    if (!ceo) return ceo.error();
    if (auto st = store.set_user_password(ceo->id, *hash); !st) return st.error();
    out.org_id = existing->id;
    return out;
  }
  if (existing.error().code != Errc::not_found) return existing.error();

  core::Organization org{core::new_id("org"), kDemoOrgName, now - 120 * 86400};
  if (auto st = store.create_org(org); !st) return st.error();
  out.org_id = org.id;
  out.created = true;
  struct Person {
    const char* email;
    core::Role role;
  };
  for (auto p : {Person{kDemoCeoEmail, core::Role::ceo},
                 Person{"admin@acme-robotics.example", core::Role::admin},
                 Person{"member@acme-robotics.example", core::Role::member}}) {
    core::User u;
    u.id = core::new_id("usr");
    u.org_id = org.id;
    u.email = p.email;
    u.role = p.role;
    // Only the CEO gets a password; the others show roles in lists.
    if (p.role == core::Role::ceo) u.password_hash = *hash;
    u.created_at = org.created_at;
    if (auto st = store.create_user(u); !st) return st.error();
  }

  Lcg rng;
  std::vector<core::Lead> leads;
  for (int i = 0; i < 60; ++i) {
    core::Lead l;
    l.id = core::new_id("lead");
    l.org_id = org.id;
    std::string first = rng.pick(kFirst), last = rng.pick(kLast);
    l.name = first + " " + last;
    l.company = rng.pick(kCompany);
    l.email = lower(first) + "." + lower(last) + "@" +
              lower(l.company.substr(0, l.company.find(' '))) + ".example";
    l.phone = "+1 555 01" + std::to_string(10 + rng.next() % 90);
    l.status = std::string(core::kLeadStatuses[rng.next() % 5]);
    l.source = rng.pick(kSource);
    l.value_cents = static_cast<int64_t>(rng.next() % 5000 + 5) * 10000;
    l.currency = "USD";
    l.created_at = now - static_cast<int64_t>(rng.next() % (90 * 86400));
    l.updated_at = l.created_at + static_cast<int64_t>(rng.next() % 86400);
    leads.push_back(std::move(l));
  }
  if (auto st = store.upsert_leads(leads); !st) return st.error();

  std::vector<core::Invoice> invoices;
  for (int i = 0; i < 25; ++i) {
    const core::Lead& lead = leads[static_cast<size_t>(i) * 2];
    core::Invoice v;
    v.id = core::new_id("inv");
    v.org_id = org.id;
    v.number = "INV-2026-" + std::to_string(1001 + i);
    v.customer_name = lead.company;
    v.customer_email = lead.email;
    v.lead_id = lead.id;
    v.status = std::string(core::kInvoiceStatuses[rng.next() % 5]);
    v.currency = "USD";
    std::string items;
    core::JsonWriter w(items);
    w.begin_array();
    int64_t sum = 0;
    for (uint32_t k = 0, n = 1 + rng.next() % 3; k < n; ++k) {
      int64_t qty = 1 + rng.next() % 4, unit = static_cast<int64_t>(rng.next() % 900 + 100) * 100;
      sum += qty * unit;
      w.begin_object().key("description").string(rng.pick(kItems)).key("quantity").integer(qty);
      w.key("unit_price_cents").integer(unit).key("amount_cents").integer(qty * unit).end_object();
    }
    w.end_array();
    v.line_items_json = items;
    v.subtotal_cents = sum;
    v.tax_cents = sum / 10;
    v.total_cents = v.subtotal_cents + v.tax_cents;
    v.created_at = std::min(lead.created_at + 86400, now - 3600);
    v.updated_at = v.created_at;
    v.issued_at = v.created_at;
    v.due_at = v.issued_at + 30 * 86400;
    if (v.status == "paid") {
      v.amount_paid_cents = v.total_cents;
      v.paid_at = std::min(v.issued_at + 7 * 86400, now);
    }
    invoices.push_back(std::move(v));
  }
  if (auto st = store.upsert_invoices(invoices); !st) return st.error();
  out.leads = leads.size();
  out.invoices = invoices.size();
  return out;
}

}  // namespace dvs::app
