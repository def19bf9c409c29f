#pragma once
// The request log's per-key index on SQLite, kept in chunks (migration 10).
//
// An index pass (every 2 s) reads the rows logged since the last pass in log
// order and writes, for each key that made requests, one chunk per run of
// at most kMaxRows of that key's rows: one index row naming the chunk's
// sequence range, its time range, how many of its rows are still in the log,
// and the rows themselves as (seq, created_at) pairs in a compact blob. One
// index row a key a pass instead of one a request: a pass costs about 0.5 µs
// a logged row instead of 2.3–4.5 (docs/performance.md, change 36).
//
// A chunk's time range is at most kMaxSpanSeconds wide (a longer run is
// split), so a reader that wants the rows before a time t finds every chunk
// that can hold one among those whose newest row is at most t +
// kMaxSpanSeconds: a deep page seeks instead of scanning. A key's chunks
// cover disjoint sequence ranges (a chunk is a run of consecutive rows of the
// key in log order), so the row with sequence s is in the chunk with the
// smallest last_seq >= s, if any.
//
// Pure functions, no I/O; decode_chunk refuses a malformed blob instead of
// reading past it.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dvs::store {

struct LoggedRow {
  int64_t seq = 0;
  int64_t created_at = 0;
  friend bool operator==(const LoggedRow&, const LoggedRow&) = default;
};

struct LogChunk {
  int64_t first_seq = 0;
  int64_t last_seq = 0;
  int64_t min_created_at = 0;
  int64_t max_created_at = 0;
  int64_t rows = 0;
  std::string entries;  // encode_entries of the chunk's rows
};

inline constexpr int64_t kMaxChunkRows = 256;
inline constexpr int64_t kMaxSpanSeconds = 59;

// Splits one key's rows, in ascending seq order, into chunks: a new chunk
// starts when the current one holds kMaxChunkRows rows or when the next row
// would widen its time range beyond kMaxSpanSeconds. Appends to `out`.
void chunk_rows(std::span<const LoggedRow> rows, std::vector<LogChunk>& out);

// The blob: per row, the seq as a varint (the first row's whole, then the
// difference from the previous row's, which is positive) and created_at -
// min_created_at as a varint (0..kMaxSpanSeconds, one byte).
std::string encode_entries(std::span<const LoggedRow> rows, int64_t min_created_at);
// The rows of a chunk written by encode_entries; false (and `out` partly
// filled) when the blob is malformed. Appends to `out`.
bool decode_entries(std::string_view blob, int64_t min_created_at, std::vector<LoggedRow>& out);

}  // namespace dvs::store
