#include "runtime/tools/fs_tools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"
#include "runtime/policy/path_policy.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;

constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
constexpr size_t kReadChunk = 64 * 1024;

ToolOutcome ErrnoFail(int err, const std::string& path) {
  return ToolOutcome::Fail(FsErrnoReason(err),
                           {{"path", path}, {"errno", ErrnoSymbol(err)}});
}

ToolOutcome InvalidArg(const std::string& field, const std::string& problem) {
  return ToolOutcome::Fail("invalid_tool_args",
                           {{"field", field}, {"problem", problem}});
}

ToolOutcome Internal(const std::string& problem) {
  return ToolOutcome::Fail("internal_error", {{"problem", problem}});
}

// Reads a string argument. `present` is false when the key is absent.
std::optional<ToolOutcome> StringArg(const json& args, const char* field,
                                     size_t max_bytes, std::string* out,
                                     bool* present) {
  *present = false;
  auto it = args.find(field);
  if (it == args.end()) return std::nullopt;
  *present = true;
  if (!it->is_string()) return InvalidArg(field, "expected_string");
  const std::string& value = it->get_ref<const std::string&>();
  if (value.find('\0') != std::string::npos) {
    return InvalidArg(field, "contains_nul");
  }
  if (value.size() > max_bytes) return InvalidArg(field, "too_long");
  *out = value;
  return std::nullopt;
}

std::optional<ToolOutcome> PathArg(const json& args, bool default_dot,
                                   std::string* out) {
  if (!args.is_object()) return InvalidArg("$", "expected_object");
  bool present = false;
  if (auto error = StringArg(args, "path", kMaxFsPathBytes, out, &present)) {
    return error;
  }
  if (!present) {
    if (!default_dot) return InvalidArg("path", "missing");
    *out = ".";
  }
  if (out->empty()) return InvalidArg("path", "empty");
  return std::nullopt;
}

// Lexically normalizes `path` to a root-relative path ("" for the root).
// nullopt when it is outside the root.
std::optional<std::string> NormalizeRel(const std::string& root,
                                        const std::string& path) {
  std::string_view rest = path;
  if (!rest.empty() && rest.front() == '/') {
    if (root == "/") {
      rest.remove_prefix(1);
    } else if (rest == root) {
      rest = "";
    } else if (rest.size() > root.size() &&
               rest.substr(0, root.size()) == root &&
               rest[root.size()] == '/') {
      rest.remove_prefix(root.size() + 1);
    } else {
      return std::nullopt;
    }
  }
  std::vector<std::string_view> parts;
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view()
                                           : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string rel;
  for (std::string_view part : parts) {
    if (!rel.empty()) rel += '/';
    rel.append(part);
  }
  return rel;
}

// The real path of `fd` relative to `root` ("" for the root itself), or
// nullopt when it is not below the root (or /proc is unreadable).
std::optional<std::string> RealRel(int fd, const std::string& root) {
  const std::string link = absl::StrCat("/proc/self/fd/", fd);
  std::string target(PATH_MAX + 1, '\0');
  const ssize_t n = readlink(link.c_str(), target.data(), target.size());
  if (n <= 0 || static_cast<size_t>(n) >= target.size()) return std::nullopt;
  target.resize(static_cast<size_t>(n));
  if (root == "/") {
    if (target.empty() || target.front() != '/') return std::nullopt;
    return target.substr(1);
  }
  if (target == root) return std::string();
  if (target.size() > root.size() &&
      target.compare(0, root.size(), root) == 0 && target[root.size()] == '/') {
    return target.substr(root.size() + 1);
  }
  return std::nullopt;
}

std::string DisplayRel(const std::string& rel) {
  return rel.empty() ? std::string(".") : rel;
}

// The path reported in results: the real path when it is valid UTF-8 (so the
// JSON can be serialized), else the normalized requested one.
std::string ReportedRel(const std::string& real, const std::string& requested) {
  return DisplayRel(IsValidUtf8(real) ? real : requested);
}

const char* TypeName(mode_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "dir";
  if (S_ISLNK(mode)) return "symlink";
  return "other";
}

// Shared preamble of the tools: root fd and normalized relative path.
struct Prepared {
  UniqueFd root_fd;
  std::string rel;  // normalized, "" for the root
};

