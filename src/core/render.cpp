#include "core/render.hpp"

#include "core/json_writer.hpp"

namespace dvs::core {

namespace {
// Optional text: empty is absent, and absent is null.
void text_or_null(JsonWriter& w, const std::string& s) {
  if (s.empty()) w.null();
  else w.string(s);
}
}  // namespace

std::string lead_json(const Lead& l) {
  std::string out;
  out.reserve(320);
  JsonWriter w(out);
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
  return out;
}

std::string invoice_json(const Invoice& v) {
  std::string out;
  out.reserve(640);
  JsonWriter w(out);
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
  return out;
}

}  // namespace dvs::core
