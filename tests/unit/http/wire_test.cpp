#include "http/wire.hpp"

#include <gtest/gtest.h>

using namespace dvs;

namespace {
http::Response json(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.set("X-Request-Id", "req_1");
  return r;
}
}  // namespace

TEST(WireHead, StatusHeadersAndLength) {
  auto r = json(200, R"({"a":1})");
  std::string head;
  EXPECT_TRUE(http::write_head(r, "OK", {}, head));
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\n"
            "Content-Length: 7\r\n\r\n");
}

TEST(WireHead, ConnectionHeaderFollowsTheVersion) {
  auto r = json(200, "{}");
  std::string head;
  http::write_head(r, "OK", {11, false, false}, head);
  EXPECT_NE(head.find("\r\nConnection: close\r\n"), std::string::npos);
  http::write_head(r, "OK", {10, true, false}, head);
  EXPECT_TRUE(head.starts_with("HTTP/1.0 200 OK\r\n"));
  EXPECT_NE(head.find("\r\nConnection: keep-alive\r\n"), std::string::npos);
  http::write_head(r, "OK", {10, false, false}, head);
  EXPECT_EQ(head.find("Connection:"), std::string::npos);
  http::write_head(r, "OK", {11, true, false}, head);
  EXPECT_EQ(head.find("Connection:"), std::string::npos);
}

TEST(WireHead, HeadAnnouncesTheLengthWithoutBody) {
  auto r = json(200, std::string(1234, 'x'));
  std::string head;
  EXPECT_FALSE(http::write_head(r, "OK", {11, true, true}, head));
  EXPECT_NE(head.find("\r\nContent-Length: 1234\r\n"), std::string::npos);
}

TEST(WireHead, NoContentCarriesNoLengthOrType) {
  for (int status : {204, 304}) {
    auto r = json(status, "ignored");
    std::string head;
    EXPECT_FALSE(http::write_head(r, "No Content", {}, head));
    EXPECT_EQ(head.find("Content-Length"), std::string::npos) << status;
    EXPECT_EQ(head.find("Content-Type"), std::string::npos) << status;
  }
}

TEST(WireHead, ValuesCannotSplitTheResponse) {
  http::Response r;
  r.set("Location", "/x\r\nSet-Cookie: evil=1\n\0z");
  r.set("Allow", std::string("GET\0\r\nX: y", 10));
  std::string head;
  http::write_head(r, "OK", {}, head);
  EXPECT_EQ(head.find("\r\nSet-Cookie"), std::string::npos);
  EXPECT_EQ(head.find("\r\nX: y"), std::string::npos);
  EXPECT_NE(head.find("Location: /x  Set-Cookie: evil=1 "), std::string::npos);
  EXPECT_EQ(head.find('\0'), std::string::npos);
  // Exactly one blank line, at the end.
  EXPECT_EQ(head.find("\r\n\r\n"), head.size() - 4);
}

TEST(WireHead, OutOfRangeStatusIsA500) {
  auto r = json(42, "{}");
  std::string head;
  http::write_head(r, "Internal Server Error", {}, head);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 500 "));
  // The server takes the reason phrase for the status sent, not for 42.
  EXPECT_EQ(http::wire_status(42), 500);
  EXPECT_EQ(http::wire_status(1000), 500);
  EXPECT_EQ(http::wire_status(429), 429);
}
