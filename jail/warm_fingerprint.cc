#include "jail/warm_fingerprint.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace jcs::jail {

std::string WarmFingerprint(const proto::JailSpec& spec) {
  proto::JailSpec shape = spec;
  shape.clear_argv();
  shape.clear_env();
  shape.clear_cwd();
  shape.clear_timeout_ms();
  std::string fingerprint = shape.SerializeAsString();
  const auto identity = [&fingerprint](const std::string& path) {
    struct statx stx;
    if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW,
              STATX_INO | STATX_BTIME | STATX_CTIME, &stx) != 0) {
      absl::StrAppend(&fingerprint, "|", path, ":-");
      return;
    }
    const statx_timestamp& born =
        (stx.stx_mask & STATX_BTIME) ? stx.stx_btime : stx.stx_ctime;
    absl::StrAppend(&fingerprint, "|", path, ":", stx.stx_dev_major, ",",
                    stx.stx_dev_minor, ":", stx.stx_ino, ":",
                    (stx.stx_mask & STATX_BTIME) ? "b" : "c", born.tv_sec, ".",
                    born.tv_nsec);
  };
  identity(spec.root());
  for (const std::string& path : spec.ro()) identity(path);
  for (const std::string& path : spec.rw()) identity(path);
  for (const std::string& path : spec.mask()) identity(path);
  return fingerprint;
}

}  // namespace jcs::jail
