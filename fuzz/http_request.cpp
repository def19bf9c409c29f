// A whole HTTP request: the input is parsed as src/http/server.cpp parses a
// request (Beast's request_parser, 16 KiB of headers, 1 MiB of body), and a
// complete one is handed to Router::handle through the server's own
// conversion (http/beast_message.hpp), and its answer is written as the
// server writes it (http/wire.hpp) and parsed back. The router runs on a real SqliteStore
// with a signed-in session and an API key (fuzz_env.hpp) that the seed corpus
// uses.
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_env.hpp"
#include "http/beast_message.hpp"
#include "http/wire.hpp"

using namespace dvs;
namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Env& env = fuzz::Env::get();

  std::array<std::byte, 2048> arena_buffer;  // as the server's session has it
  std::pmr::monotonic_buffer_resource arena(arena_buffer.data(), arena_buffer.size());
  http::RequestParser parser(&arena);
  parser.header_limit(16 * 1024);
  parser.body_limit(1024 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  size_t used = 0;
  while (used < size && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == bhttp::error::need_more) break;
    if (ec) return 0;  // the server answers 400/413 itself; the router never sees it
    used += n;
    if (n == 0) break;
  }
  if (!parser.is_done()) {
    // As the server's read: end of input before any byte is a plain EOF.
    if (!parser.got_some()) return 0;
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }

  auto& req = parser.get();
  http::Request r = http::view_request(req);
  r.client_ip = fuzz::kClientIp;
  http::Response res = env.handle(r);

  // The server writes the response head by hand (http/wire.hpp): whatever
  // the router answered, Beast's own parser must read it back as one
  // well-formed response with the same status and body.
  const bool head_request = req.method() == bhttp::verb::head;
  std::string head;
  const bool with_body =
      http::write_head(res, "Reason", {req.version() == 10 ? 10u : 11u, req.keep_alive(), head_request},
                       head);
  std::string wire = head + std::string(with_body ? res.body_view() : std::string_view());
  bhttp::response_parser<bhttp::string_body> back;
  back.body_limit(64 * 1024 * 1024);
  back.skip(head_request);
  back.eager(true);
  size_t n = back.put(boost::asio::buffer(wire), ec);
  if (ec && ec != bhttp::error::need_more) __builtin_trap();
  if (!back.is_done()) {
    // A 1xx/204/304 or a HEAD answer ends at the head; others have a length.
    back.put_eof(ec);
    if (ec || !back.is_done()) __builtin_trap();
  }
  if (n != wire.size() || back.get().result_int() != static_cast<unsigned>(res.status) ||
      (with_body && back.get().body() != res.body_view()))
    __builtin_trap();
  return 0;
}
