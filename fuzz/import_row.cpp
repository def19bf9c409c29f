// CSV and JSONL import rows: app::import_file on a temporary .jsonl or .csv
// file holding the input, into a SqliteStore with an organization (and a lead
// of another organization, so the conflict path is reachable). The first byte
// picks the format and kind:
//   0 leads.jsonl   1 invoices.jsonl   2 leads.csv   3 invoices.csv
// A failure must be invalid_request naming the file; a success stores rows.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "app/importer.hpp"
#include "fuzz_env.hpp"

using namespace dvs;

namespace {
struct ImportEnv {
  core::ManualClock clock{fuzz::kNowUs};
  std::string dir = fuzz::make_temp_dir("import");
  std::string org_id;
  std::unique_ptr<store::SqliteStore> store;
  unsigned generation = 0;
  size_t runs = 0;

  // A fresh database now and then, so a long run does not grow it without end.
  store::SqliteStore& fresh_enough() {
    if (!store || ++runs % 20000 == 0) {
      store.reset();
      const std::string old = dir + "/import" + std::to_string(generation) + ".db";
      for (const char* ext : {"", "-wal", "-shm"}) std::remove((old + ext).c_str());
      ++generation;
      store = fuzz::make_store(dir + "/import" + std::to_string(generation) + ".db", org_id);
    }
    return *store;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static ImportEnv* env = [] {
    spdlog::set_level(spdlog::level::err);
    return new ImportEnv();
  }();
  store::SqliteStore& st = env->fresh_enough();
  const int sel = data[0] % 4;
  const bool csv = sel >= 2;
  const auto kind = sel % 2 == 0 ? app::ImportKind::leads : app::ImportKind::invoices;
  const std::string path =
      env->dir + (sel % 2 == 0 ? "/leads" : "/invoices") + (csv ? ".csv" : ".jsonl");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  auto r = app::import_file(st, env->clock, env->org_id, kind, path);
  if (!r) {
    const auto& e = r.error();
    fuzz::require(e.code == core::Errc::invalid_request,
                  "an import fails with invalid_request, got: " + e.message);
    fuzz::require(e.message.starts_with(path + ":"), "the error names the file: " + e.message);
  }
  return 0;
}
