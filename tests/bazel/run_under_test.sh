#!/bin/bash
# The Bazel wrapper (tools/bazel/jcs_run_under.sh) driven exactly as `bazel test --run_under`
# drives it: Bazel's test environment, the cwd in a runfiles tree of symlinks whose targets lie
# elsewhere. Checks what a test cannot check about itself: no process it started outlives it, its
# exit status and Bazel's outputs come back (XML, premature-exit marker, undeclared outputs), its
# scratch space is gone, and bad use gets one clear line.
set -uo pipefail
ws=${TEST_SRCDIR}/${TEST_WORKSPACE}
wrapper=$ws/tools/bazel/jcs_run_under.sh
jcs=$ws/tools/jcs
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

fake=$(mktemp -d "${TEST_TMPDIR}/fake.XXXXXX")
mkdir -p "$fake/bin" "$fake/tmp" "$fake/logs" "$fake/outputs" "$fake/runfiles/ws/pkg"
marker="jcs-leftover-$$-$RANDOM"
cat >"$fake/bin/prog.sh" <<PROG
#!/bin/bash
# A test that leaves a process behind, writes Bazel's outputs and reports what it sees.
setsid bash -c 'exec -a $marker sleep 300' </dev/null >/dev/null 2>&1 &
echo '<testsuites name="fake"/>' >"\$XML_OUTPUT_FILE"
touch "\$TEST_PREMATURE_EXIT_FILE"
echo out >"\$TEST_UNDECLARED_OUTPUTS_DIR/out.txt"
echo scratch >"\$TEST_TMPDIR/scratch" && echo "tmpdir writable"
echo "srcdir=\$TEST_SRCDIR workspace=\$TEST_WORKSPACE cwd=\$(pwd) data=\$(cat pkg/data.txt)"
cat /var/lib/dpkg/status >/dev/null 2>&1 && echo "host file readable"
exit "\${1:-0}"
PROG
chmod +x "$fake/bin/prog.sh"
echo "linked data" >"$fake/bin/data.txt"
ln -s "$fake/bin/prog.sh" "$fake/runfiles/ws/pkg/prog"
ln -s "$fake/bin/data.txt" "$fake/runfiles/ws/pkg/data.txt"

run_wrapper() { # ARGS...: the wrapper in the fake runfiles tree, as Bazel runs it
  (cd "$fake/runfiles/ws" && env -i PATH=/usr/bin:/bin TEST_TMPDIR="$fake/tmp" \
    TEST_SRCDIR="$fake/runfiles" TEST_WORKSPACE=ws TEST_TIMEOUT=60 \
    XML_OUTPUT_FILE="$fake/logs/test.xml" TEST_PREMATURE_EXIT_FILE="$fake/logs/premature" \
    TEST_UNDECLARED_OUTPUTS_DIR="$fake/outputs" bash "$wrapper" "$@")
}

out=$(run_wrapper --jcs="$jcs" --memory=256M -- pkg/prog 0 2>&1)
status=$?
[[ $status -eq 0 ]] || fail "exit status $status, expected 0: $out"
[[ $out == *"tmpdir writable"* ]] || fail "TEST_TMPDIR not writable in the jail: $out"
[[ $out == *"srcdir=$fake/runfiles workspace=ws cwd=$fake/runfiles/ws data=linked data"* ]] ||
  fail "runfiles or environment not as Bazel set them: $out"
[[ $out != *"host file readable"* ]] || fail "a host file was readable: $out"
grep -q '<testsuites name="fake"/>' "$fake/logs/test.xml" 2>/dev/null ||
  fail "XML_OUTPUT_FILE was not copied back"
[[ -e $fake/logs/premature ]] || fail "TEST_PREMATURE_EXIT_FILE was not mirrored"
[[ $(cat "$fake/outputs/out.txt" 2>/dev/null) == out ]] || fail "undeclared output missing"
[[ -z $(ls "$fake/tmp") ]] || fail "the jail's scratch root was left in TEST_TMPDIR: $(ls "$fake/tmp")"
# The pattern comes from a file: a grep given the marker as an argument would find itself.
printf '%s' "$marker" >"$fake/marker"
leftover=$(grep -l -F -f "$fake/marker" /proc/[0-9]*/cmdline 2>/dev/null || true)
[[ -z $leftover ]] || fail "a process the test started outlived it: $leftover"

out=$(run_wrapper --jcs="$jcs" -- pkg/prog 7 2>&1)
status=$?
[[ $status -eq 7 ]] || fail "exit status $status, expected the test's 7: $out"

out=$(run_wrapper --jcs="$jcs" --memory=256M pkg/prog 2>&1)
status=$?
[[ $status -eq 125 && $out == *"flags must end with --"* ]] ||
  fail "flags without -- : status $status: $out"
out=$(run_wrapper --jcs="$jcs" --memory=lots -- pkg/prog 2>&1)
status=$?
[[ $status -ne 0 && $out == *"--memory: expected a size"* ]] ||
  fail "a bad jcs run flag: status $status: $out"
out=$(cd "$fake" && env -i PATH=/usr/bin:/bin bash "$wrapper" --jcs="$jcs" -- true 2>&1)
[[ $out == *"TEST_TMPDIR is not set"* ]] || fail "outside bazel test: $out"

# Under Bazel's sandboxed strategy /sys/fs/cgroup is read-only: one line naming the flag to add.
out=$(unshare -m bash -c 'mount -o remount,bind,ro /sys/fs/cgroup && "$@"' _ \
  bash -c "$(declare -f run_wrapper); fake='$fake' wrapper='$wrapper' run_wrapper --jcs='$jcs' -- pkg/prog" 2>&1)
status=$?
[[ $status -eq 125 && $out == *"--spawn_strategy=local"* ]] ||
  fail "read-only cgroupfs: status $status: $out"

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "PASS: every check"
