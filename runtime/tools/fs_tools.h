// The built-in file tools of a project (`fs.read`, `fs.write`, `fs.list`),
// run in-process by the supervisor daemon, which runs as root. The project
// tree is hostile (a jailed tool may have planted symlinks, hard links, FIFOs
// and devices in it), so every operation is confined as follows.
//
// Path handling (every tool):
//   - `path` is relative to ctx.root, or absolute and lexically equal to or
//     below ctx.root (the prefix is stripped). Any other absolute path gives
//     "outside_root". `.` and empty segments are dropped and `..` is collapsed
//     lexically; a `..` above the root gives "outside_root".
//   - Resolution uses openat2(2) from an O_PATH fd of the root with
//     RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS (mounts inside the root are
//     allowed). Symlinks inside the root are followed (except the final
//     component of fs.write), but absolute symlinks and symlinks leaving the
//     root fail in the kernel (EXDEV) -> "outside_root".
//   - Sensitive paths: the requested (normalized) path and, after opening,
//     the opened object's real path (readlink of /proc/self/fd/N, made
//     relative to the root) are checked with IsSensitivePath
//     (runtime/policy/path_policy.h) against ctx.sensitive_denylist/allowlist.
//     Every ancestor prefix is checked too (`secrets.key/notes.txt` is denied,
//     as the jail masks the whole directory) -> "sensitive_path_denied". A real
//     path that is not below the root (a concurrent rename, an odd mount)
//     fails closed with "outside_root".
//   - Non-regular files are never opened for I/O: fs.read opens with O_PATH,
//     checks S_ISREG with fstat and only then reopens the file through
//     /proc/self/fd/N with O_RDONLY | O_NONBLOCK (a FIFO or device in the
//     tree never blocks and never sees an open()).
//
// Identity: the file work runs with the filesystem identity ctx.uid/ctx.gid,
// set per thread with the setfsuid/setfsgid syscalls (ScopedFsIdentity). When
// the fsuid leaves 0 the kernel drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
// CAP_FOWNER, ... from the effective set, so the daemon gets exactly the
// project user's permissions: a hard link to a root-only /etc/shadow in the
// tree gives "permission_denied", and files written belong to uid/gid.
// The previous fsuid/fsgid (0/0 in the daemon) are restored on every path.
// REQUIREMENT: the process must have no supplementary groups (the daemon
// calls setgroups(0, nullptr) at start; group 0 would otherwise still grant
// access to root-group files). The guard checks this and fails closed with
// "internal_error" {problem: "supplementary_groups_present"}.
//
// Argument errors -> "invalid_tool_args", detail {field, problem} with
// problem one of: "expected_object" (field "$"), "missing",
// "expected_string", "expected_boolean", "empty", "contains_nul",
// "too_long" (more than kMaxFsPathBytes bytes).
//
// errno -> reason mapping (detail {path, errno: "EACCES", ...}):
//   EACCES, EPERM            permission_denied
//   ENOENT                   not_found
//   ENOTDIR                  not_a_directory
//   EISDIR                   is_directory
//   EXDEV                    outside_root  (openat2 RESOLVE_BENEATH escape)
//   ELOOP                    too_many_symlinks (loops; magic links)
//   ENAMETOOLONG             name_too_long
//   ENOSPC, EDQUOT           no_space
//   EROFS                    read_only_filesystem
//   EFBIG                    file_too_large
//   EMFILE, ENFILE, ENOMEM   resource_exhausted
//   anything else            io_error
// Other reasons: "not_a_file" (fs.read of a non-regular file, fs.write over
// an existing non-regular entry, symlinks included; detail {path, type}),
// "output_too_large" {path, size, max}, "artifact_too_large"
// {index: 0, size, max}, "sensitive_path_denied" {path}, "outside_root"
// {path}, "invalid_root_path" {root} (ctx.root is not an absolute
// directory), "internal_error" {problem}.
//
// Results:
//   fs.read  {"path": rel, "content": s, "bytes": N, "encoding": "utf-8" |
//            "base64"} (base64 when the bytes are not valid UTF-8).
//   fs.write {"path": rel, "bytes": N}; args {path, content, create_dirs?}.
//            Atomic: a temp file `.<name>.jcs-tmp-XXXXXX` in the same
//            directory, written, fsync'ed, mode 0644, then renameat(2) over
//            the name. An existing symlink, directory or other non-regular
//            entry at the name is never followed or replaced (not_a_file /
//            is_directory). create_dirs creates missing parents (0755).
//   fs.list  {"path": rel, "entries": [{name, type, size}], "truncated": b},
//            the ctx.max_entries smallest names in byte order; type is
//            "file" | "dir" | "symlink" | "other" (lstat, never followed);
//            size is st_size for files and symlinks, 0 otherwise. Sensitive
//            entries are listed (the jail shows them masked too) but never
//            read.
// `rel` is the real path relative to the root ("." for the root itself).
#ifndef JCS_RUNTIME_FS_TOOLS_H_
#define JCS_RUNTIME_FS_TOOLS_H_