std::optional<ToolOutcome> Prepare(const FsToolContext& ctx,
                                   const std::string& path, Prepared* out) {
  if (ctx.root.empty() || ctx.root.front() != '/' ||
      ctx.root.find('\0') != std::string::npos) {
    return ToolOutcome::Fail("invalid_root_path", {{"root", ctx.root}});
  }
  std::optional<std::string> rel = NormalizeRel(ctx.root, path);
  if (!rel) return ToolOutcome::Fail("outside_root", {{"path", path}});
  if (IsSensitiveRelPath(*rel, ctx.sensitive_denylist,
                         ctx.sensitive_allowlist)) {
    return ToolOutcome::Fail("sensitive_path_denied", {{"path", path}});
  }
  const int fd = open(ctx.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ToolOutcome::Fail("invalid_root_path", {{"root", ctx.root}});
  out->root_fd = UniqueFd(fd);
  out->rel = std::move(*rel);
  return std::nullopt;
}

// `dir` as given in the context ("" for none) is normalized like any path.
bool IsAtOrBelow(const FsToolContext& ctx, const std::string& rel,
                 const std::string& given_dir) {
  if (given_dir.empty()) return false;
  std::optional<std::string> dir = NormalizeRel(ctx.root, given_dir);
  if (!dir || dir->empty()) return false;
  return rel == *dir ||
         (rel.size() > dir->size() && rel.compare(0, dir->size(), *dir) == 0 &&
          rel[dir->size()] == '/');
}

std::optional<ToolOutcome> CheckPrivate(const FsToolContext& ctx,
                                        const std::string& rel,
                                        const std::string& path) {
  if (!IsAtOrBelow(ctx, rel, ctx.private_dir)) return std::nullopt;
  return ToolOutcome::Fail(
      "permission_denied",
      {{"path", path}, {"message", "the data dir's state/ is private"}});
}

// Checks the real path of an opened fd: below the root, not sensitive, not
// private.
std::optional<ToolOutcome> CheckReal(const FsToolContext& ctx, int fd,
                                     const std::string& path,
                                     std::string* real) {
  std::optional<std::string> rel = RealRel(fd, ctx.root);
  if (!rel) return ToolOutcome::Fail("outside_root", {{"path", path}});
  if (IsSensitiveRelPath(*rel, ctx.sensitive_denylist,
                         ctx.sensitive_allowlist)) {
    return ToolOutcome::Fail("sensitive_path_denied", {{"path", path}});
  }
  if (auto error = CheckPrivate(ctx, *rel, path)) return error;
  *real = std::move(*rel);
  return std::nullopt;
}

std::optional<ToolOutcome> CheckIdentity(const ScopedFsIdentity& identity) {
  if (identity.ok()) return std::nullopt;
  return Internal(identity.problem());
}

std::string RandomSuffix() {
  static constexpr char kChars[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char bytes[8] = {};
  if (getrandom(bytes, sizeof(bytes), 0) !=
      static_cast<ssize_t>(sizeof(bytes))) {
    // Fall back on something unique enough; O_EXCL still protects us.
    const uint64_t mix =
        static_cast<uint64_t>(getpid()) * 0x9E3779B97F4A7C15ull ^
        reinterpret_cast<uintptr_t>(&bytes);
    memcpy(bytes, &mix, sizeof(bytes));
  }
  std::string out;
  for (unsigned char b : bytes) out += kChars[b % (sizeof(kChars) - 1)];
  return out;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// Opens (creating when asked) the directory `rel_dir` below the root as an
// O_PATH fd; every prefix is resolved from the root fd with RESOLVE_BENEATH.
std::optional<ToolOutcome> OpenParent(int root_fd, const std::string& rel_dir,
                                      bool create, const std::string& path,
                                      UniqueFd* out) {
  const int flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  if (!create) {
    const int fd =
        OpenAt2(root_fd, rel_dir.empty() ? "." : rel_dir, flags, kResolve);
    if (fd < 0) return ErrnoFail(errno, path);
    *out = UniqueFd(fd);
    return std::nullopt;
  }
  UniqueFd current(OpenAt2(root_fd, ".", flags, kResolve));
  if (!current.valid()) return ErrnoFail(errno, path);
  size_t pos = 0;
  while (pos < rel_dir.size()) {
    size_t slash = rel_dir.find('/', pos);
    if (slash == std::string::npos) slash = rel_dir.size();
    const std::string component = rel_dir.substr(pos, slash - pos);
    const std::string prefix = rel_dir.substr(0, slash);
    int fd = OpenAt2(root_fd, prefix, flags, kResolve);
    if (fd < 0 && errno == ENOENT) {
      if (mkdirat(current.get(), component.c_str(), 0755) != 0 &&
          errno != EEXIST) {
        return ErrnoFail(errno, path);
      }
      fd = OpenAt2(root_fd, prefix, flags, kResolve);
    }
    if (fd < 0) return ErrnoFail(errno, path);
    current = UniqueFd(fd);
    pos = slash + 1;
  }
  *out = std::move(current);
  return std::nullopt;
}

}  // namespace

ScopedFsIdentity::ScopedFsIdentity(uid_t uid, gid_t gid) {
  const int groups = getgroups(0, nullptr);
  if (groups != 0) {
    problem_ = "supplementary_groups_present";
    return;
  }
  old_gid_ = static_cast<gid_t>(syscall(SYS_setfsgid, gid));
  if (static_cast<gid_t>(syscall(SYS_setfsgid, static_cast<gid_t>(-1))) !=
      gid) {
    syscall(SYS_setfsgid, old_gid_);
    problem_ = "setfsid_failed";
    return;
  }
  old_uid_ = static_cast<uid_t>(syscall(SYS_setfsuid, uid));
  if (static_cast<uid_t>(syscall(SYS_setfsuid, static_cast<uid_t>(-1))) !=
      uid) {
    syscall(SYS_setfsuid, old_uid_);
    syscall(SYS_setfsgid, old_gid_);
    problem_ = "setfsid_failed";
    return;
  }
  // The fsuid switch drops the filesystem capabilities, not
  // CAP_SYS_RESOURCE, which lets writes pass quotas and the reserved blocks:
  // this thread lowers it from its effective set for as long as it acts for
  // the project (capset(2) on pid 0 changes only the calling thread).
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  if (syscall(SYS_capget, &header, caps_) == 0) {
    struct __user_cap_data_struct lowered[2] = {caps_[0], caps_[1]};
    lowered[CAP_TO_INDEX(CAP_SYS_RESOURCE)].effective &=
        ~CAP_TO_MASK(CAP_SYS_RESOURCE);
    if (syscall(SYS_capset, &header, lowered) != 0) {
      syscall(SYS_setfsuid, old_uid_);
      syscall(SYS_setfsgid, old_gid_);
      problem_ = "cap_drop_failed";
      return;
    }
    caps_saved_ = true;
  }
  switched_ = true;
  ok_ = true;
}

ScopedFsIdentity::~ScopedFsIdentity() {
  if (!switched_) return;
  if (caps_saved_) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    syscall(SYS_capset, &header, caps_);
  }
  // uid first: with fsuid 0 again the fs capabilities come back, then the gid.
  syscall(SYS_setfsuid, old_uid_);
  syscall(SYS_setfsgid, old_gid_);
}

std::string FsErrnoReason(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
      return "permission_denied";
    case ENOENT:
      return "not_found";
    case ENOTDIR:
      return "not_a_directory";
    case EISDIR:
      return "is_directory";
    case EXDEV:
      return "outside_root";
    case ELOOP:
      return "too_many_symlinks";
    case ENAMETOOLONG:
      return "name_too_long";
    case ENOSPC:
    case EDQUOT:
      return "no_space";
    case EROFS:
      return "read_only_filesystem";
    case EFBIG:
      return "file_too_large";
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return "resource_exhausted";
    default:
      return "io_error";
  }
}

