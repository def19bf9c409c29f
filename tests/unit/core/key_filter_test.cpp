#include "core/key_filter.hpp"

#include <gtest/gtest.h>

#include "core/api_key.hpp"

using namespace dvs::core;

namespace {
// Real SHA-256 hashes, as the store's are: the filter relies on their bits
// being uniform.
KeyHash hash_of(const std::string& s) { return KeyHasher().hash(s); }
}  // namespace

TEST(KeyFilter, EveryAddedHashIsFound) {
  KeyFilter f(10'000);
  for (int i = 0; i < 10'000; ++i) f.add(hash_of("key-" + std::to_string(i)));
  for (int i = 0; i < 10'000; ++i)
    ASSERT_TRUE(f.may_contain(hash_of("key-" + std::to_string(i)))) << i;
  EXPECT_EQ(f.size(), 10'000u);
  EXPECT_FALSE(f.full());
}

TEST(KeyFilter, FewUnknownHashesPassAtCapacity) {
  KeyFilter f(20'000);
  for (int i = 0; i < 20'000; ++i) f.add(hash_of("key-" + std::to_string(i)));
  int passed = 0;
  for (int i = 0; i < 100'000; ++i) passed += f.may_contain(hash_of("other-" + std::to_string(i)));
  // About 0.1 % expected at 16 bits a key and 6 probes; fixed inputs, so the
  // figure is the same on every run.
  EXPECT_LT(passed, 500) << passed << " of 100000 unknown hashes passed";
}

TEST(KeyFilter, AnEmptyFilterRejectsEverything) {
  KeyFilter f(0);
  EXPECT_FALSE(f.may_contain(hash_of("anything")));
  f.add(hash_of("one"));
  EXPECT_TRUE(f.may_contain(hash_of("one")));
  EXPECT_TRUE(f.full()) << "over a capacity of zero";
}
