// Linked into every executable of a DVS_SANITIZE build only (root
// CMakeLists.txt), for scripts/sanitize.sh.
//
// g++'s UBSan runtime (libubsan) ignores log_path when ASan is loaded too, so
// its reports reach only stderr, where a server's would be lost with the
// integration harness's temp dir. UBSan calls __ubsan_on_report() (a weak hook)
// for every report; this one appends the report to
// $DVS_UBSAN_REPORT_DIR/ubsan.<pid> when that variable is set, so the script
// can fail on it. With clang's runtime, log_path works and this is harmless.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

extern "C" void __ubsan_get_current_report_data(const char** kind, const char** message,
                                                const char** file, unsigned* line, unsigned* col,
                                                char** memory_addr);

extern "C" void __ubsan_on_report() {
  const char* dir = std::getenv("DVS_UBSAN_REPORT_DIR");
  if (!dir || !*dir) return;
  const char* kind = "";
  const char* message = "";
  const char* file = "";
  unsigned line = 0, col = 0;
  char* addr = nullptr;
  __ubsan_get_current_report_data(&kind, &message, &file, &line, &col, &addr);
  char path[4096];
  std::snprintf(path, sizeof path, "%s/ubsan.%d", dir, static_cast<int>(::getpid()));
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ::dprintf(fd, "%s:%u:%u: runtime error: %s (%s)\n", file ? file : "?", line, col,
            message ? message : "", kind ? kind : "");
  ::close(fd);
}