bool IsSensitiveRelPath(const std::string& rel,
                        const std::vector<std::string>& denylist,
                        const std::vector<std::string>& allowlist) {
  if (rel.empty() || rel == ".") return false;
  size_t pos = 0;
  while (true) {
    const size_t slash = rel.find('/', pos);
    const std::string prefix =
        slash == std::string::npos ? rel : rel.substr(0, slash);
    if (IsSensitivePath(prefix, denylist, allowlist)) return true;
    if (slash == std::string::npos) return false;
    pos = slash + 1;
  }
}

bool IsValidUtf8(const std::string& bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

ToolOutcome FsRead(const FsToolContext& ctx, const json& args) {
  std::string path;
  if (auto error = PathArg(args, /*default_dot=*/false, &path)) return *error;
  Prepared prep;
  if (auto error = Prepare(ctx, path, &prep)) return *error;

  ScopedFsIdentity identity(ctx.uid, ctx.gid);
  if (auto error = CheckIdentity(identity)) return *error;

  UniqueFd opath(OpenAt2(prep.root_fd.get(), prep.rel.empty() ? "." : prep.rel,
                         O_PATH | O_CLOEXEC, kResolve));
  if (!opath.valid()) return ErrnoFail(errno, path);
  std::string real;
  if (auto error = CheckReal(ctx, opath.get(), path, &real)) return *error;

  struct stat st;
  if (fstat(opath.get(), &st) != 0) return ErrnoFail(errno, path);
  if (!S_ISREG(st.st_mode)) {
    return ToolOutcome::Fail("not_a_file",
                             {{"path", path}, {"type", TypeName(st.st_mode)}});
  }
  if (st.st_nlink > 1 && ctx.is_sensitive_inode) {
    absl::StatusOr<bool> sensitive = ctx.is_sensitive_inode(
        static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    if (!sensitive.ok() || *sensitive) {
      return ToolOutcome::Fail(
          "sensitive_path_denied",
          {{"path", path},
           {"message", sensitive.ok()
                           ? "a hard link of a sensitive file"
                           : std::string(sensitive.status().message())}});
    }
  }
  const uint64_t max = ctx.max_read_bytes;
  if (static_cast<uint64_t>(st.st_size) > max) {
    return ToolOutcome::Fail("output_too_large",
                             {{"path", path},
                              {"size", static_cast<uint64_t>(st.st_size)},
                              {"max", max}});
  }
  // Reopen the checked inode for reading; the permission check happens here,
  // under the project identity.
  const std::string proc = absl::StrCat("/proc/self/fd/", opath.get());
  UniqueFd file(
      open(proc.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!file.valid()) return ErrnoFail(errno, path);
  struct stat st2;
  if (fstat(file.get(), &st2) != 0) return ErrnoFail(errno, path);
  if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino ||
      !S_ISREG(st2.st_mode)) {
    return ToolOutcome::Fail("not_a_file",
                             {{"path", path}, {"type", TypeName(st2.st_mode)}});
  }

  const uint64_t limit = max == UINT64_MAX ? max : max + 1;
  std::string content;
  while (content.size() < limit) {
    const size_t old = content.size();
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(kReadChunk, limit - old));
    content.resize(old + want);
    const ssize_t n = read(file.get(), content.data() + old, want);
    if (n < 0) {
      const int err = errno;
      content.resize(old);
      if (err == EINTR) continue;
      return ErrnoFail(err, path);
    }
    content.resize(old + static_cast<size_t>(n));
    if (n == 0) break;
  }
  if (content.size() > max) {
    return ToolOutcome::Fail(
        "output_too_large",
        {{"path", path},
         {"size", std::max<uint64_t>(content.size(),
                                     static_cast<uint64_t>(st.st_size))},
         {"max", max}});
  }
  const uint64_t bytes = content.size();
  json result = {{"path", ReportedRel(real, prep.rel)}, {"bytes", bytes}};
  if (IsValidUtf8(content)) {
    result["encoding"] = "utf-8";
    result["content"] = std::move(content);
  } else {
    result["encoding"] = "base64";
    result["content"] = absl::Base64Escape(content);
  }
  return ToolOutcome::Ok(std::move(result));
}

ToolOutcome FsWrite(const FsToolContext& ctx, const json& args) {
  std::string path;
  if (auto error = PathArg(args, /*default_dot=*/false, &path)) return *error;
  auto content_it = args.find("content");
  if (content_it == args.end()) return InvalidArg("content", "missing");
  if (!content_it->is_string()) return InvalidArg("content", "expected_string");
  const std::string& content = content_it->get_ref<const std::string&>();
  bool create_dirs = false;
  if (auto it = args.find("create_dirs"); it != args.end()) {
    if (!it->is_boolean()) return InvalidArg("create_dirs", "expected_boolean");
    create_dirs = it->get<bool>();
  }
  if (content.size() > ctx.max_write_bytes) {
    return ToolOutcome::Fail("artifact_too_large",
                             {{"index", 0},
                              {"size", static_cast<uint64_t>(content.size())},
                              {"max", ctx.max_write_bytes}});
  }
  Prepared prep;
  if (auto error = Prepare(ctx, path, &prep)) return *error;
  if (prep.rel.empty()) {
    return ToolOutcome::Fail("is_directory", {{"path", path}});
  }
  const size_t slash = prep.rel.rfind('/');
  const std::string parent =
      slash == std::string::npos ? std::string() : prep.rel.substr(0, slash);
  const std::string name =
      slash == std::string::npos ? prep.rel : prep.rel.substr(slash + 1);
  if (name.size() > NAME_MAX) {
    return ToolOutcome::Fail("name_too_long", {{"path", path}});
  }

  ScopedFsIdentity identity(ctx.uid, ctx.gid);
  if (auto error = CheckIdentity(identity)) return *error;

  UniqueFd dir;
  if (auto error =
          OpenParent(prep.root_fd.get(), parent, create_dirs, path, &dir)) {
    return *error;
  }
  std::string real_parent;
  if (auto error = CheckReal(ctx, dir.get(), path, &real_parent)) {
    return *error;
  }
  const std::string real =
      real_parent.empty() ? name : absl::StrCat(real_parent, "/", name);
  if (IsSensitiveRelPath(real, ctx.sensitive_denylist,
                         ctx.sensitive_allowlist)) {
    return ToolOutcome::Fail("sensitive_path_denied", {{"path", path}});
  }
  if (auto error = CheckPrivate(ctx, real, path)) return *error;
  if (IsAtOrBelow(ctx, real, ctx.read_only_dir)) {
    return ToolOutcome::Fail(
        "read_only",
        {{"path", path}, {"message", "the data dir is read-only for tools"}});
  }

  struct stat st;
  if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return ToolOutcome::Fail("is_directory", {{"path", path}});
    }
    if (!S_ISREG(st.st_mode)) {
      return ToolOutcome::Fail(
          "not_a_file", {{"path", path}, {"type", TypeName(st.st_mode)}});
    }
  } else if (errno != ENOENT) {
    return ErrnoFail(errno, path);
  }

  std::string temp;
  UniqueFd file;
  for (int attempt = 0; attempt < 16 && !file.valid(); ++attempt) {
    temp = absl::StrCat(".", name.substr(0, 200), ".jcs-tmp-", RandomSuffix());
    const int fd =
        openat(dir.get(), temp.c_str(),
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
      file = UniqueFd(fd);
    } else if (errno != EEXIST) {
      return ErrnoFail(errno, path);
    }
  }
  if (!file.valid()) return ErrnoFail(EEXIST, path);
  bool renamed = false;
  absl::Cleanup remove_temp = [&] {
    if (!renamed) unlinkat(dir.get(), temp.c_str(), 0);
  };
  if (!WriteAll(file.get(), content)) return ErrnoFail(errno, path);
  if (fchmod(file.get(), 0644) != 0) return ErrnoFail(errno, path);
  if (fsync(file.get()) != 0) return ErrnoFail(errno, path);
  if (close(file.release()) != 0) return ErrnoFail(errno, path);
  if (renameat(dir.get(), temp.c_str(), dir.get(), name.c_str()) != 0) {
    return ErrnoFail(errno, path);
  }
  renamed = true;
  return ToolOutcome::Ok({{"path", ReportedRel(real, prep.rel)},
                          {"bytes", static_cast<uint64_t>(content.size())}});
}

