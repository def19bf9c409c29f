#pragma once
// A Bloom filter of the hashes of every stored API key, so that a request
// with a well-formed but unknown key (a scanner's guess, a deleted key) is
// answered 401 without a database read: issue #5 asks that a flood of bad
// keys cost less than good traffic.
//
// No false negatives: a key whose hash was added is always "maybe". False
// positives (about 0.1 % at the sized capacity) only cost the database
// look-up that every unknown key cost before. The probes are bits of the
// SHA-256 hash itself, which is uniform already.
//
// Not thread-safe: the owner (SqliteStore) keeps it current and guards it.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/api_key.hpp"

namespace dvs::core {

class KeyFilter {
 public:
  // Sized for `capacity` keys at 16 bits a key (rounded up to a power of
  // two, at least 64 Kibit): 2 MiB for a million keys.
  explicit KeyFilter(size_t capacity);

  void add(const KeyHash& h);
  // False only for a hash never added.
  bool may_contain(const KeyHash& h) const;

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  // Past its capacity the false-positive rate climbs: time to rebuild.
  bool full() const { return size_ > capacity_; }

  static constexpr int kProbes = 6;

 private:
  std::vector<uint64_t> words_;
  uint64_t mask_;  // bit index mask
  size_t size_ = 0;
  size_t capacity_;
};

}  // namespace dvs::core
