// The JSON bodies of /api, through Router::handle with a real SqliteStore and
// a signed-in CEO's session. The first byte picks the endpoint:
//   0 POST /api/keys   1 POST /api/keys/{id}/rotate   2 POST /api/session
//   3 POST /api/keys/{id}/revoke
// and the rest is the body. Every response must pass check_response.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_env.hpp"

using namespace dvs;

namespace {
// An active key for rotate/revoke to act on; replaced once it is used up, so
// the database does not grow by a key per input.
std::string victim_key(fuzz::Env& env) {
  static std::string id;
  if (!id.empty()) {
    auto k = env.store().get_key(env.org_id(), id);
    if (k && k->status(env.clock().now_s()) == core::KeyStatus::active && !k->replaced_by)
      return id;
    // Rotated with a grace period, it stays active on the fixed clock: revoke
    // it, or active keys pile up to the organization's limit of 100.
    (void)env.store().revoke_key(env.org_id(), id, env.clock().now_s());
  }
  service::NewKeyRequest nk;
  nk.org_id = env.org_id();
  nk.name = "Victim";
  nk.scopes = {"leads:read"};
  nk.created_by = env.ceo_id();
  auto issued = env.keys().create(nk);
  fuzz::require(issued.ok(), "cannot create the victim key");
  id = issued->key.id;
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  fuzz::Env& env = fuzz::Env::get();
  const std::string cookie = env.session_cookie();
  std::string target;
  http::Request req;
  req.method = "POST";
  req.content_type = "application/json";
  req.host = fuzz::kHost;
  req.origin = "http://127.0.0.1:8080";
  req.cookie = cookie;
  req.user_agent = "libFuzzer";
  req.body = std::string_view(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0:
      target = "/api/keys";
      break;
    case 1:
      target = "/api/keys/" + victim_key(env) + "/rotate";
      break;
    case 2:
      target = "/api/session";
      req.cookie = {};
      break;
    default:
      target = "/api/keys/" + victim_key(env) + "/revoke";
      break;
  }
  req.target = target;
  (void)env.handle(req);  // checks the response; revokes any key it issued
  return 0;
}
