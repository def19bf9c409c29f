#include "app/importer.hpp"

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/ids.hpp"
#include "core/json_writer.hpp"
#include "core/models.hpp"
#include "core/time.hpp"

namespace dvs::app {

namespace json = boost::json;
using core::Errc;
using core::make_error;

namespace {

constexpr int64_t kMaxMoney = 1'000'000'000'000'000;  // 10^15 cents

// A row as field name -> JSON value, whatever the file format.
using Row = json::object;

struct RowError {
  std::string message;
};

// ---- field readers: each throws RowError with a message naming the field ----

const json::value* field(const Row& r, std::string_view name) {
  auto it = r.find(name);
  if (it == r.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

std::string get_string(const Row& r, std::string_view name, bool required, size_t max_len) {
  const json::value* v = field(r, name);
  if (!v) {
    if (required) throw RowError{std::string(name) + " is required"};
    return {};
  }
  if (!v->is_string()) throw RowError{std::string(name) + " must be a string"};
  std::string s(v->as_string());
  if (required && s.find_first_not_of(" \t") == std::string::npos)
    throw RowError{std::string(name) + " must not be empty"};
  if (s.size() > max_len)
    throw RowError{std::string(name) + " is longer than " + std::to_string(max_len) + " bytes"};
  for (unsigned char c : s)
    if (c < 0x20 && c != '\t') throw RowError{std::string(name) + " contains control characters"};
  if (core::to_valid_utf8(s) != s) throw RowError{std::string(name) + " is not valid UTF-8"};
  return s;
}

std::optional<int64_t> get_int(const Row& r, std::string_view name, int64_t min, int64_t max) {
  const json::value* v = field(r, name);
  if (!v) return std::nullopt;
  int64_t x;
  if (v->is_int64()) x = v->as_int64();
  else if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX))
    x = static_cast<int64_t>(v->as_uint64());
  else if (v->is_string()) {
    // CSV cells arrive as strings.
    const auto& s = v->as_string();
    if (s.empty()) return std::nullopt;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == s.size() || s.size() > 19) throw RowError{std::string(name) + " must be an integer"};
    x = 0;
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') throw RowError{std::string(name) + " must be an integer"};
      // 19 digits can exceed INT64_MAX: saturate, and the range check refuses it.
      const int d = s[i] - '0';
      x = x > (INT64_MAX - d) / 10 ? INT64_MAX : x * 10 + d;
    }
    if (s[0] == '-') x = -x;
  } else {
    throw RowError{std::string(name) + " must be an integer"};
  }
  if (x < min || x > max)
    throw RowError{std::string(name) + " must be from " + std::to_string(min) + " to " +
                   std::to_string(max)};
  return x;
}

std::optional<int64_t> get_time(const Row& r, std::string_view name) {
  std::string s = get_string(r, name, false, 64);
  if (s.empty()) return std::nullopt;
  auto t = core::parse_rfc3339(s);
  if (!t) throw RowError{std::string(name) + " must be an RFC 3339 timestamp"};
  return t;
}

std::string get_currency(const Row& r) {
  std::string c = get_string(r, "currency", false, 3);
  if (c.empty()) return "USD";
  if (c.size() != 3 || !std::all_of(c.begin(), c.end(), [](char x) { return x >= 'A' && x <= 'Z'; }))
    throw RowError{"currency must be a three-letter ISO 4217 code such as USD"};
  return c;
}

std::string get_id(const Row& r, std::string_view prefix) {
  std::string id = get_string(r, "id", false, 100);
  if (id.empty()) return core::new_id(prefix);
  if (!core::is_valid_id(id, prefix))
    throw RowError{"id must look like " + std::string(prefix) + "_ followed by letters and digits"};
  return id;
}

void check_fields(const Row& r, std::initializer_list<std::string_view> known,
                  std::string_view object) {
  for (const auto& kv : r) {
    std::string_view k = kv.key();
    if (k == "object") {
      if (!kv.value().is_string() || kv.value().as_string() != object)
        throw RowError{"object must be \"" + std::string(object) + "\""};
      continue;
    }
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw RowError{"unknown field '" + std::string(k.substr(0, 40)) + "'"};
  }
}

