#include "core/scope.hpp"

namespace dvs::core {

const std::vector<Scope>& all_scopes() {
  static const std::vector<Scope> kAll{Scope::leads_read, Scope::invoices_read};
  return kAll;
}

std::string_view scope_name(Scope s) {
  switch (s) {
    case Scope::leads_read: return "leads:read";
    case Scope::invoices_read: return "invoices:read";
  }
  return "";
}

std::optional<Scope> parse_scope(std::string_view name) {
  for (Scope s : all_scopes())
    if (scope_name(s) == name) return s;
  return std::nullopt;
}

std::vector<std::string_view> ScopeSet::names() const {
  std::vector<std::string_view> out;
  for (Scope s : all_scopes())
    if (has(s)) out.push_back(scope_name(s));
  return out;
}

std::string ScopeSet::to_string() const {
  std::string out;
  for (auto n : names()) {
    if (!out.empty()) out.push_back(' ');
    out.append(n);
  }
  return out;
}

ScopeSet ScopeSet::from_string(std::string_view s) {
  ScopeSet set;
  while (!s.empty()) {
    size_t sp = s.find(' ');
    auto tok = s.substr(0, sp);
    if (auto sc = parse_scope(tok)) set.add(*sc);
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return set;
}

}  // namespace dvs::core
