#pragma once
// From Beast's request to the router's Request: the one place
// the server (server.cpp) does it, shared with the fuzz harness
// (fuzz/http_request.cpp) so that it fuzzes exactly what the server runs.
// Beast stays in the HTTP layer: only those two include this header.

#include <boost/beast/http.hpp>
#include <memory_resource>
#include <tuple>
#include <utility>

#include "http/types.hpp"

namespace dvs::http {

// A request's method, target and header fields are kept in an arena of the
// connection's (a std::pmr::monotonic_buffer_resource over a buffer in its
// frame, released before each request), not one allocation each.
using FieldsAllocator = std::pmr::polymorphic_allocator<char>;
using BeastRequest = boost::beast::http::request<boost::beast::http::string_body,
                                                 boost::beast::http::basic_fields<FieldsAllocator>>;

// Beast's request parser, its fields allocated from `arena`.
class RequestParser
    : public boost::beast::http::request_parser<boost::beast::http::string_body, FieldsAllocator> {
 public:
  explicit RequestParser(std::pmr::memory_resource* arena)
      : boost::beast::http::request_parser<boost::beast::http::string_body, FieldsAllocator>(
            std::piecewise_construct, std::make_tuple(), std::make_tuple(FieldsAllocator(arena))) {}
};

// Views into `req`, which must outlive the result. client_ip and start_us are
// the caller's.
inline Request view_request(const BeastRequest& req) {
  namespace bhttp = boost::beast::http;
  Request r;
  r.method = req.method_string();
  r.target = req.target();
  // Two Authorization fields are ambiguous (a proxy may have read the other
  // one): treat them as no valid credential at all.
  r.authorization = req.count(bhttp::field::authorization) > 1
                        ? std::string_view("Duplicate")
                        : std::string_view(req[bhttp::field::authorization]);
  r.content_type = req[bhttp::field::content_type];
  r.user_agent = req[bhttp::field::user_agent];
  r.origin = req[bhttp::field::origin];
  r.host = req[bhttp::field::host];
  r.cookie = req[bhttp::field::cookie];
  r.body = req.body();
  return r;
}

}  // namespace dvs::http
