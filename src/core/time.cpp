#include "core/time.hpp"


namespace dvs::core {

namespace {
// Howard Hinnant's civil-from-days and days-from-civil algorithms.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
}  // namespace

void append_rfc3339(std::string& out, int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  if (y < 0 || y > 9999) {  // outside RFC 3339's four-digit years: clamp
    out.append(y < 0 ? "0000-01-01T00:00:00Z" : "9999-12-31T23:59:59Z");
    return;
  }
  // By hand: snprintf cost 6% of a list request's CPU (40 timestamps a page).
  char b[20];
  auto two = [&](int at, unsigned v) {
    b[at] = static_cast<char>('0' + v / 10);
    b[at + 1] = static_cast<char>('0' + v % 10);
  };
  const unsigned yy = static_cast<unsigned>(y);
  two(0, yy / 100);
  two(2, yy % 100);
  b[4] = '-';
  two(5, m);
  b[7] = '-';
  two(8, d);
  b[10] = 'T';
  two(11, static_cast<unsigned>(secs / 3600));
  b[13] = ':';
  two(14, static_cast<unsigned>(secs / 60 % 60));
  b[16] = ':';
  two(17, static_cast<unsigned>(secs % 60));
  b[19] = 'Z';
  out.append(b, sizeof b);
}

std::string format_rfc3339(int64_t t) {
  std::string s;
  append_rfc3339(s, t);
  return s;
}

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  int Y, M, D, h, mi, se;
  if (s.size() < 20) return std::nullopt;
  if (!digits(s, 0, 4, Y) || s[4] != '-' || !digits(s, 5, 2, M) || s[7] != '-' ||
      !digits(s, 8, 2, D))
    return std::nullopt;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
  if (!digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, se))
    return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (M < 1 || M > 12 || D < 1) return std::nullopt;
  int dim = kDays[M - 1] + (M == 2 && is_leap(Y) ? 1 : 0);
  if (D > dim || h > 23 || mi > 59 || se > 60) return std::nullopt;
  if (se == 60) se = 59;  // a leap second folds onto the second before
  size_t p = 19;
  if (p < s.size() && s[p] == '.') {
    ++p;
    size_t start = p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == start || p - start > 9) return std::nullopt;
  }
  int64_t offset = 0;
  if (p >= s.size()) return std::nullopt;
  if (s[p] == 'Z' || s[p] == 'z') {
    ++p;
  } else if (s[p] == '+' || s[p] == '-') {
    int oh, om;
    if (!digits(s, p + 1, 2, oh) || p + 3 >= s.size() || s[p + 3] != ':' ||
        !digits(s, p + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = (oh * 3600 + om * 60) * (s[p] == '+' ? 1 : -1);
    p += 6;
  } else {
    return std::nullopt;
  }
  if (p != s.size()) return std::nullopt;
  return days_from_civil(Y, static_cast<unsigned>(M), static_cast<unsigned>(D)) * 86400 +
         h * 3600 + mi * 60 + se - offset;
}

}  // namespace dvs::core
