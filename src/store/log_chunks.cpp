#include "store/log_chunks.hpp"

#include <algorithm>

namespace dvs::store {
namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;  // more than ten bytes
}

}  // namespace

std::string encode_entries(std::span<const LoggedRow> rows, int64_t min_created_at) {
  std::string out;
  out.reserve(rows.size() * 4);
  int64_t prev = 0;
  for (const auto& r : rows) {
    put_varint(out, static_cast<uint64_t>(r.seq - prev));
    put_varint(out, static_cast<uint64_t>(r.created_at - min_created_at));
    prev = r.seq;
  }
  return out;
}

bool decode_entries(std::string_view blob, int64_t min_created_at, std::vector<LoggedRow>& out) {
  int64_t seq = 0;
  while (!blob.empty()) {
    uint64_t d = 0, t = 0;
    if (!get_varint(blob, d) || !get_varint(blob, t)) return false;
    if (t > static_cast<uint64_t>(kMaxSpanSeconds)) return false;
    seq += static_cast<int64_t>(d);
    out.push_back({seq, min_created_at + static_cast<int64_t>(t)});
  }
  return true;
}

void chunk_rows(std::span<const LoggedRow> rows, std::vector<LogChunk>& out) {
  size_t begin = 0;
  while (begin < rows.size()) {
    int64_t lo = rows[begin].created_at, hi = lo;
    size_t end = begin + 1;
    while (end < rows.size() && static_cast<int64_t>(end - begin) < kMaxChunkRows) {
      const int64_t t = rows[end].created_at;
      if (std::max(hi, t) - std::min(lo, t) > kMaxSpanSeconds) break;
      lo = std::min(lo, t);
      hi = std::max(hi, t);
      ++end;
    }
    const auto run = rows.subspan(begin, end - begin);
    out.push_back(LogChunk{run.front().seq, run.back().seq, lo, hi,
                           static_cast<int64_t>(run.size()), encode_entries(run, lo)});
    begin = end;
  }
}

}  // namespace dvs::store
