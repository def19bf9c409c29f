#pragma once
// The HTTP/1.1 server: Boost.Beast on Asio coroutines, one io_context per
// thread (measured faster than one shared context, ../shared/notes), keep-alive
// with bounded pipelining (one request at a time per connection), header and
// body limits, deadlines on every read and write, and a graceful stop on
// SIGTERM/SIGINT: stop accepting, let requests in flight finish, close idle
// connections, return from run().
//
// Handlers run on the I/O threads. They may block briefly on SQLite: a read
// there costs microseconds (CPU-bound, from the page cache), less than a hop
// to another thread pool would; the only slow write (the request log) is on
// its own thread. Not copyable; run() once.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/types.hpp"

namespace dvs::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  int threads = 2;
  size_t header_limit = 16 * 1024;
  size_t body_limit = 1024 * 1024;
  int read_timeout_s = 30;   // a whole request must arrive within this
  int idle_timeout_s = 60;   // a kept-alive connection may idle this long
  int write_timeout_s = 30;
  // Open connections beyond this are answered 503 and closed at once, so a
  // flood of idle or slow connections cannot exhaust file descriptors.
  size_t max_connections = 10000;
  // Peers whose X-Forwarded-For is believed (a load balancer in front). For
  // a request from one of them, the client is the right-most address in
  // X-Forwarded-For that is not itself a trusted proxy. Empty: the peer's own
  // address is the client, and X-Forwarded-For is ignored (it is forgeable).
  std::vector<std::string> trusted_proxies;
};

using Handler = std::function<Response(const Request&)>;
// True for a request whose handling is slow by design (a password hash):
// it then runs on a small separate pool so it never stalls an I/O thread.
using SlowPredicate = std::function<bool(const Request&)>;

class Server {
 public:
  // Binds the listening socket. Throws std::runtime_error when it cannot
  // (address in use, bad address): start-up only.
  Server(ServerOptions opts, Handler handler, SlowPredicate is_slow = {});
  ~Server();

  // The bound port (useful with port 0).
  uint16_t port() const;
  // Serves until SIGTERM/SIGINT or stop(); returns when every connection has
  // closed and every thread has finished.
  void run();
  // Thread-safe; may be called from any thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dvs::http
