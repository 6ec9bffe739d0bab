#include "supervisor/daemon_run_policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/unique_fd.h"
#include "google/protobuf/util/message_differencer.h"
#include "runtime/project/root_access.h"

namespace jcs::supervisor {
namespace {

// Where a cold `jcs run` puts its per-run cgroups unless told otherwise.
constexpr char kDefaultCgroupParent[] = "jcs";

absl::Status Refuse(const PeerCredentials& peer, absl::string_view field,
                    absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat(field, ": uid ", peer.uid, " ", why,
                   " (a daemon run gets only what a cold jcs run by the same "
                   "user could do)"));
}

bool SameOrUnder(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
          path[dir.size()] == '/');
}

// Every directory above `path` is searchable by `peer` (walked with
// O_NOFOLLOW, no component resolved twice); `path` itself exists. What the
// peer's own mount call would need to bind it.
absl::Status CheckReachable(const std::string& path,
                            const runtime::PeerIdentity& peer,
                            absl::string_view field) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": expected an absolute path, got '", path, "'"));
  }
  runtime::UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string at = "/";
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  for (size_t i = 0; i < parts.size(); ++i) {
    struct stat st;
    if (!dir.valid() || fstat(dir.get(), &st) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat(field, ": ", at, ": ", strerror(errno)));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::PermissionDeniedError(
          absl::StrCat(field, ": ", at, " is not a directory"));
    }
    if ((runtime::GrantedBits(st, peer) & 1) == 0) {
      return absl::PermissionDeniedError(
          absl::StrCat(field, ": uid ", peer.uid, " cannot reach ", path,
                       ": no search permission on ", at,
                       " (a daemon run binds only what the user could)"));
    }
    if (parts[i] == "." || parts[i] == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": ", path, " is not canonical"));
    }
    at = at == "/" ? absl::StrCat("/", parts[i])
                   : absl::StrCat(at, "/", parts[i]);
    const int next =
        openat(dir.get(), parts[i].c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      return absl::PermissionDeniedError(
          absl::StrCat(field, ": ", at, ": ", strerror(errno)));
    }
    dir.Reset(next);
  }
  return absl::OkStatus();
}

absl::Status CheckUnprivileged(const proto::JailSpec& spec,
                               const PeerCredentials& peer,
                               const DaemonRunPolicy& policy) {
  if (spec.allow_host_root()) {
    return Refuse(peer, "allow_host_root",
                  "may not map the jail user to host uid/gid 0");
  }
  if (spec.uid() != peer.uid) {
    return Refuse(peer, "uid",
                  absl::StrCat("may run jails only as itself (its own uid ",
                               peer.uid, "), not as uid ", spec.uid()));
  }
  if (spec.gid() != peer.gid) {
    return Refuse(peer, "gid",
                  absl::StrCat("may run jails only with its own gid ", peer.gid,
                               ", not gid ", spec.gid()));
  }
  // Every mode a cold run offers is a new network namespace; anything else
  // (a mode this daemon does not know) is refused, not guessed at.
  if (spec.net() != proto::NET_NONE && spec.net() != proto::NET_LOOPBACK &&
      spec.net() != proto::NET_EGRESS) {
    return Refuse(peer, "net",
                  absl::StrCat("may use only none, loopback or egress, not "
                               "network mode ",
                               static_cast<int>(spec.net())));
  }
  if (spec.cgroup_parent() != kDefaultCgroupParent) {
    return Refuse(peer, "cgroup_parent",
                  absl::StrCat("may not choose the cgroup parent (only \"",
                               kDefaultCgroupParent, "\"), got \"",
                               spec.cgroup_parent(), "\""));
  }
  const runtime::PeerIdentity identity{peer.uid, peer.gid, peer.groups};
  if (absl::Status s = runtime::CheckPeerRootAccess(spec.root(), identity);
      !s.ok()) {
    return absl::PermissionDeniedError(absl::StrCat("root: ", s.message()));
  }
  std::vector<std::pair<std::string, const std::string*>> binds;
  binds.push_back({"root", &spec.root()});
  for (const std::string& path : spec.ro()) binds.push_back({"ro", &path});
  for (const std::string& path : spec.rw()) binds.push_back({"rw", &path});
  for (const auto& [field, path] : binds) {
    if (absl::Status s = CheckReachable(*path, identity, field); !s.ok()) {
      return s;
    }
    for (const std::string& daemon : policy.daemon_paths) {
      if (daemon.empty()) continue;
      if (SameOrUnder(daemon, *path) || SameOrUnder(*path, daemon)) {
        return Refuse(
            peer, field,
            absl::StrCat("may not bind ", *path,
                         ": it holds or lies in the daemon's ", daemon));
      }
    }
  }
  for (const std::string& path : spec.system_ro()) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;  // skipped by the jail too
    if (absl::Status s = CheckReachable(path, identity, "system_ro"); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<jail::FinalSpec> CheckDaemonRunSpec(
    const proto::JailSpec& spec, const PeerCredentials& peer,
    const DaemonRunPolicy& policy) {
  if (spec.root().empty() || spec.root()[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("root: expected the absolute path jcs run finalized, "
                     "got '",
                     spec.root(), "'"));
  }
  absl::StatusOr<jail::FinalSpec> final_spec =
      jail::Finalize(spec, spec.root(), /*require_program=*/true);
  if (!final_spec.ok()) return final_spec.status();
  google::protobuf::util::MessageDifferencer differ;
  std::string difference;
  differ.ReportDifferencesToString(&difference);
  if (!differ.Compare(spec, final_spec->spec)) {
    if (difference.size() > 200) difference.resize(200);
    return absl::InvalidArgumentError(absl::StrCat(
        "spec: not a spec jcs run finalized (finalizing it again changes ",
        difference, ")"));
  }
  if (!policy.privileged) {
    if (absl::Status s = CheckUnprivileged(final_spec->spec, peer, policy);
        !s.ok()) {
      return s;
    }
  }
  return final_spec;
}

}  // namespace jcs::supervisor
