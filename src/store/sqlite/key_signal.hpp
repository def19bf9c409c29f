#pragma once
// A change counter for API keys that every process using one SQLite
// database shares, so that the key epoch (migration 4) need not be read from
// the database on every /v1 request.
//
// The counter lives in a one-page file beside the database (`<db>-keysig`),
// mapped shared by each process that opens the database: the server, the
// CLI's `keys revoke` and `keys rotate`, a second server. A store raises it
// after it commits a change to a key; a reader that sees the same value as
// when it last read the epoch knows that no store has committed a key change
// since, and reuses that epoch without a read transaction.
//
// A change made without a store (an operator's SQL, a process killed between
// its commit and its raise) raises the epoch but not this counter: readers
// therefore also re-read the epoch once it is older than a bound
// (SqliteStore::kEpochRecheckMs), which bounds how long such a change can go
// unseen. Changes through the API and the CLI are seen by the next request.
//
// Where the file cannot be created or mapped (a read-only file system),
// shared() is false and SqliteStore reads the epoch on every request, as
// before.

#include <atomic>
#include <cstdint>
#include <string>

namespace dvs::store {

class KeySignal {
 public:
  // Maps `<db_path>-keysig`, creating it when missing. Never throws: without
  // the file, shared() is false.
  explicit KeySignal(const std::string& db_path);
  ~KeySignal();
  KeySignal(const KeySignal&) = delete;
  KeySignal& operator=(const KeySignal&) = delete;

  // True when the counter is mapped; load() and raise() need it.
  bool shared() const { return shared_ != nullptr; }
  // Changes whenever any store (this process's or another's) has raised it;
  // 0 when not shared().
  uint64_t load() const;
  // After a committed change to a key; nothing when not shared().
  void raise();

 private:
  uint64_t* shared_ = nullptr;  // in the mapping; accessed with std::atomic_ref
  void* map_ = nullptr;
};

}  // namespace dvs::store
