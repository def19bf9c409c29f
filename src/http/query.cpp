#include "http/query.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/url_view.hpp>

#include "core/api_key.hpp"
#include "core/cursor.hpp"
#include "core/time.hpp"

namespace dvs::http {

using core::Errc;
using core::make_error;

core::Result<Target> parse_target(std::string_view target) {
  auto u = boost::urls::parse_origin_form(target);
  if (!u) return make_error(Errc::invalid_request, "The request URL is malformed.");
  Target t;
  t.path = u->path();
  if (t.path.find('\0') != std::string::npos)
    return make_error(Errc::invalid_request, "The request URL is malformed.");
  t.has_query = u->has_query();
  if (t.has_query) t.query = u->encoded_query();
  return t;
}

std::vector<std::pair<std::string, std::string>> Target::params() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!has_query) return out;
  // What the whole URL's params() gives: "?" alone is one parameter with an
  // empty name, and '+' is a space.
  if (query.empty()) {
    out.emplace_back();
    return out;
  }
  // The same grammar parse_target checked, so it cannot fail here.
  auto ps = boost::urls::parse_query(query);
  if (!ps) return out;
  const boost::urls::encoding_opts plus_is_space(true, false, false);
  for (auto p : *ps)
    out.emplace_back(p.key.decode(plus_is_space),
                     p.has_value ? p.value.decode(plus_is_space) : std::string());
  return out;
}

namespace {
bool parse_small_int(std::string_view s, int& out) {
  if (s.empty() || s.size() > 6) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

// A parameter name safe to echo: keys redacted, then at most 40 bytes.
std::string truncate_for_message(std::string_view s) {
  std::string out = core::redact_keys(s.substr(0, 512)).substr(0, 40);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return out;
}
}  // namespace

core::Result<core::ListQuery> parse_list_query(const Target& t, std::string_view id_prefix,
                                               std::span<const std::string_view> statuses,
                                               bool filters) {
  core::ListQuery q;
  bool seen_limit = false, seen_cursor = false, seen_status = false, seen_since = false;
  auto dup = [](const std::string& name) {
    return make_error(Errc::invalid_request, "The parameter " + name + " was given more than once.",
                      name);
  };
  for (const auto& [name, value] : t.params()) {
    if (name == "limit") {
      if (seen_limit) return dup(name);
      seen_limit = true;
      if (!parse_small_int(value, q.limit) || q.limit < 1 || q.limit > 100)
        return make_error(Errc::invalid_request, "limit must be an integer from 1 to 100.",
                          "limit");
    } else if (name == "cursor") {
      if (seen_cursor) return dup(name);
      seen_cursor = true;
      auto pos = core::decode_cursor(value, id_prefix);
      if (!pos)
        return make_error(Errc::invalid_request,
                          "cursor is not valid; pass the next_cursor of a previous page.",
                          "cursor");
      q.after_created_at = pos->created_at;
      q.after_id = std::move(pos->id);
    } else if (name == "status" && filters) {
      if (seen_status) return dup(name);
      seen_status = true;
      bool known = false;
      for (auto s : statuses) known = known || s == value;
      if (!known) {
        std::string list;
        for (auto s : statuses) list += (list.empty() ? "" : ", ") + std::string(s);
        return make_error(Errc::invalid_request, "status must be one of: " + list + ".",
                          "status");
      }
      q.status = value;
    } else if (name == "updated_since" && filters) {
      if (seen_since) return dup(name);
      seen_since = true;
      q.updated_since = core::parse_rfc3339(value);
      if (!q.updated_since)
        return make_error(Errc::invalid_request,
                          "updated_since must be an RFC 3339 timestamp such as "
                          "2026-11-29T12:00:00Z.",
                          "updated_since");
    } else {
      return make_error(Errc::invalid_request,
                        "Received unknown parameter: " + truncate_for_message(name) + ".",
                        truncate_for_message(name));
    }
  }
  return q;
}

core::Status reject_params(const Target& t) {
  if (!t.has_query) return {};
  const auto params = t.params();
  if (params.empty()) return {};
  const auto& name = params.front().first;
  return make_error(Errc::invalid_request,
                    "Received unknown parameter: " + truncate_for_message(name) + ".",
                    truncate_for_message(name));
}

}  // namespace dvs::http
