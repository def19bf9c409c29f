// Handlers of the public API v1 (contract section 3): parse, one store call,
// render. Authentication, rate limiting and scopes ran before (router.cpp).

#include "core/doc_cache.hpp"
#include "core/ids.hpp"
#include "core/json_writer.hpp"
#include "http/errors.hpp"
#include "http/render.hpp"
#include "http/router.hpp"

namespace dvs::http {

using core::Errc;
using core::make_error;

namespace {

// A list response: the store appends the page's stored documents between
// the envelope's head and tail (copied once, not re-encoded), or gives a
// cached page's whole body, which is sent as it is.
using ListFn = core::Status (store::Store::*)(std::string_view, const core::ListQuery&, core::DocPage&);

Response list_response(store::Store& store, ListFn list, std::string_view org_id,
                       const core::ListQuery& q, const std::string& rid) {
  core::DocPage page;
  page.take_whole = true;  // the store writes the head (core::DocPage)
  if (auto st = (store.*list)(org_id, q, page); !st) return error_response(st.error(), rid);
  Response r;
  if (page.whole) {
    r.shared_body = std::move(page.whole);
    return r;
  }
  core::append_list_tail(page.json, page.has_more, page.count, page.last_created_at, page.last_id);
  r.body = std::move(page.json);
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
  return list_response(store_, &store::Store::list_lead_docs, key.org_id, *q, rid);
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
  return list_response(store_, &store::Store::list_invoice_docs, key.org_id, *q, rid);
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