#include <linux/capability.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/tools/tool_outcome.h"

namespace jcs::runtime {

inline constexpr std::size_t kMaxFsPathBytes = 4096;

struct FsToolContext {
  std::string root;  // canonical absolute path of the project root
  uid_t uid = 0;     // the filesystem identity the work runs as
  gid_t gid = 0;
  uint64_t max_read_bytes = 0;
  uint64_t max_write_bytes = 0;
  std::size_t max_entries = 10000;
  std::vector<std::string> sensitive_denylist;
  std::vector<std::string> sensitive_allowlist;
  // Relative to the root ("" for none), checked on the opened file's real
  // path like the sensitive lists: nothing at or below `private_dir` is read,
  // listed or written ("permission_denied"), nothing at or below
  // `read_only_dir` is written ("read_only"). The project's data dir and its
  // state/, as the jail shows them.
  std::string read_only_dir;
  std::string private_dir;
  // Whether (device, inode) is a sensitive file's (its hard link), asked
  // only for files with more than one link; an error fails the read closed.
  std::function<absl::StatusOr<bool>(uint64_t dev, uint64_t ino)>
      is_sensitive_inode;
};

// Sets the calling thread's fsuid/fsgid for its lifetime and restores the
// previous ones (gid first when entering, uid first when leaving). ok() is
// false when the switch did not take effect or the process has
// supplementary groups; the identity is then left (or put back) unchanged.
class ScopedFsIdentity {
 public:
  ScopedFsIdentity(uid_t uid, gid_t gid);
  ~ScopedFsIdentity();
  ScopedFsIdentity(const ScopedFsIdentity&) = delete;
  ScopedFsIdentity& operator=(const ScopedFsIdentity&) = delete;

  bool ok() const { return ok_; }
  // "" when ok, else "supplementary_groups_present", "setfsid_failed" or
  // "cap_drop_failed".
  const std::string& problem() const { return problem_; }

 private:
  bool ok_ = false;
  bool switched_ = false;
  uid_t old_uid_ = 0;
  gid_t old_gid_ = 0;
  // The thread's capabilities before CAP_SYS_RESOURCE was lowered.
  struct __user_cap_data_struct caps_[2] = {};
  bool caps_saved_ = false;
  std::string problem_;
};

// The reason for an errno, per the table above.
std::string FsErrnoReason(int err);

// True when the root-relative `rel` or any of its ancestor prefixes is
// sensitive (IsSensitivePath). "" and "." are never sensitive.
bool IsSensitiveRelPath(const std::string& rel,
                        const std::vector<std::string>& denylist,
                        const std::vector<std::string>& allowlist);

// True when `bytes` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF).
bool IsValidUtf8(const std::string& bytes);

ToolOutcome FsRead(const FsToolContext& ctx, const nlohmann::json& args);
ToolOutcome FsWrite(const FsToolContext& ctx, const nlohmann::json& args);
ToolOutcome FsList(const FsToolContext& ctx, const nlohmann::json& args);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_FS_TOOLS_H_
