#include "core/api_key.hpp"

#include <gtest/gtest.h>

#include <set>

#include "core/base62.hpp"

using namespace dvs::core;

TEST(Crc32, MatchesZlibCheckValue) { EXPECT_EQ(crc32("123456789"), 0xCBF43926u); }

TEST(Base62, EncodesMostSignificantFirstWithPadding) {
  EXPECT_EQ(base62_encode(0, 6), "000000");
  EXPECT_EQ(base62_encode(61, 2), "0z");
  EXPECT_EQ(base62_encode(62, 1), "10");
  EXPECT_EQ(base62_encode(0xCBF43926u, 6), "3jZRME");
}

TEST(ApiKeyChecksum, KnownVectors) {
  // Computed independently with Python's zlib.crc32 and the 0-9A-Za-z alphabet.
  EXPECT_EQ(key_checksum(std::string(32, '0')), "2wjyrI");
  EXPECT_EQ(key_checksum("abcdefghijklmnopqrstuvwxyzABCDEF"), "1mVgZW");
  EXPECT_EQ(key_checksum(std::string(32, 'z')), "4W8LJS");
}

TEST(ApiKeyGenerate, HasTheContractFormat) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string k = generate_key_secret();
    ASSERT_EQ(k.size(), 47u);
    ASSERT_EQ(k.substr(0, 9), "dvs_live_");
    ASSERT_TRUE(is_base62(k.substr(9)));
    ASSERT_TRUE(is_well_formed_key(k)) << k;
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(ApiKeyParse, AcceptsKnownGoodKey) {
  EXPECT_TRUE(is_well_formed_key("dvs_live_" + std::string(32, '0') + "2wjyrI"));
}

TEST(ApiKeyParse, RejectsBadChecksum) {
  EXPECT_FALSE(is_well_formed_key("dvs_live_" + std::string(32, '0') + "2wjyrJ"));
  std::string k = generate_key_secret();
  k[20] = k[20] == 'a' ? 'b' : 'a';  // a typo in the random part
  EXPECT_FALSE(is_well_formed_key(k));
}

TEST(ApiKeyParse, RejectsWrongPrefixLengthAndAlphabet) {
  std::string good = "dvs_live_" + std::string(32, '0') + "2wjyrI";
  EXPECT_FALSE(is_well_formed_key("dvs_test_" + good.substr(9)));
  EXPECT_FALSE(is_well_formed_key(good + "x"));
  EXPECT_FALSE(is_well_formed_key(good.substr(0, 46)));
  EXPECT_FALSE(is_well_formed_key(""));
  std::string bad = good;
  bad[15] = '-';
  EXPECT_FALSE(is_well_formed_key(bad));
  bad[15] = '\0';
  EXPECT_FALSE(is_well_formed_key(bad));
}

TEST(ApiKeyHint, IsPrefixAndFirstFourRandomCharacters) {
  EXPECT_EQ(key_hint("dvs_live_AbCd" + std::string(28, '0') + "000000"), "dvs_live_AbCd");
}

TEST(KeyHasher, PlainIsSha256AndPepperChangesIt) {
  KeyHasher plain, peppered("pepper");
  auto a = plain.hash("abc");
  // SHA-256("abc") begins ba7816bf.
  EXPECT_EQ(a[0], 0xba);
  EXPECT_EQ(a[1], 0x78);
  EXPECT_FALSE(hash_equal(a, peppered.hash("abc")));
  EXPECT_TRUE(hash_equal(peppered.hash("abc"), peppered.hash("abc")));
}

TEST(BearerToken, SchemeIsCaseInsensitive) {
  EXPECT_EQ(bearer_token("Bearer abc").value_or(""), "abc");
  EXPECT_EQ(bearer_token("bearer abc").value_or(""), "abc");
  EXPECT_EQ(bearer_token("BEARER   abc ").value_or(""), "abc");
}

TEST(BearerToken, RejectsOtherSchemesAndEmpty) {
  EXPECT_FALSE(bearer_token("Token abc"));
  EXPECT_FALSE(bearer_token("Bearer"));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_FALSE(bearer_token("Bearerabc"));
  EXPECT_FALSE(bearer_token(""));
}

TEST(RedactKeys, RemovesKeysWithAndWithoutPrefix) {
  const std::string key = generate_key_secret();
  const std::string body = key.substr(9);
  EXPECT_EQ(redact_keys("/v1/leads/" + key), "/v1/leads/dvs_live_[REDACTED]");
  EXPECT_EQ(redact_keys("/v1/" + body + "/x"), "/v1/[REDACTED]/x");
  EXPECT_EQ(redact_keys("?" + body + "=1"), "?[REDACTED]=1");
  EXPECT_EQ(redact_keys("x" + body), "[REDACTED]");  // inside a longer run
  EXPECT_EQ(redact_keys("dvs_live_abc"), "dvs_live_[REDACTED]");
}

TEST(RedactKeys, LeavesOrdinaryTextAlone) {
  EXPECT_EQ(redact_keys("/v1/leads/lead_0DhW7s2aB1234567890abcde"),
            "/v1/leads/lead_0DhW7s2aB1234567890abcde");
  std::string not_key(38, 'a');  // 38 characters without a matching checksum
  EXPECT_EQ(redact_keys(not_key), not_key);
  EXPECT_EQ(redact_keys("caf\xC3\xA9 ok"), "caf\xC3\xA9 ok");
}
