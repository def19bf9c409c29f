#include "core/json_writer.hpp"

#include <gtest/gtest.h>

using namespace dvs::core;

TEST(JsonWriter, WritesNestedObjectsWithCommas) {
  std::string s;
  JsonWriter w(s);
  w.begin_object().key("a").integer(1).key("b").begin_array().string("x").null().boolean(true);
  w.end_array().key("c").begin_object().key("d").timestamp(0).end_object().end_object();
  EXPECT_EQ(s, R"({"a":1,"b":["x",null,true],"c":{"d":"1970-01-01T00:00:00Z"}})");
}

TEST(JsonString, EscapesQuotesControlsAndBadUtf8) {
  std::string s;
  append_json_string(s, std::string("a\"b\\c\n\x01", 7));
  EXPECT_EQ(s, R"("a\"b\\c\n\u0001")");
  s.clear();
  append_json_string(s, "caf\xC3\xA9");
  EXPECT_EQ(s, "\"caf\xC3\xA9\"");
  s.clear();
  append_json_string(s, "bad\xFF");
  EXPECT_EQ(s, "\"bad\xEF\xBF\xBD\"");
}
