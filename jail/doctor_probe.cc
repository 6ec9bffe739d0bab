#include "jail/doctor_probe.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace jcs::jail::doctor_probe {

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  return absl::StrCat(name != nullptr ? name : absl::StrCat("errno ", err),
                      " (", desc != nullptr ? desc : "unknown error", ")");
}

std::optional<std::string> ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (out.size() < 65536) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

LayerStatus Row(std::string name) {
  LayerStatus s;
  s.name = std::move(name);
  return s;
}

std::optional<std::string> ReadTrimmed(const std::string& path) {
  std::optional<std::string> content = ReadSmallFile(path);
  if (content) {
    for (char& c : *content) {
      if (c == '\n') c = ' ';
    }
    absl::StripAsciiWhitespace(&*content);
  }
  return content;
}

}  // namespace jcs::jail::doctor_probe
