#include "service/session_service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/ids.hpp"
#include "core/password.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace dvs;

TEST(CookieValue, FindsTheNamedCookie) {
  EXPECT_EQ(service::cookie_value("a=1; dvs_session=xyz; b=2", "dvs_session").value_or(""), "xyz");
  EXPECT_EQ(service::cookie_value("dvs_session=xyz", "dvs_session").value_or(""), "xyz");
  EXPECT_FALSE(service::cookie_value("xdvs_session=1; dvs_sessionx=2", "dvs_session"));
  EXPECT_FALSE(service::cookie_value("", "dvs_session"));
}

class SessionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("dvs-session-test-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    store = std::make_unique<store::SqliteStore>((dir / "t.db").string());
    ASSERT_TRUE(store->migrate());
    core::Organization org{core::new_id("org"), "Org", 1};
    ASSERT_TRUE(store->create_org(org).ok());
    core::User u{core::new_id("usr"), org.id, "ceo@example.com", core::Role::ceo,
                 *core::hash_password("correct horse"), 1};
    ASSERT_TRUE(store->create_user(u).ok());
    svc = std::make_unique<service::SessionService>(*store, limiter, clock);
  }
  void TearDown() override {
    svc.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::string cookie(const std::string& token) { return "dvs_session=" + token; }

  std::filesystem::path dir;
  core::ManualClock clock{1'800'000'000'000'000};
  core::LocalRateLimiter limiter{clock};
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<service::SessionService> svc;
};

TEST_F(SessionServiceTest, SignInIssuesAFreshTokenEachTime) {
  auto a = svc->sign_in("ceo@example.com", "correct horse", "1.2.3.4", "ua");
  auto b = svc->sign_in("CEO@example.com", "correct horse", "1.2.3.4", "ua");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->token.size(), 43u);
  EXPECT_NE(a->token, b->token);
  EXPECT_TRUE(svc->authenticate(cookie(a->token)));
  EXPECT_TRUE(svc->authenticate(cookie(b->token)));
}

TEST_F(SessionServiceTest, WrongPasswordAndUnknownUserLookTheSame) {
  auto a = svc->sign_in("ceo@example.com", "wrong", "1.2.3.4", "ua");
  auto b = svc->sign_in("nobody@example.com", "wrong", "1.2.3.4", "ua");
  ASSERT_FALSE(a);
  ASSERT_FALSE(b);
  EXPECT_EQ(a.error().code, core::Errc::unauthenticated);
  EXPECT_EQ(a.error().message, b.error().message);
}

TEST_F(SessionServiceTest, ThrottlesBeforeCheckingThePassword) {
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(svc->sign_in("ceo@example.com", "bad", "1.1.1.1", ""));
  auto r = svc->sign_in("ceo@example.com", "correct horse", "2.2.2.2", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::Errc::rate_limited);
  EXPECT_GE(r.error().retry_after_s, 1);
  clock.advance_us(61'000'000);  // the lock-out lasts at most a minute
  EXPECT_TRUE(svc->sign_in("ceo@example.com", "correct horse", "2.2.2.2", ""));
}

TEST_F(SessionServiceTest, SessionsEndWhenIdleOrTooOld) {
  auto s = svc->sign_in("ceo@example.com", "correct horse", "1.2.3.4", "ua");
  ASSERT_TRUE(s);
  clock.advance_us(29LL * 60 * 1'000'000);
  ASSERT_TRUE(svc->authenticate(cookie(s->token)));  // activity slides the idle timeout
  clock.advance_us(29LL * 60 * 1'000'000);
  ASSERT_TRUE(svc->authenticate(cookie(s->token)));
  clock.advance_us(31LL * 60 * 1'000'000);
  EXPECT_FALSE(svc->authenticate(cookie(s->token)));

  auto t = svc->sign_in("ceo@example.com", "correct horse", "1.2.3.4", "ua");
  ASSERT_TRUE(t);
  for (int i = 0; i < 25; ++i) {  // active every 29 minutes for over 12 hours
    clock.advance_us(29LL * 60 * 1'000'000);
    if (!svc->authenticate(cookie(t->token))) {
      EXPECT_GT(i, 23);
      return;
    }
  }
  FAIL() << "the absolute timeout did not end the session";
}

TEST_F(SessionServiceTest, SignOutEndsTheSessionOnTheServer) {
  auto s = svc->sign_in("ceo@example.com", "correct horse", "1.2.3.4", "ua");
  ASSERT_TRUE(s);
  ASSERT_TRUE(svc->sign_out(cookie(s->token)).ok());
  EXPECT_FALSE(svc->authenticate(cookie(s->token)));
}
