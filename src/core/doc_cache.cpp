#include "core/doc_cache.hpp"

#include <algorithm>

#include "core/cursor.hpp"
#include "core/json_writer.hpp"

namespace dvs::core {

namespace {
// Fields are separated by a byte no id, status or number contains.
constexpr char kSep = '\x1f';
}  // namespace

std::string doc_list_key(char kind, std::string_view org_id, const ListQuery& q) {
  std::string k;
  doc_list_key(k, kind, org_id, q);
  return k;
}

void doc_list_key(std::string& k, char kind, std::string_view org_id, const ListQuery& q) {
  k.clear();
  k.reserve(64 + org_id.size() + q.after_id.size() + q.status.size());
  k.push_back(kind);
  k.append(org_id);
  k.push_back(kSep);
  append_int(k, q.limit);
  k.push_back(kSep);
  if (q.after_created_at) {
    append_int(k, *q.after_created_at);
    k.push_back(kSep);
    k.append(q.after_id);
  }
  k.push_back(kSep);
  k.append(q.status);
  k.push_back(kSep);
  if (q.updated_since) append_int(k, *q.updated_since);
}

std::string doc_key(char kind, std::string_view org_id, std::string_view id) {
  std::string k;
  doc_key(k, kind, org_id, id);
  return k;
}

void doc_key(std::string& k, char kind, std::string_view org_id, std::string_view id) {
  k.clear();
  k.reserve(2 + org_id.size() + id.size());
  k.push_back(kind);
  k.append(org_id);
  k.push_back(kSep);
  k.append(id);
}

void append_list_tail(std::string& out, bool has_more, int count, int64_t last_created_at,
                      std::string_view last_id) {
  out.append(R"(],"has_more":)");
  out.append(has_more ? "true" : "false");
  out.append(R"(,"next_cursor":)");
  if (has_more && count > 0)
    append_json_string(out, encode_cursor({last_created_at, std::string(last_id)}));
  else
    out.append("null");
  out.push_back('}');
}

void give_cached(const std::shared_ptr<const CachedDocs>& d, DocPage& page) {
  page.count += d->count;
  page.has_more = d->has_more;
  page.last_created_at = d->last_created_at;
  if (d->whole_list && page.take_whole && page.json.empty()) {
    // The next cursor is in the body already: last_id is not needed.
    page.whole = std::shared_ptr<const std::string>(d, &d->json);
    return;
  }
  if (page.take_whole && page.json.empty()) page.json.append(kListHead);
  if (d->count > 0 && page.count > d->count) page.json.push_back(',');
  page.json.append(d->docs());
  page.last_id = d->last_id;
}

std::shared_ptr<const CachedDocs> cached_page(const DocPage& page, size_t from, int count_before) {
  auto d = std::make_shared<CachedDocs>();
  // Without the comma the read put before its first document here.
  const size_t skip = (count_before > 0 && page.count > count_before) ? 1 : 0;
  const std::string_view docs =
      std::string_view(page.json).substr(std::min(page.json.size(), from + skip));
  d->count = page.count - count_before;
  d->has_more = page.has_more;
  d->last_created_at = page.last_created_at;
  d->last_id = page.last_id;
  // The whole answer around the documents, as the handler would send it.
  d->json.reserve(kListHead.size() + docs.size() + 128);
  d->json.append(kListHead);
  d->docs_at = d->json.size();
  d->json.append(docs);
  d->docs_len = docs.size();
  append_list_tail(d->json, d->has_more, d->count, d->last_created_at, d->last_id);
  d->whole_list = true;
  return d;
}

std::shared_ptr<const CachedDocs> cached_doc(const Document& doc) {
  auto d = std::make_shared<CachedDocs>();
  d->json = doc.json;
  d->count = 1;
  d->last_created_at = doc.created_at;
  d->last_id = doc.id;
  return d;
}

Document cached_to_doc(const CachedDocs& d) {
  return Document{d.last_id, d.last_created_at, std::string(d.docs())};
}

}  // namespace dvs::core
