#pragma once
// The api_key object (contract section 4). Leads and invoices are rendered
// when stored (core/render.hpp).

#include "core/json_writer.hpp"
#include "core/models.hpp"

namespace dvs::http {

// The api_key object; `now` decides the status. Never includes the secret.
void render_api_key(core::JsonWriter& w, const core::ApiKey& k, int64_t now);

}  // namespace dvs::http
