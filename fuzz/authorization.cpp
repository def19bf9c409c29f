// The Authorization header and the other header parsers that run before any
// look-up (no KeyService): core::bearer_token, the key format check on the
// token, the session cookie parser, and redact_secrets (which must leave no
// key characters after any "dvs_live_").
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/api_key.hpp"
#include "fuzz_env.hpp"
#include "http/router.hpp"
#include "service/session_service.hpp"

using namespace dvs;

namespace {
bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view h(reinterpret_cast<const char*>(data), size);

  if (auto tok = core::bearer_token(h)) {
    fuzz::require(!tok->empty(), "bearer_token is never empty");
    fuzz::require(inside(*tok, h), "bearer_token points into the header");
    fuzz::require(tok->front() != ' ' && tok->back() != ' ' && tok->back() != '\t',
                  "bearer_token is trimmed");
    fuzz::require(h.size() > 7 && h[6] == ' ', "the scheme is followed by a space");
    for (size_t i = 0; i < 6; ++i)
      fuzz::require(std::tolower(static_cast<unsigned char>(h[i])) == "bearer"[i],
                    "the scheme is Bearer in any case");
    if (core::is_well_formed_key(*tok))
      fuzz::require(tok->size() == core::kKeyLen, "a well-formed token has 47 characters");
  }

  if (auto v = service::cookie_value(h, service::kSessionCookie))
    fuzz::require(inside(*v, h), "cookie_value points into the header");

  const std::string red = http::redact_secrets(h);
  fuzz::require(red.size() <= 512 + 10 * (512 / 9 + 1), "redact_secrets output is bounded");
  for (size_t p = red.find(core::kKeyPrefix); p != std::string::npos;
       p = red.find(core::kKeyPrefix, p + 1)) {
    const size_t after = p + core::kKeyPrefix.size();
    fuzz::require(after >= red.size() || !std::isalnum(static_cast<unsigned char>(red[after])),
                  "redact_secrets leaves no key characters after dvs_live_");
  }
  return 0;
}
