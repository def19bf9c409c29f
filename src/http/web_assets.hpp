#pragma once
// The portal's files (web/), embedded at build time by cmake/embed_web.cmake.

#include <string_view>
#include <vector>

namespace dvs::http {

struct WebAsset {
  std::string_view name;  // file name in web/, e.g. "app.js"
  std::string_view data;
};

const std::vector<WebAsset>& web_assets();

// docs/openapi.json, embedded by cmake/embed_file.cmake.
std::string_view openapi_document();

}  // namespace dvs::http
