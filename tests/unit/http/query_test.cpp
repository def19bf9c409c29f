#include "http/query.hpp"

#include <gtest/gtest.h>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "core/cursor.hpp"

using namespace dvs;

namespace {
core::Result<core::ListQuery> list(std::string_view target) {
  auto t = http::parse_target(target);
  if (!t) return t.error();
  return http::parse_list_query(*t, "lead", core::kLeadStatuses);
}
}  // namespace

TEST(ListQuery, Defaults) {
  auto q = list("/v1/leads");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->limit, 20);
  EXPECT_FALSE(q->after_created_at);
}

TEST(ListQuery, ParsesEveryParameter) {
  auto c = core::encode_cursor({100, "lead_x1"});
  auto q = list("/v1/leads?limit=100&status=won&updated_since=2026-11-29T00:00:00Z&cursor=" + c);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->limit, 100);
  EXPECT_EQ(q->status, "won");
  EXPECT_EQ(q->after_created_at, 100);
  EXPECT_EQ(q->after_id, "lead_x1");
  EXPECT_TRUE(q->updated_since);
}

TEST(ListQuery, NamesTheBadParameter) {
  struct Case {
    const char* target;
    const char* param;
  } cases[] = {{"/v1/leads?limit=0", "limit"},       {"/v1/leads?limit=101", "limit"},
               {"/v1/leads?limit=abc", "limit"},     {"/v1/leads?limit=-1", "limit"},
               {"/v1/leads?limit=1.5", "limit"},     {"/v1/leads?limit=", "limit"},
               {"/v1/leads?cursor=zzz", "cursor"},   {"/v1/leads?status=open", "status"},
               {"/v1/leads?updated_since=x", "updated_since"},
               {"/v1/leads?limt=5", "limt"},         {"/v1/leads?limit=1&limit=2", "limit"}};
  for (const auto& c : cases) {
    auto q = list(c.target);
    ASSERT_FALSE(q) << c.target;
    EXPECT_EQ(q.error().code, core::Errc::invalid_request);
    EXPECT_EQ(q.error().param, c.param) << c.target;
  }
}

TEST(Target, RejectsMalformedUrls) {
  EXPECT_FALSE(http::parse_target("not a url"));
  EXPECT_FALSE(http::parse_target("/v1/leads?%zz"));
  EXPECT_TRUE(http::parse_target("/v1/leads?a=%20"));
}

// The parameters are decoded on demand from the query kept as sent: the same
// names and values, in the same order, as decoding them from the whole URL.
TEST(Target, ParamsAreThoseOfTheWholeUrl) {
  for (std::string_view target :
       {"/v1/leads", "/v1/leads?", "/v1/leads?&", "/v1/leads?a", "/v1/leads?a=", "/v1/leads?a=&b",
        "/v1/leads?limit=20", "/v1/leads?a=%20b&c%3Dd=e%26f&&g==h", "/v1/leads?x=1&x=2",
        "/v1/leads?q=caf%C3%A9+au+lait", "/v1/leads?=", "/v1/leads?a&", "/v1/leads?&&",
        "/v1/leads?%41=%4a%4A", "/v1/leads?a=b=c", "/v1/leads?a=b?c/d", "/v1/l%65ads?x=1",
        "/v1/leads?a=%2B+%25", "/v1/a:b@c!$'()*,;~?x=:@"}) {
    auto t = http::parse_target(target);
    auto u = boost::urls::parse_origin_form(target);
    ASSERT_TRUE(t) << target;
    ASSERT_TRUE(u) << target;
    std::vector<std::pair<std::string, std::string>> want;
    if (u->has_query())
      for (auto p : u->params())
        want.emplace_back(p.key, p.has_value ? std::string(p.value) : std::string());
    EXPECT_EQ(t->params(), want) << target;
    EXPECT_EQ(t->has_query, u->has_query()) << target;
    EXPECT_EQ(t->path, std::string(u->path())) << target;
  }
}

// Targets the one-pass check sends on to Boost.URL: refused or accepted as
// Boost.URL's grammar decides, never otherwise.
TEST(Target, OddTargetsAreBoostUrlsDecision) {
  for (std::string_view target :
       {"", "v1/leads", "/v1/leads#x", "/v1/leads?a#b", "/v1/le ads", "/v1/leads?a b",
        "/v1/leads?%", "/v1/leads?%4", "/v1/leads?%4g", "/v1/le%zzads", "/v1/%00", "/v1/[x]",
        "/v1/leads?a=\x01", "/v1/leads?a=\x80", "/v1/leads?a=%FF", "/v1/%7Eleads", "//a?b"}) {
    auto t = http::parse_target(target);
    auto u = boost::urls::parse_origin_form(target);
    const bool boost_accepts = u && std::string(u->path()).find('\0') == std::string::npos;
    ASSERT_EQ(bool(t), boost_accepts) << target;
    if (!t) continue;
    EXPECT_EQ(t->path, std::string(u->path())) << target;
    EXPECT_EQ(t->query, std::string(u->encoded_query())) << target;
  }
}
