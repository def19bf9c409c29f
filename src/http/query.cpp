#include "http/query.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "core/api_key.hpp"
#include "core/cursor.hpp"
#include "core/time.hpp"

namespace dvs::http {

using core::Errc;
using core::make_error;

namespace {
// RFC 3986 character classes, as a table a byte indexes. A path byte taken
// as it is: unreserved, sub-delims, ':', '@' and '/' (pchar but '%'). A query
// byte: those and '?'. ('%' is looked at on its own.)
struct CharClasses {
  bool path[256]{};
  bool query[256]{};
  constexpr CharClasses() {
    constexpr std::string_view others = "-._~!$&'()*+,;=:@/";
    for (int c = 0; c < 256; ++c) {
      const bool alnum =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      path[c] = alnum || others.find(static_cast<char>(c)) != std::string_view::npos;
      query[c] = path[c] || c == '?';
    }
  }
};
constexpr CharClasses kChars;

constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The common target, checked in one pass without Boost.URL's grammar: a path
// with nothing to decode, then a query whose every '%' starts a valid escape.
// False means "not this simple", not "malformed": Boost.URL then decides. So
// what is accepted here is a subset of what parse_origin_form accepts, with
// the same path and query (fuzz/query.cpp checks both against it).
bool parse_simple_target(std::string_view target, Target& t) {
  if (target.empty() || target[0] != '/') return false;
  size_t i = 0;
  const size_t n = target.size();
  while (i < n && target[i] != '?') {
    if (!kChars.path[static_cast<unsigned char>(target[i])]) return false;
    ++i;
  }
  const size_t path_end = i;
  if (i < n) {
    for (++i; i < n; ++i) {
      const char c = target[i];
      if (c == '%') {
        if (i + 2 >= n || hex_value(target[i + 1]) < 0 || hex_value(target[i + 2]) < 0)
          return false;
        i += 2;
      } else if (!kChars.query[static_cast<unsigned char>(c)]) {
        return false;
      }
    }
  }
  t.path.assign(target.substr(0, path_end));
  t.has_query = path_end < n;
  if (t.has_query) t.query.assign(target.substr(path_end + 1));
  return true;
}

// `s` percent-decoded, '+' as a space; as it is when there is nothing to
// decode (no copy), else in `buf`. `s` comes from a checked query, so every
// '%' starts a valid escape.
std::string_view decode_param(std::string_view s, std::string& buf) {
  if (s.find_first_of("%+") == std::string_view::npos) return s;
  buf.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+') {
      buf.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      buf.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      buf.push_back(c);
    }
  }
  return buf;
}

// Calls f(name, value) for each parameter, decoded, in order, until it
// returns an error. What the whole URL's params() gives: "?" alone is one
// parameter with an empty name, "a&" two, a name without '=' has the value "".
template <typename F>
core::Status each_param(const Target& t, F&& f) {
  if (!t.has_query) return {};
  std::string_view rest = t.query;
  std::string name_buf, value_buf;
  while (true) {
    const size_t amp = rest.find('&');
    const std::string_view piece = rest.substr(0, amp);
    const size_t eq = piece.find('=');
    const std::string_view name = decode_param(piece.substr(0, eq), name_buf);
    const std::string_view value = eq == std::string_view::npos
                                       ? std::string_view()
                                       : decode_param(piece.substr(eq + 1), value_buf);
    if (auto st = f(name, value); !st) return st;
    if (amp == std::string_view::npos) return {};
    rest.remove_prefix(amp + 1);
  }
}
}  // namespace

core::Result<Target> parse_target(std::string_view target) {
  Target t;
  if (parse_simple_target(target, t)) return t;
  auto u = boost::urls::parse_origin_form(target);
  if (!u) return make_error(Errc::invalid_request, "The request URL is malformed.");
  t.path = u->path();
  if (t.path.find('\0') != std::string::npos)
    return make_error(Errc::invalid_request, "The request URL is malformed.");
  t.has_query = u->has_query();
  if (t.has_query) t.query = u->encoded_query();
  return t;
}

std::vector<std::pair<std::string, std::string>> Target::params() const {
  std::vector<std::pair<std::string, std::string>> out;
  (void)each_param(*this, [&out](std::string_view name, std::string_view value) -> core::Status {
    out.emplace_back(name, value);
    return {};
  });
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
  auto dup = [](std::string_view name) {
    return make_error(Errc::invalid_request,
                      "The parameter " + std::string(name) + " was given more than once.",
                      std::string(name));
  };
  auto st = each_param(t, [&](std::string_view name, std::string_view value) -> core::Status {
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
    return {};
  });
  if (!st) return st.error();
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
