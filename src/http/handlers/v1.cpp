// Handlers of the public API v1 (contract section 3): parse, one store call,
// render. Authentication, rate limiting and scopes ran before (router.cpp).

#include "core/cursor.hpp"
#include "core/ids.hpp"
#include "core/json_writer.hpp"
#include "http/errors.hpp"
#include "http/render.hpp"
#include "http/router.hpp"

namespace dvs::http {

using core::Errc;
using core::make_error;

namespace {

// A page of stored documents: the JSON is copied, not re-encoded.
Response list_response(const core::Page<core::Document>& page) {
  Response r;
  size_t size = 96;
  for (const auto& d : page.items) size += d.json.size() + 1;
  r.body.reserve(size);
  r.body.append(R"({"object":"list","data":[)");
  for (size_t i = 0; i < page.items.size(); ++i) {
    if (i) r.body.push_back(',');
    r.body.append(page.items[i].json);
  }
  r.body.append(R"(],"has_more":)");
  r.body.append(page.has_more ? "true" : "false");
  r.body.append(R"(,"next_cursor":)");
  if (page.has_more && !page.items.empty())
    core::append_json_string(
        r.body, core::encode_cursor({page.items.back().created_at, page.items.back().id}));
  else
    r.body.append("null");
  r.body.push_back('}');
  return r;
}

// The same body for "does not exist" and "belongs to another organization".
Response no_such(std::string_view what, std::string_view id, const std::string& rid) {
  std::string shown(id.substr(0, 100));
  return error_response(
      make_error(Errc::not_found, "No such " + std::string(what) + ": '" + redact_secrets(shown) + "'."),
      rid);
}

}  // namespace

Response Router::list_leads(const Target& t, const core::ApiKey& key, const std::string& rid) {
  auto q = parse_list_query(t, "lead", core::kLeadStatuses);
  if (!q) return error_response(q.error(), rid);
  auto page = store_.list_lead_docs(key.org_id, *q);
  if (!page) return error_response(page.error(), rid);
  return list_response(*page);
}

Response Router::get_lead(std::string_view id, const Target& t, const core::ApiKey& key,
                          const std::string& rid) {
  if (auto st = reject_params(t); !st) return error_response(st.error(), rid);
  // An id that cannot exist is answered without a look-up (same body).
  if (!core::is_valid_id(id, "lead")) return no_such("lead", id, rid);
  auto lead = store_.get_lead_doc(key.org_id, id);
  if (!lead) {
    if (lead.error().code == Errc::not_found) return no_such("lead", id, rid);
    return error_response(lead.error(), rid);
  }
  Response r;
  r.body = std::move(lead->json);
  return r;
}

Response Router::list_invoices(const Target& t, const core::ApiKey& key, const std::string& rid) {
  auto q = parse_list_query(t, "inv", core::kInvoiceStatuses);
  if (!q) return error_response(q.error(), rid);
  auto page = store_.list_invoice_docs(key.org_id, *q);
  if (!page) return error_response(page.error(), rid);
  return list_response(*page);
}

Response Router::get_invoice(std::string_view id, const Target& t, const core::ApiKey& key,
                             const std::string& rid) {
  if (auto st = reject_params(t); !st) return error_response(st.error(), rid);
  if (!core::is_valid_id(id, "inv")) return no_such("invoice", id, rid);
  auto inv = store_.get_invoice_doc(key.org_id, id);
  if (!inv) {
    if (inv.error().code == Errc::not_found) return no_such("invoice", id, rid);
    return error_response(inv.error(), rid);
  }
  Response r;
  r.body = std::move(inv->json);
  return r;
}

Response Router::get_key(const Target& t, const core::ApiKey& key, const std::string& rid) {
  if (auto st = reject_params(t); !st) return error_response(st.error(), rid);
  // The authentication look-up skips the creator's e-mail; read it here.
  auto full = store_.get_key(key.org_id, key.id);
  if (!full) return error_response(full.error(), rid);
  Response r;
  core::JsonWriter w(r.body);
  // The api_key object plus the organization; rendered then extended so the
  // shape stays the one section 4 defines.
  render_api_key(w, *full, clock_.now_s());
  r.body.pop_back();
  r.body += ",\"org_id\":";
  core::append_json_string(r.body, key.org_id);
  r.body.push_back('}');
  return r;
}

}  // namespace dvs::http
