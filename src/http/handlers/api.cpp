// The management API (contract section 6): the Settings portal's back end.
// Middleware order for /api: route (404/405) -> for state-changing methods,
// Content-Type must be JSON (415) and Origin, when sent, same-origin (403) ->
// session (401) -> role (403) -> handler. Every response is no-store.

#include <boost/json.hpp>

#include "core/api_key.hpp"
#include "core/cursor.hpp"
#include "core/ids.hpp"
#include "core/json_writer.hpp"
#include "core/time.hpp"
#include "http/errors.hpp"
#include "http/render.hpp"
#include "http/router.hpp"

namespace dvs::http {

using core::Errc;
using core::make_error;
namespace json = boost::json;

namespace {

bool is_json_content_type(std::string_view ct) {
  auto semi = ct.find(';');
  auto media = ct.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (size_t i = 0; i < kJson.size(); ++i) {
    char c = media[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kJson[i]) return false;
  }
  return true;
}

// Same-origin when Origin is http(s):// + the Host the request was sent to.
bool same_origin(std::string_view origin, std::string_view host) {
  if (host.empty()) return false;
  for (std::string_view scheme : {"http://", "https://"})
    if (origin.size() == scheme.size() + host.size() && origin.starts_with(scheme) &&
        origin.substr(scheme.size()) == host)
      return true;
  return false;
}

// Parses a JSON object body; an empty body is an empty object. Only the
// names in `allowed` may appear (a misspelt field is an error, not ignored).
core::Result<json::object> parse_body(std::string_view body,
                                      std::initializer_list<std::string_view> allowed) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::object{};
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return make_error(Errc::invalid_request, "The request body is not valid JSON.");
  if (!v.is_object())
    return make_error(Errc::invalid_request, "The request body must be a JSON object.");
  for (const auto& kv : v.as_object()) {
    std::string_view k = kv.key();
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string name = core::redact_keys(k.substr(0, 512)).substr(0, 40);
      return make_error(Errc::invalid_request, "Received unknown parameter: " + name + ".", name);
    }
  }
  return std::move(v.as_object());
}

// True when `method` is one of the comma-separated names in `allow`.
bool method_in(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    size_t comma = allow.find(',');
    if (allow.substr(0, comma) == method) return true;
    if (comma == std::string_view::npos) break;
    allow.remove_prefix(comma + 1);
    while (!allow.empty() && allow.front() == ' ') allow.remove_prefix(1);
  }
  return false;
}

void render_user_session(core::JsonWriter& w, const service::SessionContext& s) {
  w.begin_object();
  w.key("user").begin_object().key("id").string(s.user.id).key("email").string(s.user.email);
  w.key("role").string(core::role_name(s.user.role)).end_object();
  w.key("organization").begin_object().key("id").string(s.org.id);
  w.key("name").string(s.org.name).end_object();
  w.end_object();
}

Response forbidden(const std::string& rid) {
  return error_response(
      make_error(Errc::forbidden, "Only the organization's CEO or an admin can manage API keys."),
      rid);
}

}  // namespace

