#include "core/doc_cache.hpp"

#include <charconv>

namespace dvs::core {

namespace {
// Fields are separated by a byte no id, status or number contains.
constexpr char kSep = '\x1f';

void add_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}
}  // namespace

std::string doc_list_key(char kind, std::string_view org_id, const ListQuery& q) {
  std::string k;
  k.reserve(64 + org_id.size() + q.after_id.size() + q.status.size());
  k.push_back(kind);
  k.append(org_id);
  k.push_back(kSep);
  add_int(k, q.limit);
  k.push_back(kSep);
  if (q.after_created_at) {
    add_int(k, *q.after_created_at);
    k.push_back(kSep);
    k.append(q.after_id);
  }
  k.push_back(kSep);
  k.append(q.status);
  k.push_back(kSep);
  if (q.updated_since) add_int(k, *q.updated_since);
  return k;
}

std::string doc_key(char kind, std::string_view org_id, std::string_view id) {
  std::string k;
  k.reserve(2 + org_id.size() + id.size());
  k.push_back(kind);
  k.append(org_id);
  k.push_back(kSep);
  k.append(id);
  return k;
}

}  // namespace dvs::core
