#pragma once
// Change counters that every process using one SQLite database shares, so
// that the epochs the in-process caches are checked against (the key epoch of
// migration 4, the document epoch of migration 8) need not be read from the
// database on every /v1 request.
//
// The counters live in a one-page file beside the database (`<db>-keysig`,
// named when it held the key counter only), mapped shared by each process
// that opens the database: the server, the CLI's `keys revoke`, `keys
// rotate` and `import`, a second server. A store raises a counter after it
// commits a change of its kind; a reader that sees the same value as when it
// last read that epoch knows that no store has committed such a change since,
// and reuses the epoch without a read transaction.
//
// A change made without a store (an operator's SQL, a process killed between
// its commit and its raise) raises the epoch but not the counter: readers
// therefore also re-read an epoch once it is older than a bound
// (SqliteStore::kEpochRecheckMs), which bounds how long such a change can go
// unseen. Changes through the API and the CLI are seen by the next request.
//
// Where the file cannot be created or mapped (a read-only file system),
// shared() is false and SqliteStore reads the epochs on every request.

#include <atomic>
#include <cstdint>
#include <string>

namespace dvs::store {

class ChangeSignal {
 public:
  enum class Counter { keys = 0, documents = 1 };

  // Maps `<db_path>-keysig`, creating it when missing. Never throws: without
  // the file, shared() is false.
  explicit ChangeSignal(const std::string& db_path);
  ~ChangeSignal();
  ChangeSignal(const ChangeSignal&) = delete;
  ChangeSignal& operator=(const ChangeSignal&) = delete;

  // True when the counters are mapped; load() and raise() need them.
  bool shared() const { return map_ != nullptr; }
  // Changes whenever any store (this process's or another's) has raised it;
  // 0 when not shared().
  uint64_t load(Counter c) const;
  // After a committed change of that kind; nothing when not shared().
  void raise(Counter c);

 private:
  uint64_t* slot(Counter c) const;  // in the mapping; accessed with std::atomic_ref
  void* map_ = nullptr;
};

}  // namespace dvs::store
