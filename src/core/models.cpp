#include "core/models.hpp"

namespace dvs::core {

std::string_view role_name(Role r) {
  switch (r) {
    case Role::ceo: return "ceo";
    case Role::admin: return "admin";
    case Role::member: return "member";
  }
  return "member";
}

std::optional<Role> parse_role(std::string_view s) {
  if (s == "ceo") return Role::ceo;
  if (s == "admin") return Role::admin;
  if (s == "member") return Role::member;
  return std::nullopt;
}

std::string_view key_status_name(KeyStatus s) {
  switch (s) {
    case KeyStatus::active: return "active";
    case KeyStatus::expired: return "expired";
    case KeyStatus::revoked: return "revoked";
  }
  return "active";
}

bool is_lead_status(std::string_view s) {
  for (auto v : kLeadStatuses)
    if (v == s) return true;
  return false;
}

bool is_invoice_status(std::string_view s) {
  for (auto v : kInvoiceStatuses)
    if (v == s) return true;
  return false;
}

}  // namespace dvs::core