Response Router::handle_api(const Request& req, const Target& t, const std::string& rid) {
  Response res = [&]() -> Response {
    std::string_view path = t.path;
    enum class R { none, session, keys, rotate, revoke, requests, usage, audit } route = R::none;
    std::string_view id;
    const char* allow = "GET";
    if (path == "/api/session") {
      route = R::session;
      allow = "GET, POST, DELETE";
    } else if (path == "/api/keys") {
      route = R::keys;
      allow = "GET, POST";
    } else if (path == "/api/audit-events") {
      route = R::audit;
    } else if (path.starts_with("/api/keys/")) {
      auto rest = path.substr(10);
      auto slash = rest.find('/');
      if (slash != std::string_view::npos && slash > 0) {
        id = rest.substr(0, slash);
        auto action = rest.substr(slash + 1);
        if (action == "rotate") route = R::rotate, allow = "POST";
        else if (action == "revoke") route = R::revoke, allow = "POST";
        else if (action == "requests") route = R::requests;
        else if (action == "usage") route = R::usage;
      }
    }
    if (route == R::none)
      return error_response(make_error(Errc::not_found, "Unrecognized request URL (" +
                                                            std::string(req.method.substr(0, 16)) +
                                                            " " + redact_secrets(path) + ")."),
                            rid);
    if (!method_in(allow, req.method)) {
      auto r = error_response(make_error(Errc::method_not_allowed,
                                         "Method " + std::string(req.method.substr(0, 16)) +
                                             " is not allowed here."),
                              rid);
      r.set("Allow", allow);
      return r;
    }
    const bool changes_state = req.method != "GET";
    if (changes_state) {
      if (!is_json_content_type(req.content_type))
        return error_response(make_error(Errc::unsupported_media_type,
                                         "Send the request body as application/json."),
                              rid);
      if (!req.origin.empty() && !same_origin(req.origin, req.host))
        return error_response(
            make_error(Errc::forbidden, "Cross-origin requests are not allowed."), rid);
    }
    if (route == R::session) return api_session(req, rid);

    auto session = sessions_.authenticate(req.cookie);
    if (!session) return error_response(session.error(), rid);
    if (session->user.role == core::Role::member) return forbidden(rid);
    if (!id.empty() && !core::is_valid_id(id, "key"))
      return error_response(
          make_error(Errc::not_found,
                     "No such key: '" + core::to_valid_utf8(redact_secrets(id.substr(0, 100))) + "'."),
          rid);
    switch (route) {
      case R::keys:
        return req.method == "GET" ? api_list_keys(*session, rid)
                                   : api_create_key(req, *session, rid);
      case R::rotate: return api_rotate_key(req, *session, id, rid);
      case R::revoke: return api_revoke_key(*session, id, req, rid);
      case R::requests: return api_key_requests(t, *session, id, rid);
      case R::usage: return api_key_usage(*session, id, rid);
      case R::audit: return api_audit(t, *session, rid);
      default: break;
    }
    return error_response(make_error(Errc::not_found, "Not found."), rid);
  }();
  res.set("Cache-Control", "no-store");
  return res;
}

Response Router::api_session(const Request& req, const std::string& rid) {
  if (req.method == "GET") {
    auto s = sessions_.authenticate(req.cookie);
    if (!s) return error_response(s.error(), rid);
    Response r;
    core::JsonWriter w(r.body);
    render_user_session(w, *s);
    return r;
  }
  if (req.method == "DELETE") {
    if (auto st = sessions_.sign_out(req.cookie); !st) return error_response(st.error(), rid);
    Response r;
    r.status = 204;
    r.set("Set-Cookie", std::string(service::kSessionCookie) +
                            "=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict" +
                            (opts_.secure_cookies ? "; Secure" : ""));
    return r;
  }
  auto body = parse_body(req.body, {"email", "password"});
  if (!body) return error_response(body.error(), rid);
  auto str = [&](const char* name) -> const json::string* {
    auto it = body->find(name);
    if (it == body->end() || !it->value().is_string()) return nullptr;
    return &it->value().as_string();
  };
  const json::string* email = str("email");
  const json::string* password = str("password");
  if (!email || email->empty())
    return error_response(make_error(Errc::invalid_request, "Enter your email.", "email"), rid);
  if (!password || password->empty() || password->size() > 1024)
    return error_response(make_error(Errc::invalid_request, "Enter your password.", "password"),
                          rid);
  auto signed_in = sessions_.sign_in(*email, *password, req.client_ip, req.user_agent);
  if (!signed_in) return error_response(signed_in.error(), rid);
  Response r;
  core::JsonWriter w(r.body);
  render_user_session(w, signed_in->ctx);
  r.set("Set-Cookie", std::string(service::kSessionCookie) + "=" + signed_in->token +
                          "; Max-Age=" + std::to_string(sessions_.options().absolute_timeout_s) +
                          "; Path=/; HttpOnly; SameSite=Strict" +
                          (opts_.secure_cookies ? "; Secure" : ""));
  return r;
}

Response Router::api_list_keys(const service::SessionContext& s, const std::string& rid) {
  (void)keys_.record_expirations(s.org.id);
  auto keys = store_.list_keys(s.org.id);
  if (!keys) return error_response(keys.error(), rid);
  Response r;
  core::JsonWriter w(r.body);
  const int64_t now = clock_.now_s();
  w.begin_object().key("object").string("list").key("data").begin_array();
  for (const auto& k : *keys) render_api_key(w, k, now);
  w.end_array().key("has_more").boolean(false).end_object();
  return r;
}

