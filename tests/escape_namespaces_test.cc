// Escape suite: namespaces, credentials, capabilities, session and
// environment. Every check compares what the program sees inside the jail with
// the host (this test process), and each would fail if jcs skipped the layer.
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

std::string HostHostname() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

TEST(EscapeNamespaces, EveryNamespaceDiffersFromTheHost) {
  Project project;
  const JcsResult r = RunJail(project, {}, Python(R"PY(
import json, os
print(json.dumps({k: os.stat('/proc/self/ns/' + k).st_ino for k in
    ['user', 'pid', 'mnt', 'net', 'ipc', 'uts', 'cgroup', 'pid_for_children']}))
)PY"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json inside = LastJsonLine(r.out);
  ASSERT_TRUE(inside.is_object()) << r.Describe();
  for (const char* ns : {"user", "pid", "mnt", "net", "ipc", "uts", "cgroup",
                         "pid_for_children"}) {
    const unsigned long host =
        NamespaceInode(std::string("/proc/self/ns/") + ns);
    ASSERT_TRUE(inside.contains(ns)) << ns;
    EXPECT_NE(inside[ns].get<unsigned long>(), host)
        << "the jail shares the host's " << ns << " namespace";
  }
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["layers"]["namespaces"],
            "user, pid, mount, network, ipc, uts, cgroup");
}

TEST(EscapeNamespaces, OwnHostnameAndHostHostnameUntouched) {
  Project project;
  const std::string host_before = HostHostname();
  const std::string wanted = UniqueToken("h");
  // The program tries to rename the machine: sethostname must not reach the
  // host's UTS namespace (and is refused without CAP_SYS_ADMIN anyway).
  const JcsResult r = RunJail(project, {"--hostname", wanted}, Python(R"PY(
import json, socket
seen = socket.gethostname()
try:
    socket.sethostname('pwned-by-jail')
    err = 0
except OSError as e:
    err = e.errno
print(json.dumps({'seen': seen, 'set_errno': err, 'after': socket.gethostname()}))
)PY"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json inside = LastJsonLine(r.out);
  ASSERT_TRUE(inside.is_object()) << r.Describe();
  EXPECT_EQ(inside["seen"], wanted);
  EXPECT_NE(inside["set_errno"], 0) << "sethostname succeeded in the jail";
  EXPECT_EQ(HostHostname(), host_before);

  const JcsResult d = RunJail(project, {}, {"/bin/hostname"});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_EQ(d.out, "jcs\n") << "default hostname";
  EXPECT_NE(host_before, "jcs");
}

// The jail user is the owner of the root, never 0, with a one-uid map; a
// root-owned project maps to nobody, not to host root.
TEST(EscapeNamespaces, RunsAsMappedUnprivilegedUid) {
  const std::string probe = R"PY(
import json, os
def attempt(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
print(json.dumps({
    'ids': [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
    'groups': os.getgroups(),
    'uid_map': open('/proc/self/uid_map').read().split(),
    'gid_map': open('/proc/self/gid_map').read().split(),
    'setuid0': attempt(lambda: os.setuid(0)),
    'setgid0': attempt(lambda: os.setgid(0)),
    'setgroups': attempt(lambda: os.setgroups([0])),
}))
)PY";
  {
    Project project;  // owned by kJailUid
    const JcsResult r = RunJail(project, {}, Python(probe));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    const nlohmann::json in = LastJsonLine(r.out);
    ASSERT_TRUE(in.is_object()) << r.Describe();
    const unsigned uid = kJailUid, gid = kJailGid;
    EXPECT_EQ(in["ids"], nlohmann::json({uid, uid, gid, gid}));
    for (const auto& g : in["groups"]) EXPECT_EQ(g, gid) << in.dump();
    EXPECT_EQ(in["uid_map"],
              nlohmann::json({std::to_string(uid), std::to_string(uid), "1"}));
    EXPECT_EQ(in["gid_map"],
              nlohmann::json({std::to_string(gid), std::to_string(gid), "1"}));
    EXPECT_NE(in["setuid0"], 0);
    EXPECT_NE(in["setgid0"], 0);
    EXPECT_NE(in["setgroups"], 0);
    ASSERT_TRUE(r.has_report);
    EXPECT_EQ(r.report["uid"], uid);
  }
  {
    Project project(0, 0);  // root-owned project: must not map to host root
    const JcsResult r = RunJail(project, {}, Python(probe));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    const nlohmann::json in = LastJsonLine(r.out);
    ASSERT_TRUE(in.is_object()) << r.Describe();
    // Root maps nobody; a rootless caller can map only itself.
    const unsigned id = Rootless() ? kJailUid : 65534;
    EXPECT_EQ(in["ids"], nlohmann::json({id, id, id, id}));
    EXPECT_EQ(in["uid_map"],
              nlohmann::json({std::to_string(id), std::to_string(id), "1"}));
  }
}

TEST(EscapeNamespaces, CapabilitiesDroppedAndNoNewPrivs) {
  Project project;
  // Both the program and a process it starts (exec drops nothing further if
  // the sets are already empty; a leftover bounding set would show here).
  const JcsResult r =
      RunJail(project, {},
              Bash("grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):'"
                   " /proc/self/status; echo ---; "
                   "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' "
                   "/proc/$$/status"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  int caps = 0, nnp = 0;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Cap", 0) == 0) {
      ++caps;
      EXPECT_NE(line.find("0000000000000000"), std::string::npos)
          << "capability set not empty: " << line;
    } else if (line.rfind("NoNewPrivs:", 0) == 0) {
      ++nnp;
      EXPECT_EQ(line, "NoNewPrivs:\t1");
    } else if (line.rfind("Seccomp:", 0) == 0) {
      EXPECT_EQ(line, "Seccomp:\t2") << "no seccomp filter";
    }
  }
  EXPECT_EQ(caps, 10) << r.Describe();
  EXPECT_EQ(nnp, 2) << r.Describe();
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["layers"]["capabilities_dropped"], "enforced");
  EXPECT_EQ(r.report["layers"]["no_new_privs"], "enforced");
}

// jcs is started with a pseudo-terminal as stdin that is its controlling
// terminal. Inside, the program must be in a new session without a
// controlling terminal, and TIOCSTI (typing into the host's terminal) on that
// very tty must be refused.
TEST(EscapeNamespaces, NoControllingTerminalEvenWithAHostTty) {
  Project project;
  const std::string code = R"PY(
import fcntl, json, os, termios
def attempt(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
stat = open('/proc/self/stat').read()
fields = stat[stat.rindex(')') + 2:].split()
print(json.dumps({
    'isatty0': os.isatty(0),
    'tty_nr': int(fields[4]),
    'sid_is_own_or_init': os.getsid(0) in (1, os.getpid()),
    'dev_tty': attempt(lambda: os.close(os.open('/dev/tty', os.O_RDWR))),
    'tiocsti': attempt(lambda: fcntl.ioctl(0, termios.TIOCSTI, b'x')),
    'tiocsctty': attempt(lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 1)),
}))
)PY";
  ProcessOptions options;
  options.pty_stdin = true;
  const JcsResult r = RunJail(project, {}, Python(code), options);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_EQ(in["tty_nr"], 0) << "the program has a controlling terminal";
  EXPECT_TRUE(in["sid_is_own_or_init"]) << in.dump();
  EXPECT_NE(in["dev_tty"], 0) << "/dev/tty opened in the jail";
  if (in["isatty0"].get<bool>()) {
    // The host tty reached the program: it must not be able to inject input
    // into it or make it its controlling terminal.
    EXPECT_EQ(in["tiocsti"], EPERM) << in.dump();
    EXPECT_NE(in["tiocsctty"], 0) << in.dump();
  }
}

