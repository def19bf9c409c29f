#include "http/wire.hpp"

#include <charconv>

namespace dvs::http {

namespace {
void append_number(std::string& out, size_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ");
  const size_t at = out.size();
  out.append(value);
  for (size_t i = at; i < out.size(); ++i)
    if (out[i] == '\r' || out[i] == '\n' || out[i] == '\0') out[i] = ' ';
  out.append("\r\n");
}
}  // namespace

bool write_head(const Response& res, std::string_view reason, const Framing& framing,
                std::string& out) {
  const int status = wire_status(res.status);
  const bool no_content = status < 200 || status == 204 || status == 304;
  out.clear();
  out.append(framing.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<size_t>(status));
  out.push_back(' ');
  out.append(reason).append("\r\n");
  if (!no_content) append_header(out, "Content-Type", res.content_type);
  for (const auto& [name, value] : res.headers) append_header(out, name, value);
  if (!no_content) {
    out.append("Content-Length: ");
    append_number(out, res.body_view().size());
    out.append("\r\n");
  }
  // HTTP/1.1 stays open unless told; HTTP/1.0 closes unless told.
  if (framing.version == 10 && framing.keep_alive) out.append("Connection: keep-alive\r\n");
  if (framing.version != 10 && !framing.keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
  return !no_content && !framing.head_request;
}

}  // namespace dvs::http