ToolOutcome FsList(const FsToolContext& ctx, const json& args) {
  std::string path;
  if (auto error = PathArg(args, /*default_dot=*/true, &path)) return *error;
  Prepared prep;
  if (auto error = Prepare(ctx, path, &prep)) return *error;

  ScopedFsIdentity identity(ctx.uid, ctx.gid);
  if (auto error = CheckIdentity(identity)) return *error;

  UniqueFd dir_fd(OpenAt2(prep.root_fd.get(), prep.rel.empty() ? "." : prep.rel,
                          O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC,
                          kResolve));
  if (!dir_fd.valid()) return ErrnoFail(errno, path);
  std::string real;
  if (auto error = CheckReal(ctx, dir_fd.get(), path, &real)) return *error;

  DIR* dir = fdopendir(dir_fd.get());
  if (dir == nullptr) return ErrnoFail(errno, path);
  dir_fd.release();
  absl::Cleanup close_dir = [dir] { closedir(dir); };

  // Keep the max_entries smallest names (a max-heap), so memory stays bounded
  // however large the directory is.
  std::priority_queue<std::string> kept;
  bool truncated = false;
  while (true) {
    errno = 0;
    const struct dirent* entry = readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) return ErrnoFail(errno, path);
      break;
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (!IsValidUtf8(std::string(name))) continue;  // not representable
    if (ctx.max_entries == 0) {
      truncated = true;
      continue;
    }
    if (kept.size() < ctx.max_entries) {
      kept.emplace(name);
    } else if (name < kept.top()) {
      kept.pop();
      kept.emplace(name);
      truncated = true;
    } else {
      truncated = true;
    }
  }
  std::vector<std::string> names;
  names.reserve(kept.size());
  while (!kept.empty()) {
    names.push_back(kept.top());
    kept.pop();
  }
  std::reverse(names.begin(), names.end());

  json entries = json::array();
  for (const std::string& name : names) {
    struct stat st;
    if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;  // vanished meanwhile
    }
    const bool sized = S_ISREG(st.st_mode) || S_ISLNK(st.st_mode);
    entries.push_back(
        {{"name", name},
         {"type", TypeName(st.st_mode)},
         {"size", sized ? static_cast<uint64_t>(st.st_size) : uint64_t{0}}});
  }
  return ToolOutcome::Ok({{"path", ReportedRel(real, prep.rel)},
                          {"entries", std::move(entries)},
                          {"truncated", truncated}});
}

}  // namespace jcs::runtime
