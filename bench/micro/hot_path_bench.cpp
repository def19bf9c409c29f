// Google Benchmark micro-benchmarks of the hot path's pure functions.
// Build: cmake -B build-release -DCMAKE_BUILD_TYPE=Release -DDVS_BUILD_BENCH=ON
// Run:   build-release/dvs_microbench
// Figures and their date are recorded in docs/performance.md.

#include <benchmark/benchmark.h>

#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/url_view.hpp>

#include <vector>

#include "core/api_key.hpp"
#include "core/clock.hpp"
#include "core/cursor.hpp"
#include "core/json_writer.hpp"
#include "core/key_cache.hpp"
#include "core/key_filter.hpp"
#include "core/rate_limiter.hpp"
#include "core/render.hpp"
#include "http/query.hpp"

namespace {

using namespace dvs::core;

std::vector<std::string> make_keys(size_t n) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < n; ++i) keys.push_back(generate_key_secret());
  return keys;
}

void BM_BearerAndChecksum(benchmark::State& state) {
  auto keys = make_keys(1024);
  std::vector<std::string> headers;
  for (auto& k : keys) headers.push_back("Bearer " + k);
  size_t i = 0;
  for (auto _ : state) {
    auto t = bearer_token(headers[i++ & 1023]);
    benchmark::DoNotOptimize(t && is_well_formed_key(*t));
  }
}
BENCHMARK(BM_BearerAndChecksum);

void BM_RejectBadChecksum(benchmark::State& state) {
  auto k = generate_key_secret();
  k[20] = k[20] == 'a' ? 'b' : 'a';
  for (auto _ : state) benchmark::DoNotOptimize(is_well_formed_key(k));
}
BENCHMARK(BM_RejectBadChecksum);

void BM_HashSha256(benchmark::State& state) {
  KeyHasher h;
  auto k = generate_key_secret();
  for (auto _ : state) benchmark::DoNotOptimize(h.hash(k));
}
BENCHMARK(BM_HashSha256);

void BM_HashHmacPepper(benchmark::State& state) {
  KeyHasher h("a pepper of thirty-two bytes....");
  auto k = generate_key_secret();
  for (auto _ : state) benchmark::DoNotOptimize(h.hash(k));
}
BENCHMARK(BM_HashHmacPepper);

// Issue #5's key verification: parse the header, check the checksum, hash,
// find the key in a warm cache (range(0) keys cached; 1,024 distinct keys used
// in turn). The epoch read itself is a database statement, not counted here.
void BM_VerifyKeyWarmCache(benchmark::State& state) {
  const size_t cached = static_cast<size_t>(state.range(0));
  KeyHasher h;
  KeyCache cache(2 * cached);  // shards fill unevenly: room to spare
  std::vector<std::string> headers;
  ApiKey k;
  k.id = "key_01JD7Y6G0Q3N2W9X8V7B6C5A4Z";
  k.org_id = "org_01JD7Y6G0Q3N2W9X8V7B6C5A4Z";
  k.name = "CRM sync";
  k.hint = "Ab3d";
  for (size_t i = 0; i < cached; ++i) {
    auto secret = generate_key_secret();
    cache.put(h.hash(secret), k, 1);
    if (headers.size() < 1024) headers.push_back("Bearer " + secret);
  }
  size_t i = 0;
  for (auto _ : state) {
    auto t = bearer_token(headers[i++ & 1023]);
    if (!t || !is_well_formed_key(*t)) state.SkipWithError("bad key");
    auto hit = cache.get(h.hash(*t), 1);
    if (!hit) state.SkipWithError("cache miss");
    benchmark::DoNotOptimize(hit);
  }
}
BENCHMARK(BM_VerifyKeyWarmCache)->Arg(1024)->Arg(50000)->ThreadRange(1, 2);

