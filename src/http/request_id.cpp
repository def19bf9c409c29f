#include "http/request_id.hpp"

#include "core/base62.hpp"

namespace dvs::http {

std::string new_request_id(int64_t now_us) {
  thread_local std::string prefix = core::random_base62(7);
  thread_local uint64_t counter = 0;
  std::string id = "req_";
  id += core::base62_encode(static_cast<uint64_t>(now_us < 0 ? 0 : now_us), 9);
  id += prefix;
  id += core::base62_encode(counter++ % 14776336ull /* 62^4 */, 4);
  return id;
}

}  // namespace dvs::http
