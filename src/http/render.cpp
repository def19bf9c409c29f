#include "http/render.hpp"

namespace dvs::http {

void render_api_key(core::JsonWriter& w, const core::ApiKey& k, int64_t now) {
  w.begin_object();
  w.key("id").string(k.id);
  w.key("object").string("api_key");
  w.key("name").string(k.name);
  w.key("hint").string(k.hint);
  w.key("scopes").begin_array();
  for (auto s : k.scopes.names()) w.string(s);
  w.end_array();
  w.key("status").string(core::key_status_name(k.status(now)));
  w.key("rate_limit_per_minute").integer(k.rate_limit_per_minute);
  w.key("created_at").timestamp(k.created_at);
  w.key("created_by");
  if (k.created_by_id) {
    w.begin_object().key("id").string(*k.created_by_id).key("email");
    if (k.created_by_email) w.string(*k.created_by_email);
    else w.null();
    w.end_object();
  } else {
    w.null();
  }
  w.key("expires_at").optional_timestamp(k.expires_at.has_value(), k.expires_at.value_or(0));
  w.key("last_used_at")
      .optional_timestamp(k.last_used_at.has_value(), k.last_used_at.value_or(0));
  w.key("revoked_at")
      .optional_timestamp(k.revoked_at.has_value() && *k.revoked_at <= now,
                          k.revoked_at.value_or(0));
  w.end_object();
}

}  // namespace dvs::http