template <size_t N>
std::string get_status(const Row& r, const std::string_view (&allowed)[N], std::string_view dflt) {
  std::string s = get_string(r, "status", false, 20);
  if (s.empty()) return std::string(dflt);
  for (auto a : allowed)
    if (a == s) return s;
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  throw RowError{"status must be one of: " + list};
}

core::Lead parse_lead(const Row& r, const std::string& org_id, int64_t now) {
  check_fields(r, {"id", "name", "email", "phone", "company", "status", "source", "value_cents",
                   "currency", "created_at", "updated_at"},
               "lead");
  core::Lead l;
  l.id = get_id(r, "lead");
  l.org_id = org_id;
  l.name = get_string(r, "name", true, 200);
  l.email = get_string(r, "email", false, 320);
  l.phone = get_string(r, "phone", false, 50);
  l.company = get_string(r, "company", false, 200);
  l.status = get_status(r, core::kLeadStatuses, "new");
  l.source = get_string(r, "source", false, 100);
  l.value_cents = get_int(r, "value_cents", 0, kMaxMoney).value_or(0);
  l.currency = get_currency(r);
  l.created_at = get_time(r, "created_at").value_or(now);
  l.updated_at = get_time(r, "updated_at").value_or(l.created_at);
  return l;
}

core::Invoice parse_invoice(const Row& r, const std::string& org_id, int64_t now) {
  check_fields(r, {"id", "number", "customer_name", "customer_email", "lead_id", "status",
                   "currency", "subtotal_cents", "tax_cents", "total_cents", "amount_paid_cents",
                   "issued_at", "due_at", "paid_at", "line_items", "created_at", "updated_at"},
               "invoice");
  core::Invoice v;
  v.id = get_id(r, "inv");
  v.org_id = org_id;
  v.number = get_string(r, "number", true, 64);
  v.customer_name = get_string(r, "customer_name", true, 200);
  v.customer_email = get_string(r, "customer_email", false, 320);
  std::string lead = get_string(r, "lead_id", false, 100);
  if (!lead.empty()) {
    if (!core::is_valid_id(lead, "lead")) throw RowError{"lead_id must be a lead id (lead_...)"};
    v.lead_id = lead;
  }
  v.status = get_status(r, core::kInvoiceStatuses, "draft");
  v.currency = get_currency(r);

  // line_items: an array, or (from CSV) a string holding one.
  json::array items;
  if (const json::value* li = field(r, "line_items")) {
    if (li->is_array()) {
      items = li->as_array();
    } else if (li->is_string()) {
      if (!li->as_string().empty()) {
        boost::system::error_code ec;
        json::value parsed = json::parse(li->as_string(), ec);
        if (ec || !parsed.is_array()) throw RowError{"line_items must be a JSON array"};
        items = parsed.as_array();
      }
    } else {
      throw RowError{"line_items must be an array"};
    }
  }
  if (items.size() > 1000) throw RowError{"line_items has more than 1000 entries"};
  std::string li_json;
  core::JsonWriter w(li_json);
  w.begin_array();
  int64_t sum = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = "line_items[" + std::to_string(i) + "]";
    if (!items[i].is_object()) throw RowError{where + " must be an object"};
    const Row& it = items[i].as_object();
    for (const auto& kv : it) {
      std::string_view k = kv.key();
      if (k != "description" && k != "quantity" && k != "unit_price_cents" && k != "amount_cents")
        throw RowError{where + " has an unknown field '" + std::string(k.substr(0, 40)) + "'"};
    }
    std::string desc;
    int64_t qty, unit;
    try {
      desc = get_string(it, "description", true, 500);
      qty = get_int(it, "quantity", 1, 1'000'000).value_or(1);
      unit = get_int(it, "unit_price_cents", -kMaxMoney, kMaxMoney).value_or(0);
    } catch (const RowError& e) {
      throw RowError{where + "." + e.message};
    }
    if (unit != 0 && (qty > kMaxMoney / (unit < 0 ? -unit : unit)))
      throw RowError{where + " amount is too large"};
    int64_t amount = qty * unit;
    if (auto given = get_int(it, "amount_cents", -kMaxMoney, kMaxMoney); given && *given != amount)
      throw RowError{where + ".amount_cents must equal quantity * unit_price_cents"};
    sum += amount;
    if (sum > kMaxMoney || sum < -kMaxMoney) throw RowError{"line_items total is too large"};
    w.begin_object().key("description").string(desc).key("quantity").integer(qty);
    w.key("unit_price_cents").integer(unit).key("amount_cents").integer(amount).end_object();
  }
  w.end_array();
  v.line_items_json = std::move(li_json);

  auto subtotal = get_int(r, "subtotal_cents", 0, kMaxMoney);
  if (subtotal && !items.empty() && *subtotal != sum)
    throw RowError{"subtotal_cents must equal the sum of the line items' amount_cents"};
  v.subtotal_cents = subtotal.value_or(sum < 0 ? 0 : sum);
  v.tax_cents = get_int(r, "tax_cents", 0, kMaxMoney).value_or(0);
  auto total = get_int(r, "total_cents", 0, 2 * kMaxMoney);
  if (total && *total != v.subtotal_cents + v.tax_cents)
    throw RowError{"total_cents must equal subtotal_cents + tax_cents"};
  v.total_cents = v.subtotal_cents + v.tax_cents;
  v.amount_paid_cents = get_int(r, "amount_paid_cents", 0, 2 * kMaxMoney).value_or(0);
  v.created_at = get_time(r, "created_at").value_or(now);
  v.updated_at = get_time(r, "updated_at").value_or(v.created_at);
  v.issued_at = get_time(r, "issued_at").value_or(v.created_at);
  v.due_at = get_time(r, "due_at").value_or(v.issued_at + 30 * 86400);
  v.paid_at = get_time(r, "paid_at");
  return v;
}

