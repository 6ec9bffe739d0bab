// What a tool call's jail must hide and keep read-only, computed from one
// view of the project tree on a worker thread (loop/worker_pool.h), or on
// the loop from the index's quiet set (JailMasksFromQuietSet):
//   - every sensitive path (runtime/policy/sensitive_mask.h), with the identity
//   the
//     jail checks before it masks it;
//   - the project's data dir, followed through the directory fd the tool
//     runtime opened when the project started (never re-resolved by name: a
//     jail that renamed a parent of a nested data dir such as `cfg/jido`
//     used to get it back read-write with its state/ visible), bound
//     read-only with its state/ masked.
// The data dir must still be the directory the project started with and
// still lie below the root; if it was removed or moved out, the call fails
// closed ("data_dir_unavailable") instead of running without the
// protection.
#ifndef JCS_RUNTIME_JAIL_MASKS_H_
#define JCS_RUNTIME_JAIL_MASKS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/policy/sensitive_index.h"
#include "runtime/policy/sensitive_mask.h"

namespace jcs::runtime {

struct PathId {
  std::string path;  // absolute
  uint64_t dev = 0;
  uint64_t ino = 0;
  bool is_dir = false;
};

struct JailMasks {
  SensitiveScan scan;
  std::optional<PathId> data_dir;  // bound read-only
  std::optional<PathId> state;     // masked
  int64_t scan_us = 0;
  std::string scan_mode = "full_scan";  // "index" | "full_scan"
  std::string scan_reason;              // why full_scan ("" for index)
  uint64_t scan_events = 0;             // notifications the index applied
  bool on_loop = false;  // from SensitiveIndex::TakeIfQuiet, no worker hop
};

// The sensitive set from the project's index when it can be trusted (after
// draining its notifications), else from ScanSensitivePaths, with which one
// and why in `mode`/`reason`. `index` may be null (always the full scan).
absl::StatusOr<SensitiveScan> SensitiveSet(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist, SensitiveIndex* index,
    std::string* mode, std::string* reason, uint64_t* events);

// Where the directory `dir_fd` is now, checked to be the same directory when
// reached by name from the root without symlinks, at or below `root`.
absl::StatusOr<PathId> LocateDirFd(const std::string& root, int dir_fd);

// OpenDirBeneathLong (opening a directory beneath the root by a long path)
// lives in runtime/policy/sensitive_mask.h, shared with the sensitive-path
// index.

// `data_dir_fd` < 0: the project has no data dir to protect. The sensitive
// paths come from SensitiveSet (`index` may be null).
absl::StatusOr<JailMasks> PrepareJailMasks(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist, int data_dir_fd,
    SensitiveIndex* index = nullptr);

// The masks around a set the index gave on the loop (TakeIfQuiet): the data
// dir is located through its open fd (a handful of syscalls on paths already
// resolved, no walk: the same work the loop does to watch the masks), so
// the loop may call it. `data_dir_fd` < 0: no data dir.
absl::StatusOr<JailMasks> JailMasksFromQuietSet(const std::string& root,
                                                int data_dir_fd,
                                                const SensitiveScan& set);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_JAIL_MASKS_H_
