#pragma once
// `devsphere import leads|invoices`: reads .jsonl or .csv and stores every row
// in one transaction, so a bad row stores nothing. Errors name the file and
// line ("leads.csv:17: status must be one of ...").

#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "store/store.hpp"

namespace dvs::app {

enum class ImportKind { leads, invoices };

// Called now and then with bytes read so far and the file's size.
using ImportProgress = std::function<void(uint64_t done, uint64_t total)>;

// Returns the number of rows stored. invalid_request with the message
// "FILE:LINE: ..." for a bad row (or "FILE: ..." for a bad file); not_found
// for an unknown organization.
core::Result<size_t> import_file(store::Store& store, const core::Clock& clock,
                                 const std::string& org_id, ImportKind kind,
                                 const std::string& path, const ImportProgress& progress = {});

}  // namespace dvs::app
