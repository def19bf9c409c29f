#pragma once
// The request and response as the router sees them: plain structs, so that
// only server.cpp includes Beast and Asio (slow to compile).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dvs::http {

// Views into the server's buffers; valid for the duration of one handle()
// call, and of the Deferred it returns.
struct Request {
  std::string_view method;  // "GET", ...
  std::string_view target;  // origin-form: path and query
  std::string_view authorization;
  std::string_view content_type;
  std::string_view user_agent;
  std::string_view origin;
  std::string_view host;
  std::string_view cookie;
  std::string_view body;
  std::string_view client_ip;
  int64_t start_us = 0;
};

struct Deferred;

struct Response {
  int status = 200;
  std::string body;
  // Instead of `body`, when set: a body made once and sent as it is by
  // every response that shares it (a cached /v1 list page).
  std::shared_ptr<const std::string> shared_body;
  // Instead of both, when not empty: a body that lives as long as the
  // process (a function-static string: a 429's or a bad key's body, the
  // OpenAPI document), shared without a reference count, whose cache line
  // the I/O threads would otherwise pass between them on every response.
  std::string_view static_body;
  // Always a string literal (so no allocation per response; a std::string
  // of "application/json" is one byte too long for the short-string buffer).
  std::string_view content_type = "application/json";
  // Names are string literals (set() takes only those), so a header costs
  // one string at most.
  std::vector<std::pair<std::string_view, std::string>> headers;
  std::string key_id;  // the authenticated API key, for logs; never sent
  // Set when the response is not ready: the rest of the fields are unused,
  // and the server waits as this says, without holding its thread.
  std::shared_ptr<Deferred> deferred;

  std::string_view body_view() const {
    if (!static_body.empty()) return static_body;
    return shared_body ? *shared_body : body;
  }

  template <size_t N>
  void set(const char (&name)[N], std::string value) {
    // Room for a /v1 response's headers at once (rate limit, request id,
    // nosniff, ...): one allocation, not one each time the vector grows.
    if (headers.capacity() == 0) headers.reserve(8);
    headers.emplace_back(std::string_view(name, N - 1), std::move(value));
  }
};

// A response waiting for another server (PostgreSQL's epochs, a Redis rate
// decision). The Request it answers stays valid until `then` has run.
struct Deferred {
  // Starts the wait; calls `done` once, on any thread, when it is over.
  std::function<void(std::function<void()> done)> wait;
  // Then, on the request's own thread: the response (or another Deferred).
  std::function<Response()> then;
};

}  // namespace dvs::http