TEST(EscapeNamespaces, HostEnvironmentDoesNotLeak) {
  Project project;
  const std::string secret = UniqueToken("envsecret");
  ProcessOptions options;
  options.extra_env = {"JCS_ESCAPE_SECRET=" + secret,
                       "LD_PRELOAD=/nonexistent-" + secret + ".so"};
  const JcsResult r = RunJail(
      project, {"--env", "JCS_GIVEN=given-value"},
      Python("import json, os; print(json.dumps(dict(os.environ)))"), options);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
  const nlohmann::json env = LastJsonLine(r.out);
  ASSERT_TRUE(env.is_object()) << r.Describe();
  for (const auto& [key, value] : env.items()) {
    EXPECT_TRUE(key == "PATH" || key == "HOME" || key == "LANG" ||
                key == "JCS_GIVEN" || key == "PWD" || key == "SHLVL" ||
                key == "_" || key == "LC_CTYPE")
        << "unexpected variable in the jail: " << key << "=" << value;
  }
  EXPECT_EQ(env["JCS_GIVEN"], "given-value");
  EXPECT_EQ(env["HOME"], "/tmp");
  EXPECT_EQ(env["LANG"], "C.UTF-8");
}

// The jail's init is a fork of jcs (no exec): its memory still holds jcs's
// environment and it may hold host descriptors. Nothing of it may be
// reachable from the program through /proc.
TEST(EscapeNamespaces, JailInitLeaksNoHostStateThroughProc) {
  Project project;
  const std::string secret = UniqueToken("initsecret");
  ProcessOptions options;
  options.extra_env = {"JCS_ESCAPE_INIT_SECRET=" + secret};
  const JcsResult r = RunJail(project, {}, Python(R"PY(
import json, os
me = os.getpid()
out = {}
for pid in [p for p in os.listdir('/proc') if p.isdigit() and int(p) != me]:
    for what in ['environ', 'mem', 'maps', 'auxv', 'fd', 'map_files', 'cwd',
                 'root', 'exe', 'fd/0', 'fd/3', 'fd/4', 'fd/5']:
        path = '/proc/%s/%s' % (pid, what)
        try:
            if os.path.isdir(path):
                out[path] = 'LISTED ' + ' '.join(os.listdir(path))
            else:
                with open(path, 'rb') as f:
                    out[path] = 'READ ' + f.read(65536).decode('latin-1')
        except OSError as e:
            out[path] = e.errno
print(json.dumps(out))
)PY"),
                              options);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find(secret), std::string::npos)
      << "host environment readable through /proc: " << r.out;
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_TRUE(in.contains("/proc/1/environ")) << in.dump();
  for (const auto& [path, result] : in.items()) {
    EXPECT_TRUE(result.is_number())
        << path << " is accessible: " << result.dump().substr(0, 300);
  }
}

}  // namespace
}  // namespace jcs::testing
