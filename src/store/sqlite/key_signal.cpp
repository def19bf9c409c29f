#include "store/sqlite/key_signal.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace dvs::store {

namespace {
constexpr size_t kMapSize = 4096;
}

KeySignal::KeySignal(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:") return;
  const std::string path = db_path + "-keysig";
  // Same permissions as the database's other files; never through a link.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    spdlog::debug("sqlite: no shared key-change counter at {} (read-only?): the key epoch is "
                 "read on every request",
                 path);
    return;
  }
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  // Grown to one page by whoever comes first; a file of zeros is counter 0.
  if (ok && st.st_size < static_cast<off_t>(kMapSize))
    ok = ::ftruncate(fd, static_cast<off_t>(kMapSize)) == 0;
  void* m = ok ? ::mmap(nullptr, kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (m == MAP_FAILED) {
    spdlog::debug("sqlite: cannot map {}: the key epoch is read on every request", path);
    return;
  }
  map_ = m;
  shared_ = static_cast<uint64_t*>(m);
}

KeySignal::~KeySignal() {
  if (map_) ::munmap(map_, kMapSize);
}

uint64_t KeySignal::load() const {
  return shared_ ? std::atomic_ref<uint64_t>(*shared_).load(std::memory_order_acquire) : 0;
}

void KeySignal::raise() {
  if (shared_) std::atomic_ref<uint64_t>(*shared_).fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace dvs::store
