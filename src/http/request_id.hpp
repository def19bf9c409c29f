#pragma once
// Request ids ("req_" + 20 base62): a random per-thread prefix and a counter,
// so minting one costs no CSPRNG call on the hot path. Thread-safe.

#include <string>

namespace dvs::http {

std::string new_request_id();

}  // namespace dvs::http
