#pragma once
// Background writer of the request log and of keys' last_used_at.
//
// submit() only appends to an in-memory queue, under its thread's shard's
// mutex (no I/O), so logging never blocks a response. A writer thread flushes the queue in one
// transaction every `flush_interval` or when `batch_size` entries wait. Keys'
// last_used_at is kept to the minute: a key's first use in a new minute adds
// one UPDATE to the next batch, instead of a write per request.
//
// Thread-safe. Each submitting thread appends to a shard of the queue of its
// own (a mutex no other submitter takes), so the I/O threads never wait on
// each other or wake one another; the writer takes each shard's chunks
// in turn. When the queue holds `max_queue` entries (the database is
// down or far behind) new entries are dropped and counted, so memory stays
// bounded; stop() drains everything still queued. A batch the database
// refuses (down, disk full, read-only) after a few retries is dropped and
// counted too; the writer keeps going and writes again once the database
// takes writes. Failed last_used_at updates are kept for the next batch.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/models.hpp"
#include "store/store.hpp"

namespace dvs::store {

class RequestLogWriter {
 public:
  // A batch every 200 ms (sooner at batch_size entries), one transaction
  // per chunk of up to kChunk entries. Batches
  // were once 500 ms long because each rewrote the per-key index pages it
  // touched; since that index is filled in separate sorted passes (change
  // 19), 200 ms batches cost the same CPU and keep the queue, its memory and
  // an entry's wait smaller (docs/performance.md, change 25: at 70,000
  // requests a second a largest queue of 43-62k entries instead of 72k, and
  // 108-113 MB resident instead of 145 MB).
  struct Options {
    int flush_interval_ms = 200;
    size_t batch_size = 50'000;
    size_t max_queue = 1'000'000;
  };
  RequestLogWriter(Store& store, Options opts);
  ~RequestLogWriter();  // stops (and drains) if still running

  void start();
  void submit(core::RequestLogEntry entry);
  // Writes everything queued so far, then stops the thread. Idempotent.
  void stop();

  uint64_t written() const;
  uint64_t dropped() const;
  size_t queued() const;

 private:
  // The queue is a list of chunks of at most kChunk entries, each written in
  // its own transaction: a burst grows it a chunk at a time, never by
  // copying everything into a buffer twice the size (a vector's growth held
  // the old and the new buffer at once, up to 3x the entries' size, at the
  // very moment the queue peaked; docs/performance.md, change 31).
  static constexpr size_t kChunk = 4096;
  using Chunk = std::vector<core::RequestLogEntry>;

  // One shard per submitting thread (threads are spread over kShards by the
  // order they first submitted in). The I/O threads used to share one
  // mutex: queueing an entry took 7.8 % of a list request's CPU, 3.7 % now
  // (docs/performance.md, change 33).
  static constexpr size_t kShards = 8;
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<Chunk> chunks;
  };

  void run();
  // Moves every shard's chunks into `batch`.
  void take(std::vector<Chunk>& batch);
  // Keys' first use in a new minute, from the entries about to be written.
  void note_touches(const std::vector<Chunk>& batch);
  void flush(std::vector<Chunk>& batch);
  // Writes one chunk (retrying while the store is busy unless `retry` is
  // false); returns whether it was written.
  bool write_chunk(const Chunk& chunk, bool retry);

  Store& store_;
  Options opts_;
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> queued_{0};     // entries in the shards
  std::atomic<uint64_t> dropped_{0};  // beyond max_queue, or refused by the store
  mutable std::mutex mu_;             // the rest, and the writer's wake-up
  std::condition_variable cv_;
  // Writer thread only: touches not yet written, and each key's last minute.
  std::vector<std::pair<std::string, int64_t>> touches_;
  std::unordered_map<std::string, int64_t> last_minute_;  // key id -> minute last touched
  bool stopping_ = false;
  bool started_ = false;
  uint64_t written_ = 0;
  bool failing_ = false;                // the last batch was dropped
  uint64_t dropped_before_failing_ = 0;  // dropped_ when batches began to fail
  std::chrono::steady_clock::time_point last_drop_log_{};
  std::chrono::steady_clock::time_point last_trim_{};  // writer thread only
  static constexpr size_t kMaxPendingTouches = 100'000;
  std::thread thread_;
};

}  // namespace dvs::store
