#pragma once
// A response's head as it goes on the wire (RFC 9112): the status line, the
// headers and the framing. Written by hand into one buffer, so that a
// response is one gather write of head and body, without a serializer or a
// heap node per header (docs/performance.md, change 13). No Beast or Asio
// here: the fuzz harness parses the result back with Beast's parser.

#include <string>
#include <string_view>

#include "http/types.hpp"

namespace dvs::http {

struct Framing {
  unsigned version = 11;      // the request's: 10 or 11
  bool keep_alive = true;     // the connection stays open after this response
  bool head_request = false;  // HEAD: announce the length, send no body
};

// The status as sent: one outside 100-999 (a bug) goes out as 500. The
// caller takes the reason phrase for this status, not for res.status.
inline int wire_status(int status) { return status < 100 || status > 999 ? 500 : status; }

// Replaces `out` with the head of `res` (ending in the blank line), with
// `reason` in the status line. Returns whether the body (res.body_view())
// follows on the wire: not for HEAD, 1xx, 204 and 304 (204 and 304 carry
// neither Content-Length nor Content-Type). A CR, LF or NUL in a header
// value becomes a space, so no value can end a header early.
bool write_head(const Response& res, std::string_view reason, const Framing& framing,
                std::string& out);

}  // namespace dvs::http
