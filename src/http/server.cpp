#include "http/server.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <ctime>
#include <list>
#include <memory_resource>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/json_writer.hpp"
#include "http/beast_message.hpp"
#include "http/request_id.hpp"
#include "http/wire.hpp"

namespace dvs::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Deadlines are kept per connection, not as a timer per read and write:
// arming and cancelling a timer around every socket operation (what
// beast::tcp_stream does) costs more than the rest of a rejected request's
// bookkeeping. Each worker sweeps its connections instead, every
// kSweepPeriod, and cancels the socket operations of those past their
// deadline (nginx's timers are lazy in the same way). The clock is the
// kernel's coarse monotonic one: a few milliseconds' resolution, no TSC read.
constexpr auto kSweepPeriod = std::chrono::milliseconds(250);

int64_t coarse_now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// A connection as its worker's registry sees it. Touched only on the
// worker's own thread.
struct Conn {
  tcp::socket* sock;
  bool idle;                 // waiting for the first byte of a request
  int64_t deadline_ms = 0;  // coarse_now_ms() past which its I/O is cancelled; 0: none

  // The operation started next must end within `seconds`.
  void expires_after(int seconds) { deadline_ms = coarse_now_ms() + int64_t{seconds} * 1000; }
};

struct Worker {
  asio::io_context ctx{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{ctx.get_executor()};
  asio::steady_timer sweep_timer{ctx};
  std::list<Conn> conns;
  std::thread thread;
};

bool is_trusted(const std::vector<std::string>& proxies, std::string_view ip) {
  for (const auto& p : proxies)
    if (p == ip) return true;
  return false;
}

// The client's address: the peer's, or for a trusted proxy the right-most
// X-Forwarded-For entry that is not a trusted proxy (entries to its left were
// written by the client and cannot be believed).
std::string_view client_address(const std::vector<std::string>& proxies, std::string_view peer,
                                std::string_view xff) {
  if (proxies.empty() || xff.empty() || !is_trusted(proxies, peer)) return peer;
  while (!xff.empty()) {
    size_t comma = xff.rfind(',');
    std::string_view last = comma == std::string_view::npos ? xff : xff.substr(comma + 1);
    while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
    while (!last.empty() && last.back() == ' ') last.remove_suffix(1);
    if (!last.empty() && !is_trusted(proxies, last)) {
      boost::system::error_code ec;
      asio::ip::make_address(last, ec);
      return ec ? peer : last;  // garbage in the header: fall back to the peer
    }
    if (comma == std::string_view::npos) break;
    xff = xff.substr(0, comma);
  }
  return peer;
}

// A JSON error for a request the parser refused, before the router saw it.
Response protocol_error(int status, std::string_view code, std::string_view message) {
  Response res;
  res.status = status;
  core::JsonWriter w(res.body);
  w.begin_object().key("error").begin_object().key("code").string(code);
  w.key("message").string(message).end_object().end_object();
  res.set("X-Request-Id", new_request_id(now_us()));
  res.set("Cache-Control", "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  return res;
}

// Writes `res` (head and body in one gather write); `head` is the caller's
// buffer, reused across a connection's responses.
asio::awaitable<boost::system::error_code> send(Conn& conn, const Response& res,
                                               const Framing& framing, std::string& head,
                                               int timeout_s) {
  const bool with_body =
      write_head(res, bhttp::obsolete_reason(static_cast<bhttp::status>(wire_status(res.status))),
                 framing, head);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head),
                                         asio::buffer(with_body ? res.body_view()
                                                                : std::string_view())};
  conn.expires_after(timeout_s);
  auto [ec, n] = co_await asio::async_write(*conn.sock, bufs, kNoThrow);
  conn.deadline_ms = 0;
  co_return ec;
}

// Suspends the session until `d` is over. The wait ends on another thread;
// the session resumes on its own (a post to its io_context, kept running
// meanwhile by a work guard).
asio::awaitable<void> wait_for(asio::io_context& ctx, Deferred& d) {
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&ctx, &d](auto handler) {
        using Handler = decltype(handler);
        struct Waiting {
          Handler handler;
          asio::executor_work_guard<asio::io_context::executor_type> work;
        };
        auto waiting = std::make_shared<Waiting>(
            Waiting{std::move(handler), asio::make_work_guard(ctx)});
        d.wait([waiting, &ctx] {
          asio::post(ctx, [waiting] {
            waiting->work.reset();
            std::move(waiting->handler)();
          });
        });
      },
      asio::use_awaitable);
}
}  // namespace

struct Server::Impl {
  ServerOptions opts;
  Handler handler;
  SlowPredicate is_slow;
  asio::thread_pool slow_pool{2};
  std::vector<std::unique_ptr<Worker>> workers;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> open_connections{0};
  size_t next_worker = 0;

