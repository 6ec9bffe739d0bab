// Escape suite: the filesystem view. Secrets are planted on the host in
// world-readable places outside the root (and the test proves the jail's uid
// could read them there), then the program tries every documented way out:
// absolute paths, symlinks planted in the root, `..`, /proc/*/root,
// /proc/self/cwd, /tmp, binds of planted symlinks.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

// Opens each path given in argv and prints {path: "ERR <errno>" | content}.
constexpr char kTryRead[] = R"PY(
import json, os, sys
out = {}
for p in sys.argv[1:]:
    try:
        if os.path.isdir(p):
            out[p] = 'DIR ' + ' '.join(sorted(os.listdir(p)))
        else:
            with open(p, 'rb') as f:
                out[p] = f.read(4096).decode('utf-8', 'replace')
    except OSError as e:
        out[p] = 'ERR %d' % e.errno
print(json.dumps(out))
)PY";

class EscapeFilesystem : public ::testing::Test {
 protected:
  void SetUp() override {
    // A sibling of the root (same parent directory on the host).
    outside_dir_ = project_.base() + "/outside";
    ASSERT_EQ(mkdir(outside_dir_.c_str(), 0755), 0);
    chmod(outside_dir_.c_str(), 0755);
    sibling_secret_ = outside_dir_ + "/secret.txt";
    sibling_token_ = UniqueToken("SIBLINGSECRET");
    WriteHostFile(sibling_secret_, sibling_token_ + "\n", 0644);
    // Somewhere else on the host, not under /tmp.
    var_dir_ = "/var/tmp/" + UniqueToken("jcs-escape-");
    ASSERT_EQ(mkdir(var_dir_.c_str(), 0755), 0);
    chmod(var_dir_.c_str(), 0755);
    var_secret_ = var_dir_ + "/secret.txt";
    var_token_ = UniqueToken("VARSECRET");
    WriteHostFile(var_secret_, var_token_ + "\n", 0644);
    // Control: without the jail, the jail's uid could read both.
    ASSERT_TRUE(ReadableAs(kJailUid, kJailGid, sibling_secret_));
    ASSERT_TRUE(ReadableAs(kJailUid, kJailGid, var_secret_));
  }
  void TearDown() override { RemoveTree(var_dir_); }

  void ExpectNoSecret(const JcsResult& r) {
    EXPECT_EQ(r.out.find(sibling_token_), std::string::npos)
        << "host file outside the root was read:\n"
        << r.Describe();
    EXPECT_EQ(r.out.find(var_token_), std::string::npos)
        << "host file outside the root was read:\n"
        << r.Describe();
    EXPECT_EQ(r.err.find(sibling_token_), std::string::npos);
    EXPECT_EQ(r.err.find(var_token_), std::string::npos);
  }

  Project project_;
  std::string outside_dir_, sibling_secret_, sibling_token_;
  std::string var_dir_, var_secret_, var_token_;
};

TEST_F(EscapeFilesystem, HostPathsOutsideTheRootAreUnreachable) {
  const std::string root = project_.root();
  // Symlinks a previous (malicious) run could have left in the root.
  ASSERT_EQ(symlink(sibling_secret_.c_str(), project_.Path("abs_sib").c_str()),
            0);
  ASSERT_EQ(symlink(var_secret_.c_str(), project_.Path("abs_var").c_str()), 0);
  ASSERT_EQ(symlink("../outside/secret.txt", project_.Path("rel_sib").c_str()),
            0);
  ASSERT_EQ(symlink(outside_dir_.c_str(), project_.Path("dir_sib").c_str()), 0);
  ASSERT_EQ(symlink(var_dir_.c_str(), project_.Path("dir_var").c_str()), 0);
  ASSERT_EQ(symlink("/root", project_.Path("to_root").c_str()), 0);
  ASSERT_EQ(symlink("/home", project_.Path("to_home").c_str()), 0);
  std::vector<std::string> paths = {
      sibling_secret_,
      var_secret_,
      outside_dir_,
      var_dir_,
      root + "/abs_sib",
      root + "/abs_var",
      root + "/rel_sib",
      root + "/dir_sib/secret.txt",
      root + "/dir_var/secret.txt",
      "abs_sib",
      "rel_sib",
      "../outside/secret.txt",
      root + "/../outside/secret.txt",
      root + "/../../../../../.." + var_secret_,
      "/../../.." + var_secret_,
      "/proc/self/root" + sibling_secret_,
      "/proc/self/root" + var_secret_,
      "/proc/self/root/.." + var_secret_,
      "/proc/1/root" + sibling_secret_,
      "/proc/1/root" + var_secret_,
      "/proc/1/cwd/../outside/secret.txt",
      "/proc/self/cwd/../outside/secret.txt",
      "/proc/self/cwd/rel_sib",
      "/root",
      "/home",
      "/var",
      "to_root",
      "to_home",
  };
  std::vector<std::string> argv = Python(kTryRead);
  argv.insert(argv.end(), paths.begin(), paths.end());
  const JcsResult r = RunJail(project_, {}, argv);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ExpectNoSecret(r);
  const nlohmann::json seen = LastJsonLine(r.out);
  ASSERT_TRUE(seen.is_object()) << r.Describe();
  for (const std::string& p : paths) {
    ASSERT_TRUE(seen.contains(p)) << p;
    EXPECT_EQ(seen[p].get<std::string>().rfind("ERR ", 0), 0u)
        << p << " is reachable in the jail: " << seen[p];
  }
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["layers"]["pivot_root"], "enforced");
  EXPECT_EQ(
      r.report["layers"]["landlock"].get<std::string>().rfind("enforced", 0),
      0u)
      << r.report["layers"].dump();
}

