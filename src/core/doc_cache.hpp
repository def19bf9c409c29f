#pragma once
// An in-process cache of the documents /v1 serves (a list page, one lead or
// invoice), at the *document epoch*: a counter the database raises in the
// same transaction as every change to a lead or an invoice (SQLite migration
// 8). The rules are those of core/epoch_cache.hpp: the store reads the epoch
// first, then the cache, and a change committed before the request's
// snapshot means a miss and a read. So a cached answer is exactly what the
// database would have answered.
//
// Keys are the organization and the whole normalized query (kind, limit,
// cursor position, filters), so no answer is ever served to another
// organization or another query. Bounded in bytes.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/epoch_cache.hpp"
#include "core/models.hpp"

namespace dvs::core {

// A list answer on the wire (contract section 3): kListHead, the documents
// joined by commas, then the tail append_list_tail writes.
inline constexpr std::string_view kListHead = R"({"object":"list","data":[)";
// `has_more`, and `next_cursor` from the last document when there is more.
void append_list_tail(std::string& out, bool has_more, int count, int64_t last_created_at,
                      std::string_view last_id);

// One answer: for one object, its document; for a list page, the whole
// response body (the documents inside the envelope, the cursor encoded), so
// that a hit is sent as it is: no copy, no cursor to encode again
// (docs/performance.md, change 34). Also what the caller needs for the
// envelope and the cursor.
struct CachedDocs {
  std::string json;
  size_t docs_at = 0;  // the documents, joined by commas, inside `json`
  size_t docs_len = std::string::npos;
  bool whole_list = false;  // `json` is a list page's whole response body
  int count = 0;
  bool has_more = false;
  int64_t last_created_at = 0;
  std::string last_id;

  std::string_view docs() const { return std::string_view(json).substr(docs_at, docs_len); }
};

struct CachedDocsBytes {
  size_t operator()(const std::shared_ptr<const CachedDocs>& d) const noexcept {
    constexpr size_t kOverhead = 160;  // the entry, its key and the map's node
    return kOverhead + d->json.size() + d->last_id.size();
  }
};

using DocCache = EpochCache<std::string, std::shared_ptr<const CachedDocs>, std::hash<std::string>,
                            CachedDocsBytes>;

// The cache key of a list page: `kind` ('L' leads, 'I' invoices), the
// organization and every field of the query.
std::string doc_list_key(char kind, std::string_view org_id, const ListQuery& q);
// The same key written into `out` (its old contents dropped, its room kept).
void doc_list_key(std::string& out, char kind, std::string_view org_id, const ListQuery& q);
// The cache key of one object: `kind` ('l' a lead, 'i' an invoice).
std::string doc_key(char kind, std::string_view org_id, std::string_view id);
void doc_key(std::string& out, char kind, std::string_view org_id, std::string_view id);

// Gives a cached list answer to `page` as the store's own read would have:
// appended, or, when the caller takes whole answers and `page` is still
// empty, as `page.whole` (nothing appended, `last_id` not set: the body
// holds the next cursor).
void give_cached(const std::shared_ptr<const CachedDocs>& d, DocPage& page);

// What the store's read appended to `page` since it held `from` bytes and
// `count_before` documents, as a cache entry.
std::shared_ptr<const CachedDocs> cached_page(const DocPage& page, size_t from, int count_before);

// One object as a cache entry, and back.
std::shared_ptr<const CachedDocs> cached_doc(const Document& doc);
Document cached_to_doc(const CachedDocs& d);

}  // namespace dvs::core
