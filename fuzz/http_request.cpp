// A whole HTTP request: the input is parsed as src/http/server.cpp parses a
// request (Beast's request_parser, 16 KiB of headers, 1 MiB of body), and a
// complete one is handed to Router::handle through the server's own
// conversion (http/beast_message.hpp). The router runs on a real SqliteStore
// with a signed-in session and an API key (fuzz_env.hpp) that the seed corpus
// uses.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_env.hpp"
#include "http/beast_message.hpp"

using namespace dvs;
namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Env& env = fuzz::Env::get();

  bhttp::request_parser<bhttp::string_body> parser;
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

  // The server turns the response into a Beast message; that must work too.
  http::BeastResponse out = http::beast_response(res, req.version());
  out.body() = std::move(res.body);
  out.keep_alive(req.keep_alive());
  out.prepare_payload();
  return 0;
}
