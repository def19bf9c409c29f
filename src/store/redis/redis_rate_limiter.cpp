#include "store/redis/redis_rate_limiter.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>

namespace dvs::store {

namespace {

// One call decides for a batch of keys (the requests that waited while the
// previous call was under way), in order, atomically. KEYS[i]: a key's hash:
// second -> count, plus the window's running sums ('t' total, 'o' oldest
// second, 'n' newest second). ARGV[2i-1]: its limit, ARGV[2i]: 1 to count
// the request, 0 to only look. Returns {now in µs, then for each key:
// allowed, total, oldest second, newest second}; seconds are -1 when the
// window is empty. A key twice in a batch is decided twice, the second time
// with the first request counted.
//
// Constant work a request: the sums are read and updated in place (within
// a second, only the bucket and the total: three calls), and the buckets
// are walked (to drop those older than 60 s and sum the rest again)
// only when the oldest one has left the window, at most once a second per
// key, or when the sums are missing (a hash from before they were kept).
constexpr const char* kScript = R"lua(
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local sec = tonumber(t[1])
local out = {now_us}
for k = 1, #KEYS do
  local key = KEYS[k]
  local limit = tonumber(ARGV[2 * k - 1])
  local m = redis.call('HMGET', key, 't', 'o', 'n')
  local total, oldest, newest = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])
  local changed = false
  if total == nil or oldest == nil or newest == nil or (oldest >= 0 and oldest <= sec - 60) then
    local h = redis.call('HGETALL', key)
    total, oldest, newest = 0, -1, -1
    for i = 1, #h, 2 do
      local f = h[i]
      if f ~= 't' and f ~= 'o' and f ~= 'n' then
        local s = tonumber(f)
        if s <= sec - 60 then
          redis.call('HDEL', key, f)
        else
          total = total + tonumber(h[i + 1])
          if oldest < 0 or s < oldest then oldest = s end
          if s > newest then newest = s end
        end
      end
    end
    changed = true
  end
  local allowed = 0
  if total < limit then
    allowed = 1
    if ARGV[2 * k] == '1' then
      redis.call('HINCRBY', key, t[1], 1)
      total = total + 1
      if sec > newest or changed then
        -- A new second (or sums just rebuilt): all three sums, and the
        -- expiry, which only a newer bucket moves.
        if sec > newest then newest = sec end
        if oldest < 0 then oldest = sec end
        redis.call('HSET', key, 't', total, 'o', oldest, 'n', newest)
        redis.call('EXPIRE', key, 61)
      else
        redis.call('HINCRBY', key, 't', 1)
      end
      changed = false
    end
  end
  if changed then
    if total > 0 then
      redis.call('HSET', key, 't', total, 'o', oldest, 'n', newest)
      redis.call('EXPIRE', key, 61)
    else
      redis.call('DEL', key)
    end
  end
  out[#out + 1] = allowed
  out[#out + 1] = total
  out[#out + 1] = oldest
  out[#out + 1] = newest
end
return out
)lua";

// The most requests one call decides.
constexpr size_t kMaxBatch = 128;

int64_t seconds_until(int64_t sec, int64_t now_us) {
  int64_t us = (sec + 60) * 1'000'000 - now_us;
  return us <= 0 ? 0 : (us + 999'999) / 1'000'000;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

RedisUrl parse_redis_url(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme))
    throw std::runtime_error("malformed Redis URL (expected redis://HOST:PORT)");
  std::string rest = url.substr(kScheme.size());
  RedisUrl out;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    out.password = cred.starts_with(":") ? cred.substr(1) : cred.substr(cred.find(':') + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      if (db.size() > 2 || db.find_first_not_of("0123456789") != std::string::npos)
        throw std::runtime_error("malformed Redis URL (bad database number)");
      out.db = std::stoi(db);
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    std::string port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) > 65535 || std::stoi(port) == 0)
      throw std::runtime_error("malformed Redis URL (bad port)");
    out.port = std::stoi(port);
  }
  if (rest.empty()) throw std::runtime_error("malformed Redis URL (no host)");
  out.host = rest;
  return out;
}

// The worker's connection. Reconnects lazily, at most once a second.
struct RedisRateLimiter::Conn {
  redisContext* ctx = nullptr;
  std::string sha;
  std::chrono::steady_clock::time_point next_attempt{};

  ~Conn() { close(); }
  void close() {
    if (ctx) redisFree(ctx);
    ctx = nullptr;
    sha.clear();
  }
  // True when connected (connecting now if due). `error` gets the reason.
  bool ensure(const RedisUrl& url, std::string& error) {
    if (ctx) return true;
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt) {
      error = "waiting to reconnect";
      return false;
    }
    next_attempt = now + std::chrono::seconds(1);
    timeval tv{0, 250'000};
    ctx = redisConnectWithTimeout(url.host.c_str(), url.port, tv);
    if (!ctx || ctx->err) {
      error = ctx ? ctx->errstr : "out of memory";
      close();
      return false;
    }
    redisSetTimeout(ctx, tv);
    auto cmd = [&](std::initializer_list<std::string> args) -> Reply {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      return Reply(static_cast<redisReply*>(
          redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data())));
    };
    if (!url.password.empty()) {
      Reply r = cmd({"AUTH", url.password});
      if (!r || r->type == REDIS_REPLY_ERROR) {
        error = "authentication failed";
        close();
        return false;
      }
    }
    if (url.db != 0) {
      Reply r = cmd({"SELECT", std::to_string(url.db)});
      if (!r || r->type == REDIS_REPLY_ERROR) {
        error = "cannot select the database";
        close();
        return false;
      }
    }
    Reply r = cmd({"SCRIPT", "LOAD", kScript});
    if (!r || r->type != REDIS_REPLY_STRING) {
      error = r && r->type == REDIS_REPLY_ERROR ? r->str : "cannot load the script";
      close();
      return false;
    }
    sha.assign(r->str, r->len);
    return true;
  }
};

