#include "store/sqlite/change_signal.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace dvs::store {

namespace {
constexpr size_t kMapSize = 4096;
}

ChangeSignal::ChangeSignal(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:") return;
  const std::string path = db_path + "-keysig";
  // Same permissions as the database's other files; never through a link.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    spdlog::debug("sqlite: no shared change counters at {} (read-only?): the epochs are read "
                  "on every request",
                  path);
    return;
  }
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  // Grown to one page by whoever comes first; a file of zeros is counters 0.
  if (ok && st.st_size < static_cast<off_t>(kMapSize))
    ok = ::ftruncate(fd, static_cast<off_t>(kMapSize)) == 0;
  void* m = ok ? ::mmap(nullptr, kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (m == MAP_FAILED) {
    spdlog::debug("sqlite: cannot map {}: the epochs are read on every request", path);
    return;
  }
  map_ = m;
}

ChangeSignal::~ChangeSignal() {
  if (map_) ::munmap(map_, kMapSize);
}

// One cache line each, so that raising one does not slow readers of the other.
uint64_t* ChangeSignal::slot(Counter c) const {
  return static_cast<uint64_t*>(map_) + 8 * static_cast<int>(c);
}

uint64_t ChangeSignal::load(Counter c) const {
  return map_ ? std::atomic_ref<uint64_t>(*slot(c)).load(std::memory_order_acquire) : 0;
}

void ChangeSignal::raise(Counter c) {
  if (map_) std::atomic_ref<uint64_t>(*slot(c)).fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace dvs::store
