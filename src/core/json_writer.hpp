#pragma once
// A minimal streaming JSON writer that appends to a std::string. Used on the
// hot path instead of building a DOM (see ../shared/notes: a DOM costs 5-15 µs
// per page). Not thread-safe; one per response.

#include <cstdint>
#include <string>
#include <string_view>

namespace dvs::core {

// Appends `s` as a JSON string literal (quotes included), escaping as RFC 8259
// requires. Invalid UTF-8 bytes are replaced with U+FFFD.
void append_json_string(std::string& out, std::string_view s);

// Appends `v` in decimal.
void append_int(std::string& out, int64_t v);

// `s` with every byte that is not part of valid UTF-8 replaced by U+FFFD, so
// it can be stored in a UTF-8 database column (PostgreSQL refuses otherwise).
std::string to_valid_utf8(std::string_view s);

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}
  JsonWriter& begin_object() { sep(); out_.push_back('{'); first_ = true; return *this; }
  JsonWriter& end_object() { out_.push_back('}'); first_ = false; return *this; }
  JsonWriter& begin_array() { sep(); out_.push_back('['); first_ = true; return *this; }
  JsonWriter& end_array() { out_.push_back(']'); first_ = false; return *this; }
  // Writes "name": ; the next value call writes the value.
  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view v) { sep(); append_json_string(out_, v); return *this; }
  JsonWriter& integer(int64_t v);
  JsonWriter& boolean(bool v) { sep(); out_.append(v ? "true" : "false"); return *this; }
  JsonWriter& null() { sep(); out_.append("null"); return *this; }
  // Writes already-serialized JSON as a value.
  JsonWriter& raw(std::string_view json) { sep(); out_.append(json); return *this; }
  // An RFC 3339 timestamp string, or null when `has` is false.
  JsonWriter& timestamp(int64_t t);
  JsonWriter& optional_timestamp(bool has, int64_t t) { return has ? timestamp(t) : null(); }

 private:
  void sep() {
    if (after_key_) { after_key_ = false; return; }
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace dvs::core