// Issue #5's unknown-key path (change 22): a well-formed key that no stored
// key matches is refused by the filter of key hashes, after the hash.
// range(0) keys in the filter (sized for them); the hashes probed are of
// keys never added.
void BM_RejectUnknownKeyByFilter(benchmark::State& state) {
  const size_t stored = static_cast<size_t>(state.range(0));
  KeyHasher h;
  KeyFilter filter(stored);
  for (size_t i = 0; i < stored; ++i) filter.add(h.hash("stored-" + std::to_string(i)));
  std::vector<KeyHash> unknown;
  for (size_t i = 0; i < 1024; ++i) unknown.push_back(h.hash(generate_key_secret()));
  size_t i = 0, passed = 0;
  for (auto _ : state) passed += filter.may_contain(unknown[i++ & 1023]);
  state.counters["false_positives"] =
      benchmark::Counter(static_cast<double>(passed), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_RejectUnknownKeyByFilter)->Arg(10'000)->Arg(1'000'000);

void BM_RateLimiterAcquire(benchmark::State& state) {
  SystemClock clock;
  LocalRateLimiter rl(clock);
  auto keys = make_keys(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(rl.acquire(keys[i++ % keys.size()], 1'000'000).allowed);
}
BENCHMARK(BM_RateLimiterAcquire)->Arg(1000)->Arg(100000)->ThreadRange(1, 2);

// The 429 path: a key over its limit, refused, its requests counted
// `state.range(0)` seconds ago (Retry-After is found by walking the window
// from its oldest second).
void BM_RateLimiterRefuse(benchmark::State& state) {
  constexpr int64_t kT0 = 1'800'000'000'000'000;
  ManualClock clock(kT0);
  LocalRateLimiter rl(clock);
  for (int i = 0; i < 10; ++i) (void)rl.acquire("over", 10);
  clock.advance_us(state.range(0) * 1'000'000);
  for (auto _ : state) benchmark::DoNotOptimize(rl.acquire("over", 10).retry_after_s);
}
BENCHMARK(BM_RateLimiterRefuse)->Arg(1)->Arg(30)->Arg(59);

void BM_CursorRoundTrip(benchmark::State& state) {
  for (auto _ : state) {
    auto c = encode_cursor({1795953600, "lead_0DhW7s2aB1234567890abcde"});
    benchmark::DoNotOptimize(decode_cursor(c, "lead"));
  }
}
BENCHMARK(BM_CursorRoundTrip);

// What a deep page pays per request: the cursor of its query string decoded.
void BM_CursorDecode(benchmark::State& state) {
  const auto c = encode_cursor({1795953600, "lead_0DhW7s2aB1234567890abcde"});
  for (auto _ : state) benchmark::DoNotOptimize(decode_cursor(c, "lead"));
}
BENCHMARK(BM_CursorDecode);

// A list request's target: checked, then its parameters read as the list
// handler reads them (change 46). Arg 0: `?limit=20`; arg 1: a deep page's
// `?limit=20&cursor=…`.
std::string list_target(int64_t deep) {
  std::string t = "/v1/leads?limit=20";
  if (deep) t += "&cursor=" + encode_cursor({1795953600, "lead_0DhW7s2aB1234567890abcde"});
  return t;
}

void BM_ParseListTarget(benchmark::State& state) {
  const std::string target = list_target(state.range(0));
  for (auto _ : state) {
    auto t = dvs::http::parse_target(target);
    benchmark::DoNotOptimize(dvs::http::parse_list_query(*t, "lead", kLeadStatuses));
  }
}
BENCHMARK(BM_ParseListTarget)->Arg(0)->Arg(1);

// The same through Boost.URL's grammar, as before change 46: the target
// parsed, the query copied, parsed again and each parameter decoded (and
// the cursor's too).
void BM_ParseListTargetBoostUrl(benchmark::State& state) {
  const std::string target = list_target(state.range(0));
  const boost::urls::encoding_opts plus_is_space(true, false, false);
  for (auto _ : state) {
    auto u = boost::urls::parse_origin_form(target);
    std::string path = u->path();
    std::string query(u->encoded_query());
    std::vector<std::pair<std::string, std::string>> params;
    for (auto p : *boost::urls::parse_query(query))
      params.emplace_back(p.key.decode(plus_is_space), p.value.decode(plus_is_space));
    for (const auto& [name, value] : params)
      if (name == "cursor") benchmark::DoNotOptimize(decode_cursor(value, "lead"));
    benchmark::DoNotOptimize(path);
    benchmark::DoNotOptimize(params);
  }
}
BENCHMARK(BM_ParseListTargetBoostUrl)->Arg(0)->Arg(1);

void BM_RenderLead(benchmark::State& state) {
  Lead l;
  l.id = "lead_0DhW7s2aB1234567890abcde";
  l.name = "Ada Lovelace";
  l.email = "ada@analytical.example";
  l.phone = "+44 20 7946 0000";
  l.company = "Analytical Engines";
  l.status = "qualified";
  l.source = "referral";
  l.value_cents = 1250000;
  l.currency = "GBP";
  l.created_at = l.updated_at = 1795953600;
  for (auto _ : state) benchmark::DoNotOptimize(lead_json(l));
}
BENCHMARK(BM_RenderLead);

}  // namespace

BENCHMARK_MAIN();
