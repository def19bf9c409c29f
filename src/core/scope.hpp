#pragma once
// API key scopes. A key holds a set of them; each /v1 route requires at most one.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dvs::core {

enum class Scope : uint32_t {
  leads_read = 1u << 0,
  invoices_read = 1u << 1,
};

// A set of scopes as a bit mask. Trivially copyable; thread-compatible.
class ScopeSet {
 public:
  ScopeSet() = default;
  explicit ScopeSet(uint32_t bits) : bits_(bits) {}
  void add(Scope s) { bits_ |= static_cast<uint32_t>(s); }
  bool has(Scope s) const { return (bits_ & static_cast<uint32_t>(s)) != 0; }
  bool empty() const { return bits_ == 0; }
  uint32_t bits() const { return bits_; }
  // Names in a fixed order ("leads:read", "invoices:read").
  std::vector<std::string_view> names() const;
  // Space-separated names, the stored form.
  std::string to_string() const;
  // Parses the stored form. Unknown names are ignored (they cannot be stored).
  static ScopeSet from_string(std::string_view s);
  bool operator==(const ScopeSet&) const = default;

 private:
  uint32_t bits_ = 0;
};

// Returns the scope named `name`, or nullopt for an unknown name.
std::optional<Scope> parse_scope(std::string_view name);
std::string_view scope_name(Scope s);
// Every known scope, in display order.
const std::vector<Scope>& all_scopes();

}  // namespace dvs::core
