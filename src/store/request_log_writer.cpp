#include "store/request_log_writer.hpp"

#include <spdlog/spdlog.h>

#include <malloc.h>

#include <chrono>

namespace dvs::store {

RequestLogWriter::RequestLogWriter(Store& store, Options opts) : store_(store), opts_(opts) {}

RequestLogWriter::~RequestLogWriter() { stop(); }

void RequestLogWriter::start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void RequestLogWriter::submit(core::RequestLogEntry e) {
  // A place in the queue first: the bound holds across shards without a
  // shared lock.
  const size_t before = queued_.fetch_add(1, std::memory_order_relaxed);
  if (before >= opts_.max_queue) {
    queued_.fetch_sub(1, std::memory_order_relaxed);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  static std::atomic<unsigned> next_slot{0};
  thread_local const unsigned slot = next_slot.fetch_add(1, std::memory_order_relaxed);
  Shard& shard = shards_[slot % kShards];
  {
    std::lock_guard lock(shard.mu);
    if (shard.chunks.empty() || shard.chunks.back().size() >= kChunk) {
      shard.chunks.emplace_back();
      shard.chunks.back().reserve(kChunk);
    }
    shard.chunks.back().push_back(std::move(e));
  }
  // Sooner than the interval when a batch is full. Notified without the
  // writer's mutex, the wake-up can be missed; the interval bounds that.
  if (before + 1 == opts_.batch_size) cv_.notify_one();
}

void RequestLogWriter::run() {
  std::vector<Chunk> batch;
  for (;;) {
    bool last;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(opts_.flush_interval_ms), [&] {
        return stopping_ || queued_.load(std::memory_order_relaxed) >= opts_.batch_size;
      });
      last = stopping_;
    }
    take(batch);
    flush(batch);
    if (last && queued_.load() == 0) return;
  }
}

void RequestLogWriter::take(std::vector<Chunk>& batch) {
  size_t n = 0;
  for (Shard& shard : shards_) {
    std::vector<Chunk> chunks;
    {
      std::lock_guard lock(shard.mu);
      chunks.swap(shard.chunks);
    }
    for (Chunk& chunk : chunks) {
      n += chunk.size();
      batch.push_back(std::move(chunk));
    }
  }
  queued_.fetch_sub(n, std::memory_order_relaxed);
}

void RequestLogWriter::note_touches(const std::vector<Chunk>& batch) {
  // Forget keys idle for long so the map does not grow without bound.
  if (last_minute_.size() > 100'000) last_minute_.clear();
  for (const Chunk& chunk : batch)
    for (const auto& e : chunk) {
      const int64_t minute = e.created_at / 60;
      auto [it, inserted] = last_minute_.try_emplace(e.key_id, minute);
      if (inserted || it->second < minute) {
        it->second = minute;
        touches_.emplace_back(e.key_id, e.created_at);
      }
    }
}

void RequestLogWriter::flush(std::vector<Chunk>& batch) {
  note_touches(batch);
  // After a chunk the store refused despite the retries, the rest of the
  // batch is tried once each: a full disk must not hold the writer for the
  // retries of every chunk.
  bool retry = true;
  for (Chunk& chunk : batch) {
    if (chunk.empty()) continue;
    retry = write_chunk(chunk, retry);
    Chunk().swap(chunk);  // its memory back at once, not after the batch
  }
  batch.clear();
  if (!touches_.empty()) {
    // Failed touches are kept for the next flush (last_used_at only ever
    // rises, so a late write is right), within a bound, and not once
    // stopping: the last flush must end.
    auto st = store_.touch_keys(touches_);
    bool keep = false;
    if (!st.ok()) {
      std::lock_guard lock(mu_);
      keep = !stopping_ && touches_.size() <= kMaxPendingTouches;
    }
    if (!keep) touches_.clear();
  }
  // Give a burst's memory back rather than keep the high-water mark of the
  // busiest moment for the life of the process: the entries' strings,
  // allocated on the I/O threads, leave free holes in their malloc arenas
  // that glibc only returns to the system when asked. Every two seconds at
  // most: a trim costs well under a millisecond.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_trim_ >= std::chrono::seconds(2)) {
    last_trim_ = now;
    ::malloc_trim(0);
  }
}

bool RequestLogWriter::write_chunk(const Chunk& chunk, bool retry) {
  // Retry a few times (the database may be busy with an import); entries
  // are only counted as dropped when it stays unavailable.
  core::Status st;
  for (int attempt = 0; attempt < (retry ? 5 : 1); ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(50 << attempt));
    st = store_.append_requests(chunk);
    if (st.ok()) break;
  }
  std::lock_guard lock(mu_);
  if (st.ok()) {
    written_ += chunk.size();
    if (failing_) {
      failing_ = false;
      spdlog::warn("request log: writing again ({} entries dropped while the database refused "
                   "writes)",
                   dropped_.load() - dropped_before_failing_);
    }
  } else {
    // A full disk or read-only database fails every chunk for as long as it
    // lasts: the first drop is logged, then one line a minute.
    const auto now = std::chrono::steady_clock::now();
    const bool first = !failing_;
    if (first) {
      failing_ = true;
      dropped_before_failing_ = dropped_.load();
    }
    const uint64_t dropped = dropped_.fetch_add(chunk.size()) + chunk.size();
    if (first || now - last_drop_log_ >= std::chrono::minutes(1)) {
      last_drop_log_ = now;
      spdlog::error("request log: dropped {} entries ({} in all): {}", chunk.size(), dropped,
                    st.error().message);
    }
  }
  return st.ok();
}

void RequestLogWriter::stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

uint64_t RequestLogWriter::written() const {
  std::lock_guard lock(mu_);
  return written_;
}

size_t RequestLogWriter::queued() const { return queued_.load(); }

uint64_t RequestLogWriter::dropped() const { return dropped_.load(); }

}  // namespace dvs::store
