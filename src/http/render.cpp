#include "http/render.hpp"

namespace dvs::http {

namespace {
// Optional text: empty is absent, and absent is null.
void text_or_null(core::JsonWriter& w, const std::string& s) {
  if (s.empty()) w.null();
  else w.string(s);
}
}  // namespace

void render_lead(core::JsonWriter& w, const core::Lead& l) {
  w.begin_object();
  w.key("id").string(l.id);
  w.key("object").string("lead");
  w.key("name").string(l.name);
  w.key("email"); text_or_null(w, l.email);
  w.key("phone"); text_or_null(w, l.phone);
  w.key("company"); text_or_null(w, l.company);
  w.key("status").string(l.status);
  w.key("source"); text_or_null(w, l.source);
  w.key("value_cents").integer(l.value_cents);
  w.key("currency").string(l.currency);
  w.key("created_at").timestamp(l.created_at);
  w.key("updated_at").timestamp(l.updated_at);
  w.end_object();
}

void render_invoice(core::JsonWriter& w, const core::Invoice& v) {
  w.begin_object();
  w.key("id").string(v.id);
  w.key("object").string("invoice");
  w.key("number").string(v.number);
  w.key("customer_name").string(v.customer_name);
  w.key("customer_email"); text_or_null(w, v.customer_email);
  w.key("lead_id");
  if (v.lead_id) w.string(*v.lead_id);
  else w.null();
  w.key("status").string(v.status);
  w.key("currency").string(v.currency);
  w.key("subtotal_cents").integer(v.subtotal_cents);
  w.key("tax_cents").integer(v.tax_cents);
  w.key("total_cents").integer(v.total_cents);
  w.key("amount_paid_cents").integer(v.amount_paid_cents);
  w.key("issued_at").timestamp(v.issued_at);
  w.key("due_at").timestamp(v.due_at);
  w.key("paid_at").optional_timestamp(v.paid_at.has_value(), v.paid_at.value_or(0));
  w.key("line_items").raw(v.line_items_json);
  w.key("created_at").timestamp(v.created_at);
  w.key("updated_at").timestamp(v.updated_at);
  w.end_object();
}

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