// ---- CSV (RFC 4180: quoted fields may hold commas, quotes and newlines) ----

// Reads one record starting at physical line `line`; advances `line` past it.
// Returns false at end of input. Throws RowError for an unterminated quote.
bool read_csv_record(std::istream& in, std::vector<std::string>& fields, size_t& line) {
  fields.clear();
  std::string cur;
  bool in_quotes = false, any = false, was_quoted = false;
  int c;
  while ((c = in.get()) != EOF) {
    any = true;
    char ch = static_cast<char>(c);
    if (in_quotes) {
      if (ch == '"') {
        if (in.peek() == '"') {
          cur.push_back('"');
          in.get();
        } else {
          in_quotes = false;
        }
      } else {
        if (ch == '\n') ++line;
        cur.push_back(ch);
      }
      continue;
    }
    if (ch == '"' && cur.empty() && !was_quoted) {
      in_quotes = was_quoted = true;
    } else if (ch == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
      was_quoted = false;
    } else if (ch == '\r') {
      // part of CRLF; dropped
    } else if (ch == '\n') {
      ++line;
      fields.push_back(std::move(cur));
      return true;
    } else {
      cur.push_back(ch);
    }
  }
  if (in_quotes) throw RowError{"unterminated quoted field"};
  if (!any) return false;
  fields.push_back(std::move(cur));
  ++line;
  return true;
}

bool blank_record(const std::vector<std::string>& f) { return f.size() == 1 && f[0].empty(); }

}  // namespace