TEST_F(EscapeFilesystem, ProcRootLinksLeadOnlyToTheJailRoot) {
  const JcsResult r = RunJail(project_, {}, Python(R"PY(
import json, os
def attempt(f):
    try:
        return f()
    except OSError as e:
        return 'ERR %d' % e.errno
st = os.stat('/')
print(json.dumps({
    'self_root_link': os.readlink('/proc/self/root'),
    'self_root_list': sorted(os.listdir('/proc/self/root')),
    'root_list': sorted(os.listdir('/')),
    'self_root_same': (lambda s: [s.st_dev, s.st_ino] == [st.st_dev, st.st_ino])(
        os.stat('/proc/self/root/')),
    'self_root_up_same': (lambda s: [s.st_dev, s.st_ino] == [st.st_dev, st.st_ino])(
        os.stat('/proc/self/root/../../..')),
    'init_root_list': attempt(lambda: sorted(os.listdir('/proc/1/root'))),
    'dotdot_list': sorted(os.listdir('/../../../..')),
}))
)PY"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_EQ(in["self_root_link"], "/");
  EXPECT_EQ(in["self_root_list"], in["root_list"]);
  EXPECT_EQ(in["dotdot_list"], in["root_list"]);
  EXPECT_TRUE(in["self_root_same"]);
  EXPECT_TRUE(in["self_root_up_same"]);
  if (in["init_root_list"].is_array()) {
    EXPECT_EQ(in["init_root_list"], in["root_list"]);
  }
  // The host's root has entries the jail must not show (e.g. /var, /sys).
  for (const auto& entry : in["root_list"]) {
    EXPECT_NE(entry, "var") << in.dump();
    EXPECT_NE(entry, "sys") << in.dump();
    EXPECT_NE(entry, "home") << in.dump();
    EXPECT_NE(entry, "root") << in.dump();
    EXPECT_NE(entry, "boot") << in.dump();
  }
}

TEST_F(EscapeFilesystem, RootWritableSystemDirsReadOnly) {
  const std::string token = UniqueToken("w");
  const JcsResult r = RunJail(project_, {},
                              Python(R"PY(
import json, os, sys
token = sys.argv[1]
out = {}
for d in ['/usr', '/usr/bin', '/etc', '/bin', '/lib', '/', '/proc', os.getcwd()]:
    p = os.path.join(d, token)
    try:
        with open(p, 'w') as f:
            f.write('x')
        out[d] = 0
    except OSError as e:
        out[d] = e.errno
for p in ['/etc/hostname', '/usr/bin/env']:
    try:
        os.chmod(p, 0o777)
        out['chmod ' + p] = 0
    except OSError as e:
        out['chmod ' + p] = e.errno
    try:
        os.rename(p, p + '.moved')
        out['rename ' + p] = 0
    except OSError as e:
        out['rename ' + p] = e.errno
print(json.dumps(out))
)PY",
                                     {token}));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  for (const char* d : {"/usr", "/usr/bin", "/etc", "/bin", "/lib", "/"}) {
    EXPECT_EQ(in[d], EROFS) << d << " is not read-only: " << in.dump();
  }
  EXPECT_NE(in["/proc"], 0);
  EXPECT_EQ(in[project_.root()], 0) << "the root is not writable";
  for (const char* op : {"chmod /etc/hostname", "rename /etc/hostname",
                         "chmod /usr/bin/env", "rename /usr/bin/env"}) {
    EXPECT_NE(in[op], 0) << op;
  }
  // The write into the root reached the host, owned by the jail user; nothing
  // reached the host's system directories.
  struct stat st;
  ASSERT_EQ(stat(project_.Path(token).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kJailUid);
  EXPECT_EQ(project_.ReadFile(token), "x");
  EXPECT_NE(access(("/etc/" + token).c_str(), F_OK), 0);
  EXPECT_NE(access(("/usr/" + token).c_str(), F_OK), 0);
  EXPECT_NE(access(("/usr/bin/" + token).c_str(), F_OK), 0);
}

// Every mount is nosuid (and nodev outside /dev), system directories are
// read-only, and no mount other than the jail's own exists: the old root is
// detached and /sys is absent.
TEST_F(EscapeFilesystem, MountTableIsMinimalNosuidNodev) {
  const JcsResult r = RunJail(project_, {}, Python(R"PY(
import json, os
mounts = []
for line in open('/proc/self/mountinfo'):
    f = line.split()
    mounts.append({'point': f[4].replace('\\040', ' '), 'opts': f[5].split(','),
                   'fstype': f[f.index('-') + 1]})
print(json.dumps({'mounts': mounts, 'sys': os.path.lexists('/sys')}))
)PY"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_FALSE(in["sys"]) << "/sys exists in the jail";
  const std::set<std::string> system = {"/usr",   "/bin",   "/sbin",   "/lib",
                                        "/lib32", "/lib64", "/libx32", "/etc"};
  const std::set<std::string> jail = {
      "/",           "/proc",        "/tmp",         "/dev",
      "/dev/shm",    "/dev/null",    "/dev/zero",    "/dev/full",
      "/dev/random", "/dev/urandom", project_.root()};
  std::set<std::string> points;
  for (const auto& m : in["mounts"]) {
    const std::string point = m["point"];
    points.insert(point);
    std::set<std::string> opts(m["opts"].begin(), m["opts"].end());
    EXPECT_TRUE(system.count(point) || jail.count(point))
        << "unexpected mount in the jail (host mount leaked or old root "
           "attached): "
        << m.dump();
    EXPECT_TRUE(opts.count("nosuid")) << m.dump();
    if (point.rfind("/dev", 0) != 0) {
      EXPECT_TRUE(opts.count("nodev")) << m.dump();
    }
    if (system.count(point) || point == "/" || point == "/proc") {
      EXPECT_TRUE(opts.count("ro")) << m.dump();
    }
    if (point == project_.root() || point == "/tmp") {
      EXPECT_TRUE(opts.count("rw")) << m.dump();
    }
  }
  for (const char* needed : {"/", "/proc", "/tmp", "/dev", "/usr", "/etc"}) {
    EXPECT_TRUE(points.count(needed)) << needed << " not mounted";
  }
  EXPECT_TRUE(points.count(project_.root())) << "the root is not bound";
}

TEST_F(EscapeFilesystem, TmpIsPrivateAndSizeCapped) {
  const std::string token = UniqueToken("tmpfile");
  const JcsResult r = RunJail(project_, {"--tmp-size", "4M"},
                              Python(R"PY(
import errno, json, os, sys
def fill(path):
    written = 0
    chunk = b'\1' * (1 << 20)
    try:
        with open(path, 'wb') as f:
            for _ in range(16):
                f.write(chunk)
                f.flush()
                written += len(chunk)
            os.fsync(f.fileno())
        return [written, 0]
    except OSError as e:
        return [written, e.errno]
out = {'tmp_list': sorted(os.listdir('/tmp')),
       'base_list': sorted(os.listdir(sys.argv[2]))}
with open('/tmp/' + sys.argv[1], 'w') as f:
    f.write('jail')
out['tmp'] = fill('/tmp/big')
os.unlink('/tmp/big')
out['shm'] = fill('/dev/shm/big')
print(json.dumps(out))
)PY",
                                     {token, project_.base()}));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  // The host's /tmp is not visible: only the directory leading to the root.
  const std::string base_name = project_.base().substr(5);  // after "/tmp/"
  EXPECT_EQ(in["tmp_list"], nlohmann::json({base_name})) << in.dump();
  EXPECT_EQ(in["base_list"], nlohmann::json({"root"})) << in.dump();
  EXPECT_NE(access(("/tmp/" + token).c_str(), F_OK), 0)
      << "a file written to the jail's /tmp appeared in the host's /tmp";
  for (const char* fs : {"tmp", "shm"}) {
    EXPECT_EQ(in[fs][1], ENOSPC) << fs << " is not size-capped: " << in.dump();
    EXPECT_LE(in[fs][0].get<long>(), 4L << 20) << fs;
  }
}

TEST_F(EscapeFilesystem, DevIsMinimalAndWorks) {
  const JcsResult r = RunJail(project_, {}, Python(R"PY(
import json, os, stat
out = {'list': sorted(os.listdir('/dev')), 'rdev': {}}
for d in ['null', 'zero', 'full', 'random', 'urandom']:
    st = os.stat('/dev/' + d)
    out['rdev'][d] = [stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)]
with open('/dev/null', 'wb') as f:
    f.write(b'discarded')
out['zero'] = open('/dev/zero', 'rb').read(64) == bytes(64)
out['null_read'] = len(open('/dev/null', 'rb').read())
try:
    with open('/dev/full', 'wb', buffering=0) as f:
        f.write(b'x')
    out['full'] = 0
except OSError as e:
    out['full'] = e.errno
a = open('/dev/urandom', 'rb').read(32)
b = open('/dev/random', 'rb').read(32)
out['random'] = len(a) == 32 and len(b) == 32 and a != b and a != bytes(32)
def attempt(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
out['mknod_blk'] = attempt(lambda: os.mknod('/tmp/vda', stat.S_IFBLK | 0o600, os.makedev(254, 0)))
out['mknod_chr'] = attempt(lambda: os.mknod('/dev/mem', stat.S_IFCHR | 0o600, os.makedev(1, 1)))
out['vda'] = attempt(lambda: open('/dev/vda', 'rb'))
out['mem'] = attempt(lambda: open('/dev/mem', 'rb'))
print(json.dumps(out))
)PY"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_EQ(in["list"],
            nlohmann::json({"fd", "full", "null", "random", "shm", "stderr",
                            "stdin", "stdout", "urandom", "zero"}));
  EXPECT_EQ(in["rdev"]["null"], nlohmann::json({true, 1, 3}));
  EXPECT_EQ(in["rdev"]["zero"], nlohmann::json({true, 1, 5}));
  EXPECT_EQ(in["rdev"]["full"], nlohmann::json({true, 1, 7}));
  EXPECT_EQ(in["rdev"]["random"], nlohmann::json({true, 1, 8}));
  EXPECT_EQ(in["rdev"]["urandom"], nlohmann::json({true, 1, 9}));
  EXPECT_TRUE(in["zero"]);
  EXPECT_EQ(in["null_read"], 0);
  EXPECT_EQ(in["full"], ENOSPC);
  EXPECT_TRUE(in["random"]);
  EXPECT_NE(in["mknod_blk"], 0);
  EXPECT_NE(in["mknod_chr"], 0);
  EXPECT_EQ(in["vda"], ENOENT);
  EXPECT_EQ(in["mem"], ENOENT);
}

TEST_F(EscapeFilesystem, ProcShowsOnlyTheJailAndIsReadOnly) {
  const JcsResult r = RunJail(project_, {}, Python(R"PY(
import json, os
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
def attempt(path, mode):
    try:
        with open(path, mode) as f:
            if 'w' in mode:
                f.write('1')
            else:
                f.read(16)
        return 0
    except OSError as e:
        return e.errno
print(json.dumps({
    'pids': pids, 'self': os.getpid(),
    'sysrq': attempt('/proc/sysrq-trigger', 'w'),
    'hostname': attempt('/proc/sys/kernel/hostname', 'w'),
    'core_pattern': attempt('/proc/sys/kernel/core_pattern', 'w'),
    'kcore': attempt('/proc/kcore', 'rb'),
}))
)PY"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  // The jail's init and the program: a fresh pid namespace, not the host's
  // hundreds of processes.
  EXPECT_LE(in["pids"].size(), 4u) << in.dump();
  EXPECT_LE(in["self"].get<int>(), 10) << in.dump();
  for (const auto& pid : in["pids"]) EXPECT_LE(pid.get<int>(), 50);
  EXPECT_NE(in["sysrq"], 0);
  EXPECT_NE(in["hostname"], 0);
  EXPECT_NE(in["core_pattern"], 0);
  EXPECT_NE(in["kcore"], 0);
}

// A symlink to /etc swapped into the root before the run: used as a bind
// source it shows nothing beyond the jail's own read-only /etc, and it cannot
// make /etc writable.
TEST_F(EscapeFilesystem, SymlinkToEtcInTheRootExposesNothingNew) {
  const std::string token = UniqueToken("etcw");
  ASSERT_EQ(symlink("/etc", project_.Path(".x").c_str()), 0);
  const std::string code = R"PY(
import json, os, sys
t = sys.argv[1]
out = {'same': sorted(os.listdir('.x')) == sorted(os.listdir('/etc'))}
for p in ['.x/' + t, '/etc/' + t]:
    try:
        open(p, 'w').close()
        out[p] = 0
    except OSError as e:
        out[p] = e.errno
print(json.dumps(out))
)PY";
  for (const char* flag : {"--ro", "--rw"}) {
    SCOPED_TRACE(flag);
    const JcsResult r =
        RunJail(project_, {flag, project_.Path(".x")}, Python(code, {token}));
    if (r.exit_code == 125) {
      EXPECT_EQ(r.StderrLines(), 1) << r.Describe();  // refused: fine
    } else {
      ASSERT_EQ(r.exit_code, 0) << r.Describe();
      const nlohmann::json in = LastJsonLine(r.out);
      ASSERT_TRUE(in.is_object()) << r.Describe();
      EXPECT_TRUE(in["same"]);
      // EROFS, not just EACCES: the mount itself stays read-only.
      EXPECT_EQ(in[".x/" + token], EROFS) << in.dump();
      EXPECT_EQ(in["/etc/" + token], EROFS) << in.dump();
    }
    EXPECT_NE(access(("/etc/" + token).c_str(), F_OK), 0)
        << "the jail wrote into the host's /etc";
  }
}

// "Bind sources resolved without following attacker-planted symlinks": the
// root belongs to the jail user, so a previous run can leave root/vendor ->
// <host dir>. An operator binding root/vendor must not expose the host dir.
TEST_F(EscapeFilesystem, PlantedSymlinkInRootUsedAsBindSourceIsNotFollowed) {
  ASSERT_EQ(symlink(outside_dir_.c_str(), project_.Path("vendor").c_str()), 0);
  ASSERT_EQ(symlink(var_dir_.c_str(), project_.Path("vendor2").c_str()), 0);
  for (const char* flag : {"--ro", "--rw"}) {
    SCOPED_TRACE(flag);
    std::vector<std::string> argv = Python(kTryRead);
    for (const std::string& p :
         {project_.Path("vendor/secret.txt"), sibling_secret_}) {
      argv.push_back(p);
    }
    const JcsResult r =
        RunJail(project_, {flag, project_.Path("vendor")}, argv);
    ExpectNoSecret(r);
    std::vector<std::string> argv2 = Python(kTryRead);
    argv2.push_back(project_.Path("vendor2/secret.txt"));
    argv2.push_back(var_secret_);
    const JcsResult r2 =
        RunJail(project_, {flag, project_.Path("vendor2")}, argv2);
    ExpectNoSecret(r2);
  }
}

// The root may sit below a directory only the supervisor can enter (Bazel's
// $TEST_TMPDIR under a 0700 /root): bind sources are opened with the
// supervisor's host identity, yet the program sees nothing of the private
// parent except the path to its root.
TEST(EscapeFilesystemPrivateParent, RootBelowAPrivateDirectoryWorks) {
  char tmpl[] = "/tmp/jcs-private-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string parent = tmpl;
  ASSERT_EQ(chmod(parent.c_str(), 0700), 0);
  // Rootless: the caller's own private directory.
  if (Rootless()) {
    ASSERT_EQ(chown(parent.c_str(), kJailUid, kJailGid), 0);
  }
  const std::string root = parent + "/project";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(chown(root.c_str(), 1000, 1000), 0);
  const std::string sibling = parent + "/secret.txt";
  { std::ofstream(sibling) << "SECRET"; }
  const JcsResult r =
      RunJcs({"run", "--root", root, "--", "/bin/sh", "-c",
              "echo written > out.txt && ls -A .. && cat ../secret.txt"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();  // cat fails: not in the jail
  EXPECT_EQ(r.out, "project\n") << r.Describe();
  std::ifstream written(root + "/out.txt");
  std::string line;
  EXPECT_TRUE(std::getline(written, line));
  EXPECT_EQ(line, "written");
  std::filesystem::remove_all(parent);
}

// Masked paths (the daemon masks every sensitive file of a project this way):
// the program cannot read, list, write, rename, link or replace them, by any
// route, while the rest of the root stays usable.
TEST_F(EscapeFilesystem, MaskedFilesAndDirectoriesCannotBeReached) {
  const std::string token = UniqueToken("MASKEDSECRET");
  project_.WriteFile(".env", token + "\n", 0644);
  ASSERT_EQ(mkdir(project_.Path("keys").c_str(), 0755), 0);
  ASSERT_EQ(chown(project_.Path("keys").c_str(), kJailUid, kJailGid), 0);
  project_.WriteFile("keys/id_rsa", token + "\n", 0644);
  project_.WriteFile("keys/server.pem", token + "\n", 0644);
  project_.WriteFile("visible.txt", "visible\n", 0644);
  ASSERT_EQ(symlink(".env", project_.Path("link_to_env").c_str()), 0);
  const JcsResult r =
      RunJail(project_, {"--mask", ".env", "--mask", project_.Path("keys")},
              Python(R"PY(
import json, os
out = {}
def attempt(name, fn):
    try:
        out[name] = 'OK ' + str(fn())
    except OSError as e:
        out[name] = 'ERR %d' % e.errno
attempt('read', lambda: open('.env').read())
attempt('read_abs', lambda: open(os.getcwd() + '/.env').read())
attempt('read_link', lambda: open('link_to_env').read())
attempt('read_proc', lambda: open('/proc/self/cwd/.env').read())
attempt('write', lambda: open('.env', 'w').write('x'))
attempt('list_dir', lambda: os.listdir('keys'))
attempt('read_in_dir', lambda: open('keys/id_rsa').read())
attempt('create_in_dir', lambda: open('keys/new', 'w').write('x'))
attempt('rename_away', lambda: os.rename('.env', 'stolen'))
attempt('hardlink', lambda: os.link('.env', 'hl'))
attempt('unmount', lambda: os.system('umount .env 2>/dev/null') or 'rc0')
attempt('visible', lambda: open('visible.txt').read().strip())
print(json.dumps(out))
)PY"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find(token), std::string::npos) << r.Describe();
  const nlohmann::json out = nlohmann::json::parse(r.out);
  for (const char* name :
       {"read", "read_abs", "read_link", "read_proc", "write", "list_dir",
        "read_in_dir", "create_in_dir"}) {
    EXPECT_TRUE(out[name].get<std::string>().rfind("ERR ", 0) == 0)
        << name << ": " << out[name];
  }
  // rename/link of a mount point fail with EBUSY/EXDEV/EPERM: the mask stays.
  EXPECT_TRUE(out["rename_away"].get<std::string>().rfind("ERR ", 0) == 0)
      << out["rename_away"];
  EXPECT_TRUE(out["hardlink"].get<std::string>().rfind("ERR ", 0) == 0)
      << out["hardlink"];
  EXPECT_EQ(out["visible"], "OK visible");
  // The host files are untouched.
  EXPECT_EQ(project_.ReadFile(".env"), token + "\n");
  EXPECT_EQ(project_.ReadFile("keys/id_rsa"), token + "\n");
  EXPECT_FALSE(project_.Exists("keys/new"));
}

TEST_F(EscapeFilesystem, MaskOutsideTheRootOrThroughASymlinkIsRefused) {
  ASSERT_EQ(symlink(".env", project_.Path("link").c_str()), 0);
  for (const std::vector<std::string>& flags :
       std::vector<std::vector<std::string>>{{"--mask", "../outside"},
                                             {"--mask", project_.root()},
                                             {"--mask", sibling_secret_},
                                             {"--mask", "link"}}) {
    const JcsResult r = RunJail(project_, flags, {"/bin/true"});
    EXPECT_EQ(r.exit_code, 125) << flags[1] << r.Describe();
    EXPECT_NE(r.err.find("--mask"), std::string::npos) << r.Describe();
  }
}

TEST_F(EscapeFilesystem, CwdIsInsideTheRootOnly) {
  ASSERT_EQ(mkdir(project_.Path("src").c_str(), 0755), 0);
  JcsResult r = RunJail(project_, {"--cwd", "src"}, {"/bin/pwd"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, project_.root() + "/src\n");
  for (const std::string& cwd :
       {std::string("../outside"), std::string("/tmp"), outside_dir_}) {
    r = RunJail(project_, {"--cwd", cwd}, {"/bin/pwd"});
    EXPECT_EQ(r.exit_code, 125) << cwd << r.Describe();
    EXPECT_NE(r.err.find("--cwd"), std::string::npos) << r.Describe();
  }
}

}  // namespace
}  // namespace jcs::testing
