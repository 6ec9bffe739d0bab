#!/bin/bash
# Runs one Bazel test inside a jcs jail. Two ways in:
#   bazel test --run_under=//tools/bazel:jcs_run_under //...            (every test)
#   bazel test --run_under='//tools/bazel:jcs_run_under --net=loopback --' //...
#   jcs_test(...) from //tools/bazel:defs.bzl                           (one test)
# Usage: jcs_run_under [JCS-RUN-FLAGS... --] TEST [ARGS...]
# Flags before `--` are `jcs run` flags (write them as --flag=value) plus --jcs=PATH (the jcs
# binary). The jail: the test's runfiles read-only (resolved: jcs run --runfiles), a fresh root
# under TEST_TMPDIR owned by the jail user (nobody), no network, `jcs run`'s limits, the test's
# timeout, and Bazel's test environment with its writable paths redirected into the jail's root and
# copied back afterwards (XML_OUTPUT_FILE, TEST_PREMATURE_EXIT_FILE, the shard status file).
# With JCS_SOCKET set (pass it with --test_env=JCS_SOCKET), the test runs through that daemon's warm
# jails (jcs run --daemon: same flags, same guarantees; the daemon needs daemon_run: true); when
# nothing answers there, or daemon runs are off, it runs cold (--daemon-fallback: a test suite must
# not fail for a missing daemon). A daemon that refuses the run fails the test: never a silent
# cold run then.
set -euo pipefail

die() {
  echo "jcs_run_under: $*" >&2
  exit 125
}

jcs=${JCS_BINARY:-}
flags=()
if [[ $# -gt 0 && $1 == --* ]]; then
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      --jcs=*) jcs=${1#--jcs=} ;;
      *) flags+=("$1") ;;
    esac
    shift
  done
  [[ $# -gt 0 ]] || die "flags must end with -- before the test (got: ${flags[*]})"
  shift
fi
[[ $# -gt 0 ]] || die "no test to run (usage: jcs_run_under [FLAGS... --] TEST [ARGS...])"
[[ -n ${TEST_TMPDIR:-} && -d ${TEST_TMPDIR} ]] ||
  die "TEST_TMPDIR is not set: run me through bazel test (--run_under or jcs_test)"

if [[ -z $jcs ]]; then
  # --run_under: Bazel merges our runfiles into the test's, beside us (REPO/tools/bazel/ ->
  # REPO/tools/jcs); run directly: our own runfiles tree. jcs_test passes --jcs.
  for candidate in "${0%/tools/bazel/jcs_run_under*}/tools/jcs" "$0.runfiles"/*/tools/jcs; do
    [[ -x $candidate ]] && jcs=$candidate && break
  done
fi
[[ -n $jcs ]] || jcs=$(command -v jcs || true)
[[ -n $jcs && -x $jcs ]] || die "cannot find the jcs binary (set JCS_BINARY or pass --jcs=PATH)"

# Bazel's sandboxed strategies mount /sys/fs/cgroup read-only: the jail could not get its limits.
if awk '$5 ~ /^\/sys\/fs\/cgroup/ && $6 ~ /(^|,)ro(,|$)/ {ro = 1} END {exit !ro}' \
  /proc/self/mountinfo; then
  die "/sys/fs/cgroup is read-only here (Bazel's sandboxed strategy): run jailed tests with --spawn_strategy=local (or --strategy=TestRunner=local)"
fi

work=$(mktemp -d "${TEST_TMPDIR}/jcs.XXXXXX")
root=$work/root
mkdir -p "$root/tmp" "$root/out"
jail_uid=65534
if [[ $(id -u) -ne 0 ]]; then
  jail_uid=$(id -u)
fi
chown -R "$jail_uid:$jail_uid" "$root"

env_flags=()
pass() { # KEY [VALUE]: VALUE, or the host's value when set
  if [[ $# -ge 2 ]]; then
    env_flags+=("--env=$1=$2")
  elif [[ -n ${!1+set} ]]; then
    env_flags+=("--env=$1")
  fi
}
for key in TEST_SRCDIR TEST_WORKSPACE TEST_BINARY TEST_TARGET TEST_SIZE TEST_TIMEOUT \
  TEST_SHARD_INDEX TEST_TOTAL_SHARDS TEST_RANDOM_SEED TEST_RUN_NUMBER RUNFILES_DIR \
  RUNFILES_MANIFEST_FILE JAVA_RUNFILES PYTHON_RUNFILES GTEST_SHARD_INDEX GTEST_TOTAL_SHARDS \
  TZ; do
  pass "$key"
done
pass TEST_TMPDIR "$root/tmp"
pass GTEST_TMP_DIR "$root/tmp"
pass XML_OUTPUT_FILE "$root/out/test.xml"
[[ -n ${GTEST_OUTPUT:-} ]] && pass GTEST_OUTPUT "xml:$root/out/test.xml"
[[ -n ${TEST_PREMATURE_EXIT_FILE:-} ]] && pass TEST_PREMATURE_EXIT_FILE "$root/out/premature_exit"
if [[ -n ${TEST_SHARD_STATUS_FILE:-} ]]; then
  pass TEST_SHARD_STATUS_FILE "$root/out/shard_status"
  pass GTEST_SHARD_STATUS_FILE "$root/out/shard_status"
fi
bind_flags=()
if [[ -n ${TEST_UNDECLARED_OUTPUTS_DIR:-} ]]; then
  mkdir -p "$TEST_UNDECLARED_OUTPUTS_DIR"
  chown "$jail_uid:$jail_uid" "$TEST_UNDECLARED_OUTPUTS_DIR"
  bind_flags+=("--rw=$TEST_UNDECLARED_OUTPUTS_DIR")
  pass TEST_UNDECLARED_OUTPUTS_DIR
fi
runfiles=${TEST_SRCDIR:-${RUNFILES_DIR:-}}
[[ -n $runfiles ]] && bind_flags+=("--runfiles=$runfiles")

daemon_flags=()
if [[ -n ${JCS_SOCKET:-} ]]; then
  daemon_flags=(--daemon="$JCS_SOCKET" --daemon-fallback)
fi

status=0
"$jcs" run "${daemon_flags[@]}" --root="$root" --cwd="$(pwd -P)" --net=none --timeout="${TEST_TIMEOUT:-300}" \
  "${bind_flags[@]}" "${env_flags[@]}" "${flags[@]}" -- "$@" || status=$?

[[ -f $root/out/test.xml && -n ${XML_OUTPUT_FILE:-} ]] && cp "$root/out/test.xml" "$XML_OUTPUT_FILE"
[[ -e $root/out/premature_exit && -n ${TEST_PREMATURE_EXIT_FILE:-} ]] && touch "$TEST_PREMATURE_EXIT_FILE"
[[ -e $root/out/shard_status && -n ${TEST_SHARD_STATUS_FILE:-} ]] && touch "$TEST_SHARD_STATUS_FILE"
rm -rf "$work"
exit "$status"