Response Router::api_create_key(const Request& req, const service::SessionContext& s,
                                const std::string& rid) {
  auto body = parse_body(req.body, {"name", "scopes", "expires_at", "rate_limit_per_minute"});
  if (!body) return error_response(body.error(), rid);
  service::NewKeyRequest nk;
  nk.org_id = s.org.id;
  nk.created_by = s.user.id;
  nk.ip = std::string(req.client_ip);
  auto bad = [&](const char* param, const char* msg) {
    return error_response(make_error(Errc::invalid_request, msg, param), rid);
  };
  if (auto it = body->find("name"); it != body->end()) {
    if (!it->value().is_string()) return bad("name", "name must be a string.");
    nk.name = std::string(it->value().as_string());
  }
  if (auto it = body->find("scopes"); it != body->end()) {
    if (!it->value().is_array()) return bad("scopes", "scopes must be an array of scope names.");
    for (const auto& v : it->value().as_array()) {
      if (!v.is_string()) return bad("scopes", "scopes must be an array of scope names.");
      nk.scopes.emplace_back(v.as_string());
    }
  }
  if (auto it = body->find("expires_at"); it != body->end() && !it->value().is_null()) {
    if (!it->value().is_string())
      return bad("expires_at", "expires_at must be an RFC 3339 timestamp or null.");
    auto t = core::parse_rfc3339(it->value().as_string());
    if (!t) return bad("expires_at", "expires_at must be an RFC 3339 timestamp or null.");
    nk.expires_at = *t;
  }
  if (auto it = body->find("rate_limit_per_minute");
      it != body->end() && !it->value().is_null()) {
    const auto& v = it->value();
    if (v.is_int64()) nk.rate_limit_per_minute = v.as_int64();
    else if (v.is_uint64()) nk.rate_limit_per_minute = static_cast<int64_t>(std::min<uint64_t>(v.as_uint64(), INT64_MAX));
    else return bad("rate_limit_per_minute", "rate_limit_per_minute must be an integer from 1 to 100000.");
  }
  if (nk.name.empty()) return bad("name", "name must be 1 to 100 characters.");
  auto issued = keys_.create(nk);
  if (!issued) return error_response(issued.error(), rid);
  Response r;
  r.status = 201;
  core::JsonWriter w(r.body);
  w.begin_object().key("key");
  render_api_key(w, issued->key, clock_.now_s());
  w.key("secret").string(issued->secret).end_object();
  return r;
}

Response Router::api_rotate_key(const Request& req, const service::SessionContext& s,
                                std::string_view id, const std::string& rid) {
  auto body = parse_body(req.body, {"expire_old_in_seconds"});
  if (!body) return error_response(body.error(), rid);
  int64_t grace = 0;
  if (auto it = body->find("expire_old_in_seconds");
      it != body->end() && !it->value().is_null()) {
    if (!it->value().is_int64() || it->value().as_int64() < 0 ||
        it->value().as_int64() > service::kMaxRotationGraceSeconds)
      return error_response(make_error(Errc::invalid_request,
                                       "expire_old_in_seconds must be an integer from 0 to 604800.",
                                       "expire_old_in_seconds"),
                            rid);
    grace = it->value().as_int64();
  }
  auto rotated = keys_.rotate(s.org.id, id, grace, s.user.id, std::string(req.client_ip));
  if (!rotated) {
    if (rotated.error().code == Errc::not_found)
      return error_response(
          make_error(Errc::not_found, "No such active key: '" + redact_secrets(id.substr(0, 100)) + "'."),
          rid);
    return error_response(rotated.error(), rid);
  }
  Response r;
  r.status = 201;
  core::JsonWriter w(r.body);
  const int64_t now = clock_.now_s();
  w.begin_object().key("key");
  render_api_key(w, rotated->key, now);
  w.key("secret").string(rotated->secret);
  w.key("replaced");
  render_api_key(w, rotated->replaced, now);
  w.end_object();
  return r;
}

Response Router::api_revoke_key(const service::SessionContext& s, std::string_view id,
                                const Request& req, const std::string& rid) {
  auto body = parse_body(req.body, {});
  if (!body) return error_response(body.error(), rid);
  auto k = keys_.revoke(s.org.id, id, s.user.id, std::string(req.client_ip));
  if (!k) {
    if (k.error().code == Errc::not_found)
      return error_response(
          make_error(Errc::not_found, "No such key: '" + redact_secrets(id.substr(0, 100)) + "'."),
          rid);
    return error_response(k.error(), rid);
  }
  Response r;
  core::JsonWriter w(r.body);
  w.begin_object().key("key");
  render_api_key(w, *k, clock_.now_s());
  w.end_object();
  return r;
}

