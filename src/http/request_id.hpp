#pragma once
// Request ids: "req_" + 20 base62 characters: 9 of time (µs, so ids sort by
// arrival, and the request log keeps its order within a second), 7 of a
// random per-thread prefix and 4 of a per-thread counter, so minting one costs
// no CSPRNG call on the hot path. Thread-safe.

#include <cstdint>
#include <string>

namespace dvs::http {

std::string new_request_id(int64_t now_us);

}  // namespace dvs::http
