#pragma once
// The domain's records: plain data, no behaviour, no I/O. Times are Unix seconds.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/api_key.hpp"
#include "core/scope.hpp"

namespace dvs::core {

enum class Role { ceo, admin, member };
std::string_view role_name(Role r);
std::optional<Role> parse_role(std::string_view s);

struct Organization {
  std::string id;  // org_...
  std::string name;
  int64_t created_at = 0;
};

struct User {
  std::string id;  // usr_...
  std::string org_id;
  std::string email;
  Role role = Role::member;
  std::string password_hash;  // Argon2id encoded; empty: cannot sign in
  int64_t created_at = 0;
};

enum class KeyStatus { active, expired, revoked };
std::string_view key_status_name(KeyStatus s);

struct ApiKey {
  std::string id;  // key_...
  std::string org_id;
  std::string name;
  std::string hint;
  KeyHash secret_hash{};
  ScopeSet scopes;
  uint32_t rate_limit_per_minute = 120;
  int64_t created_at = 0;
  std::optional<std::string> created_by_id;
  std::optional<std::string> created_by_email;
  std::optional<int64_t> expires_at;
  std::optional<int64_t> last_used_at;
  std::optional<int64_t> revoked_at;
  std::optional<std::string> replaced_by;

  // revoked wins over expired; `now` in Unix seconds.
  KeyStatus status(int64_t now) const {
    if (revoked_at && *revoked_at <= now) return KeyStatus::revoked;
    if (expires_at && *expires_at <= now) return KeyStatus::expired;
    return KeyStatus::active;
  }
};

inline constexpr uint32_t kDefaultRateLimit = 120;
inline constexpr uint32_t kMaxRateLimit = 100000;

inline constexpr std::string_view kLeadStatuses[] = {"new", "contacted", "qualified", "won",
                                                     "lost"};
inline constexpr std::string_view kInvoiceStatuses[] = {"draft", "open", "paid", "void",
                                                        "overdue"};
bool is_lead_status(std::string_view s);
bool is_invoice_status(std::string_view s);

struct Lead {
  std::string id;  // lead_...
  std::string org_id;
  std::string name;
  std::string email;
  std::string phone;
  std::string company;
  std::string status = "new";
  std::string source;
  int64_t value_cents = 0;
  std::string currency = "USD";
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct LineItem {
  std::string description;
  int64_t quantity = 1;
  int64_t unit_price_cents = 0;
  int64_t amount_cents = 0;
};

struct Invoice {
  std::string id;  // inv_...
  std::string org_id;
  std::string number;
  std::string customer_name;
  std::string customer_email;
  std::optional<std::string> lead_id;
  std::string status = "draft";
  std::string currency = "USD";
  int64_t subtotal_cents = 0;
  int64_t tax_cents = 0;
  int64_t total_cents = 0;
  int64_t amount_paid_cents = 0;
  int64_t issued_at = 0;
  int64_t due_at = 0;
  std::optional<int64_t> paid_at;
  std::string line_items_json = "[]";  // canonical JSON array of line items
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// A stored object already rendered as its JSON (a lead or an invoice).
struct Document {
  std::string id;
  int64_t created_at = 0;
  std::string json;
};

// A page of stored documents joined as they go on the wire: the store
// appends each document to `json` (after whatever the caller put there),
// separated by commas, so a list response is built with one copy of each.
struct DocPage {
  std::string json;
  int count = 0;                // documents appended
  bool has_more = false;
  int64_t last_created_at = 0;  // of the last document: the next cursor
  std::string last_id;
  // A caller that sends a cached list answer as it is sets `take_whole` and
  // leaves `json` empty; a read answered from the document cache then gives
  // the whole response body in `whole` and appends nothing, and any other
  // read starts `json` with the list's head itself (core/doc_cache.hpp).
  bool take_whole = false;
  std::shared_ptr<const std::string> whole;
};

// One /v1 request as the request log keeps it.
struct RequestLogEntry {
  std::string request_id;
  std::string org_id;
  std::string key_id;
  std::string method;
  std::string path;
  int status = 0;
  int64_t latency_us = 0;
  std::string client_ip;
  std::string user_agent;
  int64_t created_at = 0;
};

// A signed-in portal user's session. The token itself is never stored.
struct Session {
  KeyHash token_hash{};
  std::string user_id;
  int64_t created_at = 0;
  int64_t last_seen_at = 0;
  std::string ip;
  std::string user_agent;
};

struct AuditEvent {
  std::string id;  // evt_...
  std::string org_id;
  std::string type;  // api_key.created | .rotated | .revoked | .expired
  std::optional<std::string> actor_user_id;
  std::optional<std::string> actor_email;
  std::string key_id;
  std::string key_name;  // filled in by list_audit
  std::string ip;
  int64_t created_at = 0;
};

// Parameters of a keyset-paginated list, already validated.
struct ListQuery {
  int limit = 20;
  std::optional<int64_t> after_created_at;  // from the cursor
  std::string after_id;
  std::string status;  // empty: any
  std::optional<int64_t> updated_since;
};

template <typename T>
struct Page {
  std::vector<T> items;
  bool has_more = false;
};

}  // namespace dvs::core