RedisRateLimiter::RedisRateLimiter(RedisUrl url, const core::Clock& clock, uint32_t nodes)
    : url_(std::move(url)),
      nodes_(std::max(1u, nodes)),
      fallback_(clock),
      conn_(std::make_unique<Conn>()),
      worker_([this](std::vector<Request>& batch) { serve(batch); }, kMaxBatch) {
  // Connects once to fail fast; the worker's calls use this connection
  // afterwards (only its thread does, once it runs).
  std::string error;
  if (!conn_->ensure(url_, error))
    throw std::runtime_error("cannot reach Redis at " + url_.host + ":" +
                             std::to_string(url_.port) + ": " + error);
}

RedisRateLimiter::~RedisRateLimiter() = default;

core::RateDecision RedisRateLimiter::acquire(std::string_view key, uint32_t limit) {
  return decide(key, limit, true);
}

core::RateDecision RedisRateLimiter::peek(std::string_view key, uint32_t limit) {
  return decide(key, limit, false);
}

std::string_view RedisRateLimiter::health() const {
  return degraded_.load() ? "degraded" : "shared";
}

// Every decision goes through the worker (core/batch_worker.hpp): the
// requests queued while one call is under way are decided by the next, in
// one round trip. A blocking caller waits for its own.
core::RateDecision RedisRateLimiter::decide(std::string_view key, uint32_t limit, bool count) {
  std::promise<core::RateDecision> decided;
  auto answer = decided.get_future();
  worker_.submit(Request{std::string(key), limit, count,
                         [&decided](core::RateDecision d) { decided.set_value(d); }});
  return answer.get();
}

bool RedisRateLimiter::is_async() const { return true; }

void RedisRateLimiter::acquire_async(std::string_view key, uint32_t limit,
                                     std::function<void(core::RateDecision)> done) {
  worker_.submit(Request{std::string(key), limit, true, std::move(done)});
}

void RedisRateLimiter::serve(std::vector<Request>& batch) {
  std::vector<std::optional<core::RateDecision>> out(batch.size());
  call(batch, out);
  for (size_t i = 0; i < batch.size(); ++i) {
    Request& r = batch[i];
    if (!out[i]) {
      ++fallback_decisions_;
      const uint32_t share = std::max(1u, (r.limit + nodes_ - 1) / nodes_);
      out[i] = r.count ? fallback_.acquire(r.key, share) : fallback_.peek(r.key, share);
    }
    r.done(*out[i]);
  }
}

void RedisRateLimiter::call(const std::vector<Request>& batch,
                            std::vector<std::optional<core::RateDecision>>& out) {
  Conn& c = *conn_;
  std::string error;
  const size_t n = batch.size();
  std::vector<std::string> keys, limits;
  keys.reserve(n);
  limits.reserve(n);
  for (const Request& r : batch) {
    keys.push_back("dvs:rl:" + r.key);
    limits.push_back(std::to_string(r.limit));
  }
  const std::string nkeys = std::to_string(n);
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(3 + 3 * n);
  lens.reserve(3 + 3 * n);
  // Two tries: a connection that sat idle through a Redis restart fails on
  // first use; that says nothing about Redis now, so reconnect at once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool was_connected = c.ctx != nullptr;
    if (!c.ensure(url_, error)) break;
    argv.assign({"EVALSHA", c.sha.c_str(), nkeys.c_str()});
    lens.assign({7, c.sha.size(), nkeys.size()});
    for (const auto& k : keys) {
      argv.push_back(k.c_str());
      lens.push_back(k.size());
    }
    for (size_t i = 0; i < n; ++i) {
      argv.push_back(limits[i].c_str());
      lens.push_back(limits[i].size());
      argv.push_back(batch[i].count ? "1" : "0");
      lens.push_back(1);
    }
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(c.ctx, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 + 4 * n) {
      const int64_t now_us = r->element[0]->integer;
      for (size_t i = 0; i < n; ++i) {
        redisReply** e = r->element + 1 + 4 * i;
        const int64_t allowed = e[0]->integer, total = e[1]->integer;
        const int64_t oldest = e[2]->integer, newest = e[3]->integer;
        const uint32_t limit = batch[i].limit;
        core::RateDecision d;
        d.allowed = allowed == 1;
        d.limit = limit;
        d.remaining = total >= limit ? 0 : static_cast<uint32_t>(limit - total);
        d.reset_s = total == 0 || newest < 0 ? 0 : seconds_until(newest, now_us);
        if (!d.allowed) d.retry_after_s = std::max<int64_t>(1, seconds_until(oldest, now_us));
        out[i] = d;
      }
      if (degraded_.exchange(false)) spdlog::info("redis: reachable again; limits are shared");
      return;
    }
    if (r && r->type == REDIS_REPLY_ERROR &&
        std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
      error = "script was flushed";  // Redis restarted: load it again
    } else {
      error = c.ctx && c.ctx->err ? c.ctx->errstr
                                  : (r && r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    }
    c.close();
    if (!was_connected) break;  // a fresh connection failed: Redis is really down
    c.next_attempt = {};
  }
  if (!degraded_.exchange(true))
    spdlog::error("redis: unreachable ({}); falling back to per-node limits (limit/{})", error,
                  nodes_);
}

}  // namespace dvs::store