  Impl(ServerOptions o, Handler h, SlowPredicate slow)
      : opts(std::move(o)),
        handler(std::move(h)),
        is_slow(std::move(slow)),
        workers(make_workers(opts.threads)),
        acceptor(workers[0]->ctx),
        signals(workers[0]->ctx, SIGINT, SIGTERM) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(opts.host, ec);
    if (ec) throw std::runtime_error("invalid listen address: " + opts.host);
    tcp::endpoint ep(addr, opts.port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error("cannot listen on " + opts.host + ":" + std::to_string(opts.port) +
                               ": " + ec.message());
  }

  static std::vector<std::unique_ptr<Worker>> make_workers(int n) {
    std::vector<std::unique_ptr<Worker>> v;
    for (int i = 0; i < std::max(1, n); ++i) v.push_back(std::make_unique<Worker>());
    return v;
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      Worker& w = *workers[next_worker++ % workers.size()];
      auto [ec, sock] = co_await acceptor.async_accept(w.ctx, kNoThrow);
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) co_return;
        // EMFILE and the like: keep serving the connections we have.
        spdlog::warn("accept: {}", ec.message());
        asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(kNoThrow);
        continue;
      }
      if (open_connections.load() >= opts.max_connections) {
        asio::co_spawn(w.ctx, refuse(w, std::move(sock)), asio::detached);
        continue;
      }
      ++open_connections;
      asio::co_spawn(w.ctx, session(w, std::move(sock)), asio::detached);
    }
  }

  // Over the connection cap: a short 503 and close, without reading.
  asio::awaitable<void> refuse(Worker& w, tcp::socket sock) {
    auto me = w.conns.insert(w.conns.end(), Conn{&sock, false});
    try {  // the registry must not keep a pointer to this socket past here
      auto res = protocol_error(503, "service_unavailable",
                                "Too many open connections; retry shortly.");
      res.set("Retry-After", "1");
      std::string head;
      co_await send(*me, res, Framing{11, false, false}, head, 2);
    } catch (const std::exception& e) {
      spdlog::error("refusing a connection: {}", e.what());
    }
    boost::system::error_code ec;
    sock.shutdown(tcp::socket::shutdown_both, ec);
    forget(w, me);
  }

  // Removes a connection from its worker's registry; the last one out of a
  // stopping worker ends its sweep, so the worker's run() can return.
  void forget(Worker& w, std::list<Conn>::iterator me) {
    w.conns.erase(me);
    if (stopping && w.conns.empty()) w.sweep_timer.cancel();
  }

  // Cancels the socket operations of the worker's connections past their
  // deadline (the session then sees operation_aborted and closes), until the
  // server stops and the last connection is gone.
  asio::awaitable<void> sweep(Worker& w) {
    for (;;) {
      if (stopping && w.conns.empty()) co_return;
      w.sweep_timer.expires_after(kSweepPeriod);
      co_await w.sweep_timer.async_wait(kNoThrow);
      const int64_t now = coarse_now_ms();
      for (auto& c : w.conns) {
        if (c.deadline_ms == 0 || now < c.deadline_ms) continue;
        c.deadline_ms = 0;
        boost::system::error_code ec;
        c.sock->cancel(ec);
      }
    }
  }

  asio::awaitable<void> session(Worker& w, tcp::socket sock) {
    boost::system::error_code ec;
    sock.set_option(tcp::no_delay(true), ec);
    auto remote = sock.remote_endpoint(ec);
    std::string client_ip = ec ? std::string("unknown") : remote.address().to_string();
    beast::flat_buffer buffer(8192);
    std::string head;  // the response head, reused
    head.reserve(512);
    // The fields of a request (beast_message.hpp): most fit in the frame's
    // buffer; larger ones take blocks from the heap until the next request.
    std::array<std::byte, 2048> arena_buffer;
    std::pmr::monotonic_buffer_resource arena(arena_buffer.data(), arena_buffer.size());
    auto me = w.conns.insert(w.conns.end(), Conn{&sock, true});
    // The try is around the whole loop (not inside it, as in Beast 1.81's
    // example), so any exception ends this connection and nothing else.
    try {
      bool first = true;
      while (!stopping) {
        arena.release();  // the previous request's parser and views are gone
        RequestParser parser(&arena);
        parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
        parser.body_limit(opts.body_limit);
        me->expires_after(first || buffer.size() > 0 ? opts.read_timeout_s : opts.idle_timeout_s);
        first = false;
        me->idle = buffer.size() == 0;
        auto [rec, n] = co_await bhttp::async_read(sock, buffer, parser, kNoThrow);
        me->idle = false;
        me->deadline_ms = 0;
        if (rec) {
          if (rec == bhttp::error::body_limit) {
            co_await write_error(*me, 413, "payload_too_large",
                                 "The request body is larger than 1 MiB.");
          } else if (rec == bhttp::error::header_limit) {
            co_await write_error(*me, 400, "invalid_request",
                                 "The request headers are too large.");
          } else if (rec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
                     rec != bhttp::error::end_of_stream && rec != bhttp::error::partial_message) {
            co_await write_error(*me, 400, "invalid_request", "The request is malformed.");
          }
          break;  // EOF, timeout, reset or cancelled by stop()
        }
        auto& req = parser.get();
        Request r = view_request(req);
        r.client_ip = client_address(opts.trusted_proxies, client_ip,
                                     req["X-Forwarded-For"]);
        r.start_us = now_us();
        Response out;
        if (is_slow && is_slow(r)) {
          // Hop to the pool, run, hop back; the request's buffers live in
          // this coroutine's frame, so the views stay valid.
          co_await asio::post(slow_pool.get_executor(), asio::use_awaitable);
          out = handler(r);
          co_await asio::post(w.ctx.get_executor(), asio::use_awaitable);
        } else {
          out = handler(r);
        }
        while (out.deferred) {
          auto d = std::move(out.deferred);
          co_await wait_for(w.ctx, *d);
          out = d->then();
        }

        const bool keep = req.keep_alive() && !stopping;
        const Framing framing{req.version() == 10 ? 10u : 11u, keep,
                              req.method() == bhttp::verb::head};
        auto wec = co_await send(*me, out, framing, head, opts.write_timeout_s);
        if (wec || !keep) break;
      }
    } catch (const std::exception& e) {
      spdlog::error("connection from {}: {}", client_ip, e.what());
    }
    sock.shutdown(tcp::socket::shutdown_send, ec);
    sock.close(ec);
    forget(w, me);
    --open_connections;
  }

  // Answers a request the parser refused, then closes gracefully: the
  // client may still be sending (a 2 MiB body after a 413), and closing with
  // unread data makes the kernel send a reset that can destroy the answer
  // before the client reads it. So: shut down our side, then read and
  // discard for a bounded time and size (nginx's "lingering close").
  asio::awaitable<void> write_error(Conn& conn, int status, std::string_view code,
                                    std::string_view message) {
    auto res = protocol_error(status, code, message);
    std::string head;
    if (co_await send(conn, res, Framing{11, false, false}, head, opts.write_timeout_s))
      co_return;
    boost::system::error_code ec;
    conn.sock->shutdown(tcp::socket::shutdown_send, ec);
    conn.expires_after(2);
    std::array<char, 16384> sink;
    size_t drained = 0;
    while (drained < 8 * opts.body_limit) {
      auto [rec, n] = co_await conn.sock->async_read_some(asio::buffer(sink), kNoThrow);
      if (rec) break;
      drained += n;
    }
    conn.deadline_ms = 0;
  }

  // Runs on worker 0's thread.
  void begin_stop() {
    if (stopping.exchange(true)) return;
    boost::system::error_code ec;
    acceptor.close(ec);
    signals.cancel(ec);
    for (auto& w : workers) {
      asio::post(w->ctx, [wp = w.get()] {
        for (auto& c : wp->conns) {
          boost::system::error_code ec;
          if (c.idle) c.sock->cancel(ec);
        }
        if (wp->conns.empty()) wp->sweep_timer.cancel();
        wp->guard.reset();
      });
    }
  }
};

Server::Server(ServerOptions opts, Handler handler, SlowPredicate is_slow)
    : impl_(std::make_unique<Impl>(std::move(opts), std::move(handler), std::move(is_slow))) {}

Server::~Server() = default;

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

void Server::run() {
  Impl& im = *impl_;
  im.signals.async_wait([&im](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping (finishing requests in flight)", sig);
    im.begin_stop();
  });
  asio::co_spawn(im.workers[0]->ctx, im.accept_loop(), asio::detached);
  for (auto& w : im.workers) asio::co_spawn(w->ctx, im.sweep(*w), asio::detached);
  for (size_t i = 1; i < im.workers.size(); ++i) {
    Worker* w = im.workers[i].get();
    w->thread = std::thread([w] { w->ctx.run(); });
  }
  im.workers[0]->ctx.run();
  for (size_t i = 1; i < im.workers.size(); ++i) im.workers[i]->thread.join();
  im.slow_pool.join();
}

void Server::stop() {
  asio::post(impl_->workers[0]->ctx, [im = impl_.get()] { im->begin_stop(); });
}

}  // namespace dvs::http
