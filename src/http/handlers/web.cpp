// The Settings portal's static files: web/index.html at "/", every other
// file of web/ at "/assets/NAME", with the security headers every page gets.

#include "http/errors.hpp"
#include "http/router.hpp"
#include "http/web_assets.hpp"

namespace dvs::http {

using core::Errc;
using core::make_error;

namespace {
std::string_view content_type_for(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json") || ends(".webmanifest")) return "application/json";
  return "application/octet-stream";
}

void security_headers(Response& r) {
  r.set("Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'");
  r.set("X-Frame-Options", "DENY");
  r.set("Referrer-Policy", "no-referrer");
  r.set("Cross-Origin-Opener-Policy", "same-origin");
  r.set("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
}
}  // namespace

Response Router::web(const Request& req, const Target& t, const std::string& rid) {
  if (req.method != "GET" && req.method != "HEAD") {
    auto r = error_response(make_error(Errc::method_not_allowed, "Use GET."), rid);
    r.set("Allow", "GET, HEAD");
    security_headers(r);
    return r;
  }
  std::string_view name = t.path == "/" ? std::string_view("index.html")
                                        : std::string_view(t.path).substr(8);  // "/assets/"
  for (const auto& a : web_assets()) {
    if (a.name != name || (t.path != "/" && name == "index.html")) continue;
    Response r;
    r.content_type = content_type_for(a.name);
    r.body = std::string(a.data);  // for HEAD too: the server sends only its length
    // Revalidate each time: assets change with the binary, and are small.
    r.set("Cache-Control", "no-cache");
    security_headers(r);
    return r;
  }
  auto r = error_response(
      make_error(Errc::not_found, "No such file: " + redact_secrets(t.path.substr(0, 200)) + "."),
      rid);
  security_headers(r);
  return r;
}

}  // namespace dvs::http
