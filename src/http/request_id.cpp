#include "http/request_id.hpp"

#include "core/base62.hpp"

namespace dvs::http {

std::string new_request_id() {
  thread_local std::string prefix = core::random_base62(12);
  thread_local uint64_t counter = 0;
  std::string id = "req_";
  id += prefix;
  id += core::base62_encode(counter++ % 218340105584896ull /* 62^8 */, 8);
  return id;
}

}  // namespace dvs::http
