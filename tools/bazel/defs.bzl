"""jcs_test: runs a test target inside a jcs jail (README "Bazel test suites")."""

def jcs_test(
        name,
        test,
        net = "none",
        memory = None,
        pids = None,
        cpus = None,
        ro = [],
        rw = [],
        env = [],
        jail_flags = [],
        **kwargs):
    """Runs `test` (a *_test or executable target) in a jail, as a test of its own.

    Args:
      name: the new test's name.
      test: the label of the test to jail.
      net: "none" (default), "loopback" or "egress" (jcs run --net).
      memory: memory limit ("1G", "unlimited"); default jcs run's 512M.
      pids: process limit; default jcs run's 256.
      cpus: CPU quota, e.g. "2".
      ro: extra host paths bound read-only at the same path.
      rw: extra host paths bound read-write at the same path.
      env: host variables passed through (KEY: the host's value; KEY=VALUE).
      jail_flags: any other `jcs run` flags, as --flag=value.
      **kwargs: the usual test attributes (size, timeout, tags, shard_count...).
    """
    flags = ["--net=" + net]
    if memory:
        flags.append("--memory=" + memory)
    if pids:
        flags.append("--pids=" + str(pids))
    if cpus:
        flags.append("--cpus=" + str(cpus))
    flags += ["--ro=" + p for p in ro]
    flags += ["--rw=" + p for p in rw]
    flags += ["--env=" + e for e in env]
    flags += jail_flags
    jcs = Label("//tools:jcs")
    native.sh_test(
        name = name,
        srcs = [Label("//tools/bazel:jcs_run_under.sh")],
        args = ["--jcs=$(rootpath %s)" % jcs] + flags + ["--", "$(rootpath %s)" % test],
        data = [jcs, test],
        **kwargs
    )