Response Router::api_key_requests(const Target& t, const service::SessionContext& s,
                                  std::string_view id, const std::string& rid) {
  auto key = store_.get_key(s.org.id, id);
  if (!key)
    return error_response(
        key.error().code == Errc::not_found
            ? make_error(Errc::not_found, "No such key: '" + redact_secrets(id.substr(0, 100)) + "'.")
            : key.error(),
        rid);
  auto q = parse_list_query(t, "req", {}, false);
  if (!q) return error_response(q.error(), rid);
  auto page = store_.list_requests(s.org.id, key->id, *q);
  if (!page) return error_response(page.error(), rid);
  Response r;
  core::JsonWriter w(r.body);
  w.begin_object().key("object").string("list").key("data").begin_array();
  for (const auto& e : page->items) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3f", static_cast<double>(e.latency_us) / 1000.0);
    w.begin_object().key("id").string(e.request_id).key("object").string("request");
    w.key("method").string(e.method).key("path").string(e.path).key("status").integer(e.status);
    w.key("latency_ms").raw(ms).key("client_ip").string(e.client_ip);
    w.key("user_agent").string(e.user_agent).key("created_at").timestamp(e.created_at);
    w.end_object();
  }
  w.end_array().key("has_more").boolean(page->has_more).key("next_cursor");
  if (page->has_more && !page->items.empty())
    w.string(core::encode_cursor({page->items.back().created_at, page->items.back().request_id}));
  else
    w.null();
  w.end_object();
  return r;
}

Response Router::api_key_usage(const service::SessionContext& s, std::string_view id,
                               const std::string& rid) {
  auto key = store_.get_key(s.org.id, id);
  if (!key)
    return error_response(
        key.error().code == Errc::not_found
            ? make_error(Errc::not_found, "No such key: '" + redact_secrets(id.substr(0, 100)) + "'.")
            : key.error(),
        rid);
  const int64_t hour = clock_.now_s() / 3600 * 3600;
  const int64_t start = hour - 23 * 3600;
  auto counts = store_.hourly_counts(s.org.id, key->id, start);
  if (!counts) return error_response(counts.error(), rid);
  Response r;
  core::JsonWriter w(r.body);
  w.begin_object().key("object").string("usage").key("interval").string("hour");
  w.key("data").begin_array();
  size_t i = 0;
  for (int64_t h = start; h <= hour; h += 3600) {
    int64_t n = 0;
    while (i < counts->size() && (*counts)[i].first < h) ++i;
    if (i < counts->size() && (*counts)[i].first == h) n = (*counts)[i].second;
    w.begin_object().key("start").timestamp(h).key("count").integer(n).end_object();
  }
  w.end_array().end_object();
  return r;
}

Response Router::api_audit(const Target& t, const service::SessionContext& s,
                           const std::string& rid) {
  (void)keys_.record_expirations(s.org.id);
  auto q = parse_list_query(t, "evt", {}, false);
  if (!q) return error_response(q.error(), rid);
  auto page = store_.list_audit(s.org.id, *q);
  if (!page) return error_response(page.error(), rid);
  Response r;
  core::JsonWriter w(r.body);
  w.begin_object().key("object").string("list").key("data").begin_array();
  for (const auto& e : page->items) {
    w.begin_object().key("id").string(e.id).key("object").string("audit_event");
    w.key("type").string(e.type).key("actor");
    if (e.actor_user_id) {
      w.begin_object().key("id").string(*e.actor_user_id).key("email");
      if (e.actor_email) w.string(*e.actor_email);
      else w.null();
      w.end_object();
    } else {
      w.null();
    }
    w.key("key_id").string(e.key_id).key("key_name").string(e.key_name);
    w.key("ip");
    if (e.ip.empty()) w.null();
    else w.string(e.ip);
    w.key("created_at").timestamp(e.created_at).end_object();
  }
  w.end_array().key("has_more").boolean(page->has_more).key("next_cursor");
  if (page->has_more && !page->items.empty())
    w.string(core::encode_cursor({page->items.back().created_at, page->items.back().id}));
  else
    w.null();
  w.end_object();
  return r;
}

}  // namespace dvs::http
