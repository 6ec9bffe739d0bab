#include "supervisor/metrics_textfile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace jcs::supervisor {

absl::Status WriteTextfileAtomically(const std::string& path,
                                     const std::string& text) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const char* step, const std::string& file) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::FailedPreconditionError(absl::StrCat(
        "metrics_textfile: ", step, " ", file, ": ", strerror(err)));
  };
  // A leftover from a crash (or anything planted there) goes first: the
  // file is then created fresh, never opened through a link.
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) return fail("unlink", tmp);
  const int fd = open(
      tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) return fail("create", tmp);
  // open() applies the umask; the mode is meant as given.
  fchmod(fd, 0640);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return fail("write", tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return fail("close", tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("rename to", path);
  return absl::OkStatus();
}

}  // namespace jcs::supervisor
