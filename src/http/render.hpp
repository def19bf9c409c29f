#pragma once
// JSON shapes of the contract's objects (section 4), written with JsonWriter.

#include "core/json_writer.hpp"
#include "core/models.hpp"

namespace dvs::http {

void render_lead(core::JsonWriter& w, const core::Lead& l);
void render_invoice(core::JsonWriter& w, const core::Invoice& v);
// The api_key object; `now` decides the status. Never includes the secret.
void render_api_key(core::JsonWriter& w, const core::ApiKey& k, int64_t now);

}  // namespace dvs::http
