#include "core/time.hpp"

#include <gtest/gtest.h>

using namespace dvs::core;

TEST(Rfc3339, FormatsUtcWholeSeconds) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(1795953600), "2026-11-29T12:00:00Z");
  EXPECT_EQ(format_rfc3339(951782400), "2000-02-29T00:00:00Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_rfc3339(253402300799), "9999-12-31T23:59:59Z");
}

TEST(Rfc3339, ParsesZuluOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339("2026-11-29T12:00:00Z"), 1795953600);
  EXPECT_EQ(parse_rfc3339("2026-11-29T13:00:00+01:00"), 1795953600);
  EXPECT_EQ(parse_rfc3339("2026-11-29T12:00:00.999Z"), 1795953600);
  EXPECT_EQ(parse_rfc3339("2026-11-29t12:00:00z"), 1795953600);
}

TEST(Rfc3339, RejectsMalformed) {
  for (const char* s : {"", "2026-11-29", "2026-11-29T09:20:00", "2026-13-01T00:00:00Z",
                        "2026-02-30T00:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T12:00:00Zx",
                        "2026-11-29T09:20:00+1:00", "yesterday", "2026-11-29T09:20:00.Z"})
    EXPECT_FALSE(parse_rfc3339(s)) << s;
}
