#pragma once
// The JSON of leads and invoices (contract section 4). Rendered once, when a
// row is written, and stored beside it: the list endpoints then copy stored
// documents instead of reading a dozen columns and encoding them on every
// request (docs/performance.md).

#include <string>

#include "core/models.hpp"

namespace dvs::core {

std::string lead_json(const Lead& l);
std::string invoice_json(const Invoice& v);

}  // namespace dvs::core