core::Result<size_t> import_file(store::Store& store, const core::Clock& clock,
                                 const std::string& org_id, ImportKind kind,
                                 const std::string& path, const ImportProgress& progress) {
  if (auto org = store.get_org(org_id); !org) {
    if (org.error().code == Errc::not_found)
      return make_error(Errc::not_found, "no such organization: " + org_id.substr(0, 64));
    return org.error();
  }
  const bool csv = path.ends_with(".csv") || path.ends_with(".CSV");
  const bool jsonl = path.ends_with(".jsonl") || path.ends_with(".json") ||
                     path.ends_with(".ndjson");
  if (!csv && !jsonl)
    return make_error(Errc::invalid_request, path + ": the file must end in .jsonl or .csv");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::invalid_request, path + ": cannot open the file");
  std::error_code fec;
  const uint64_t total = std::filesystem::file_size(path, fec);
  const int64_t now = clock.now_s();

  std::vector<core::Lead> leads;
  std::vector<core::Invoice> invoices;
  std::map<std::string, size_t> seen_ids;  // id -> line, to catch duplicates in one file
  size_t line = 0;
  size_t row_line = 0;
  uint64_t last_report = 0;

  auto add_row = [&](const Row& row) {
    if (kind == ImportKind::leads) {
      auto l = parse_lead(row, org_id, now);
      if (auto [it, fresh] = seen_ids.emplace(l.id, row_line); !fresh)
        throw RowError{"id " + l.id + " appears again (first on line " +
                       std::to_string(it->second) + ")"};
      leads.push_back(std::move(l));
    } else {
      auto v = parse_invoice(row, org_id, now);
      if (auto [it, fresh] = seen_ids.emplace(v.id, row_line); !fresh)
        throw RowError{"id " + v.id + " appears again (first on line " +
                       std::to_string(it->second) + ")"};
      if (v.lead_id) {
        auto lead = store.get_lead(org_id, *v.lead_id);
        if (!lead) {
          if (lead.error().code != Errc::not_found) throw RowError{"database error"};
          throw RowError{"lead_id " + *v.lead_id + " is not a lead of this organization"};
        }
      }
      invoices.push_back(std::move(v));
    }
  };
  auto report = [&] {
    if (!progress || total == 0) return;
    auto pos = in.tellg();
    uint64_t done = pos < 0 ? total : static_cast<uint64_t>(pos);
    if (done - last_report >= total / 100 || done == total) {
      last_report = done;
      progress(done, total);
    }
  };

  try {
    if (jsonl) {
      std::string text;
      while (std::getline(in, text)) {
        row_line = ++line;
        if (!text.empty() && text.back() == '\r') text.pop_back();
        if (text.find_first_not_of(" \t") == std::string::npos) continue;
        boost::system::error_code ec;
        json::value v = json::parse(text, ec);
        if (ec) throw RowError{"not valid JSON (" + ec.message() + ")"};
        if (!v.is_object()) throw RowError{"each line must be a JSON object"};
        add_row(v.as_object());
        report();
      }
    } else {
      std::vector<std::string> header;
      if (!read_csv_record(in, header, line) || blank_record(header)) {
        row_line = 1;
        throw RowError{"the header row is missing"};
      }
      if (!header.empty() && header[0].starts_with("\xEF\xBB\xBF")) header[0].erase(0, 3);
      for (auto& h : header)
        while (!h.empty() && h.back() == ' ') h.pop_back();
      std::vector<std::string> fields;
      for (;;) {
        row_line = line + 1;
        if (!read_csv_record(in, fields, line)) break;
        if (blank_record(fields)) continue;
        if (fields.size() != header.size())
          throw RowError{"expected " + std::to_string(header.size()) + " fields, found " +
                         std::to_string(fields.size())};
        Row row;
        for (size_t i = 0; i < header.size(); ++i) {
          if (header[i].empty()) continue;
          if (!fields[i].empty()) row[header[i]] = fields[i];
        }
        add_row(row);
        report();
      }
    }
  } catch (const RowError& e) {
    return make_error(Errc::invalid_request,
                      path + ":" + std::to_string(row_line) + ": " + e.message);
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_request,
                      path + ":" + std::to_string(row_line) + ": " + e.what());
  }
  if (progress && total) progress(total, total);

  core::Status st = kind == ImportKind::leads ? store.upsert_leads(leads)
                                              : store.upsert_invoices(invoices);
  if (!st) {
    if (st.error().code == Errc::conflict)
      return make_error(Errc::invalid_request,
                        path + ": an id in the file belongs to another organization");
    return st.error();
  }
  return kind == ImportKind::leads ? leads.size() : invoices.size();
}

}  // namespace dvs::app
