// `jcs doctor`'s container hints: when a layer is missing because the
// container the daemon runs in withholds a privilege, the fix names the
// setting to add, for `docker run` and for a Kubernetes securityContext
// (deploy/kubernetes/deployment.yaml explains why each is needed).
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "jail/doctor_probe.h"

namespace jcs::jail::doctor_probe {

const char kSeccompContainerHint[] =
    "in a container: docker run --security-opt seccomp=unconfined; "
    "Kubernetes securityContext.seccompProfile.type: Unconfined (or a "
    "Localhost profile that allows clone3, unshare, mount and io_uring)";
const char kAppArmorContainerHint[] =
    "in a container: docker run --security-opt apparmor=unconfined; "
    "Kubernetes securityContext.appArmorProfile.type: Unconfined";
const char kProcMountContainerHint[] =
    "in a container: docker run --security-opt systempaths=unconfined; "
    "Kubernetes securityContext.procMount: Unmasked (with hostUsers: false)";
const char kCgroupContainerHint[] =
    "in a container: the container's own cgroup must be writable: a private "
    "cgroup namespace (docker run --cgroupns=private, the default on cgroup "
    "v2) with the cgroup filesystem mounted read-write, which Docker and the "
    "Kubernetes runtimes do only for privileged containers (docker run "
    "--privileged, securityContext.privileged: true)";

namespace {

struct NeededCap {
  int cap;
  const char* name;  // without CAP_, as docker and Kubernetes spell it
  const char* why;
};

// What `jcs serve` running as root does with each (the jail itself needs no
// host capability: it gets all of them in its own user namespace).
constexpr NeededCap kNeeded[] = {
    {CAP_SETUID, "SETUID",
     "map the project's uid into a jail's user namespace and switch the file "
     "tools' fsuid"},
    {CAP_SETGID, "SETGID",
     "map the project's gid, switch the file tools' fsgid, drop the daemon's "
     "supplementary groups"},
    {CAP_CHOWN, "CHOWN", "create a project's data dir for the project's uid"},
    {CAP_DAC_OVERRIDE, "DAC_OVERRIDE",
     "create and read files in a project root the daemon does not own"},
};

}  // namespace

LayerStatus ProbeCapabilities() {
  LayerStatus s = Row("capabilities");
  if (geteuid() != 0) {
    s.available = true;
    s.detail =
        "not root: jails map only this user (the capability check applies to "
        "jcs serve running as root)";
    return s;
  }
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) {
    s.detail = absl::StrCat("capget failed: ", ErrnoText(errno));
    s.fix = "allow capget in the seccomp profile";
    return s;
  }
  const uint64_t effective =
      uint64_t{data[0].effective} | uint64_t{data[1].effective} << 32;
  std::vector<std::string> present;
  std::vector<std::string> missing;
  std::vector<std::string> why;
  for (const NeededCap& needed : kNeeded) {
    if ((effective >> needed.cap & 1) != 0) {
      present.push_back(needed.name);
    } else {
      missing.push_back(needed.name);
      why.push_back(absl::StrCat("CAP_", needed.name, ": ", needed.why));
    }
  }
  s.available = missing.empty();
  s.detail = absl::StrCat("root with CapEff 0x", absl::Hex(effective),
                          "; needed: SETUID SETGID CHOWN DAC_OVERRIDE");
  if (!s.available) {
    absl::StrAppend(&s.detail, "; missing: ", absl::StrJoin(missing, " "), " (",
                    absl::StrJoin(why, "; "), ")");
    std::vector<std::string> docker;
    std::vector<std::string> quoted;
    for (const std::string& name : missing) {
      docker.push_back(absl::StrCat("--cap-add ", name));
      quoted.push_back(absl::StrCat("\"", name, "\""));
    }
    s.fix = absl::StrCat(
        "the container dropped capabilities the daemon needs: add CAP_",
        absl::StrJoin(missing, ", CAP_"), " to ",
        "securityContext.capabilities.add: [", absl::StrJoin(quoted, ", "),
        "] (Kubernetes) / docker run ", absl::StrJoin(docker, " "),
        "; outside a container, run jcs serve as full root");
  }
  return s;
}

}  // namespace jcs::jail::doctor_probe
