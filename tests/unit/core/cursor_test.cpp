#include "core/cursor.hpp"

#include <gtest/gtest.h>

using namespace dvs::core;

TEST(Cursor, RoundTrips) {
  auto c = encode_cursor({1795959947, "lead_abc123"});
  auto p = decode_cursor(c, "lead");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->created_at, 1795959947);
  EXPECT_EQ(p->id, "lead_abc123");
}

TEST(Cursor, IsUrlSafe) {
  auto c = encode_cursor({-5, "inv_zzzzzzzzzzzzzzzzzzzzzzzz"});
  EXPECT_EQ(c.find_first_of("+/="), std::string::npos);
}

TEST(Cursor, RejectsAnotherResourcesCursor) {
  auto c = encode_cursor({1, "lead_abc"});
  EXPECT_FALSE(decode_cursor(c, "inv"));
}

TEST(Cursor, RejectsGarbageAndTampering) {
  EXPECT_FALSE(decode_cursor("", "lead"));
  EXPECT_FALSE(decode_cursor("not a cursor!", "lead"));
  EXPECT_FALSE(decode_cursor("YWJj", "lead"));  // "abc"
  auto c = encode_cursor({1, "lead_abcdefgh"});
  for (size_t i = 0; i < c.size(); ++i) {
    std::string t = c;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(decode_cursor(t, "lead")) << i;
  }
  EXPECT_FALSE(decode_cursor(std::string(300, 'A'), "lead"));
}

#include "core/ids.hpp"

TEST(Ids, SortByCreationTimeAndKeepTheirShape) {
  auto a = new_id("lead", 1'800'000'000'000'000);
  auto b = new_id("lead", 1'800'000'000'000'001);
  EXPECT_LT(a, b);
  EXPECT_EQ(a.size(), 5u + 24u);
  EXPECT_TRUE(is_valid_id(a, "lead"));
  EXPECT_FALSE(is_valid_id(a, "inv"));
  EXPECT_NE(new_id("lead", 5), new_id("lead", 5));
}
