#!/bin/bash
# launch_bench as the README runs it: its flags are checked, a variant that cannot run stops it
# with the reason, and with a daemon it prints every variant and the ratios. (The README once ran
# it with --root /tmp, which jcs refuses: all 200 runs of two variants failed, and the table came
# out without them.)
set -u
ws=${TEST_SRCDIR}/${TEST_WORKSPACE}
bench=$ws/tools/launch_bench
jcs=$ws/tools/jcs
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_refusal STATUS TEXT ARGS...: launch_bench exits STATUS and says TEXT on stderr.
expect_refusal() {
  local want=$1 text=$2 out status
  shift 2
  out=$("$bench" "$@" 2>&1 >/dev/null)
  status=$?
  [[ $status -eq $want ]] || fail "launch_bench $* exited $status, expected $want: $out"
  [[ $out == *"$text"* ]] || fail "launch_bench $* did not say '$text': $out"
}
expect_refusal 2 "--jcs PATH is required"
expect_refusal 2 "--iterations needs a value" --jcs "$jcs" --iterations
expect_refusal 2 "--iterations: expected a whole number from 10 to 100000, got '1x'" \
  --jcs "$jcs" --iterations 1x
expect_refusal 2 "got '5'" --jcs "$jcs" --iterations 5
expect_refusal 2 "unknown flag --iteration" --jcs "$jcs" --iteration 10
expect_refusal 2 "--settle-ms: expected a whole number from 0 to 10000, got '-1'" \
  --jcs "$jcs" --settle-ms -1
expect_refusal 2 "got '10001'" --jcs "$jcs" --settle-ms 10001
expect_refusal 2 "--settle-ms needs a value" --jcs "$jcs" --settle-ms
expect_refusal 2 "--root: /nonexistent/x is not a directory" --jcs "$jcs" --root /nonexistent/x
expect_refusal 2 "--jcs: /nonexistent/jcs is not an executable file" --jcs /nonexistent/jcs
# jcs refuses /tmp as the jail's root: the bench stops at once and names the variant.
expect_refusal 1 "the jcs run variant did not exit 0 on its first run" \
  --jcs "$jcs" --root /tmp --iterations 10000

# A daemon with daemon_run on a short socket path (sun_path holds 108 bytes; TEST_TMPDIR is long).
dir=$(mktemp -d /tmp/launch_bench_test.XXXXXX)
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
cat >"$dir/serve.textproto" <<CONFIG
socket_path: "$dir/jcs.sock"
state_dir: "$dir/state"
daemon_run: true
CONFIG
"$jcs" serve --config "$dir/serve.textproto" >"$dir/serve.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [[ -S $dir/jcs.sock ]] && break; sleep 0.1; done
[[ -S $dir/jcs.sock ]] || { cat "$dir/serve.log"; fail "the daemon did not listen"; exit 1; }

before=$(ls -d /tmp/launch_bench.* 2>/dev/null | wc -l)
start_ns=$(date +%s%N)
out=$("$bench" --jcs "$jcs" --iterations 10 --socket "$dir/jcs.sock" 2>&1)
status=$?
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
echo "$out"
echo "elapsed: $elapsed_ms ms"
[[ $status -eq 0 ]] || fail "launch_bench exited $status"
# By default every run is followed by 50 ms of quiet (so one variant's leftover work, such as the
# daemon's refill, is not charged to the next): 4 variants x (10 + 5 warm-up) runs, 3 s at least.
[[ $out == *"interleaved, 50 ms between runs"* ]] || fail "the header does not give the settle time"
((elapsed_ms >= 3000)) || fail "10 iterations took $elapsed_ms ms: the runs were not spaced 50 ms"
for variant in direct "jcs run" bwrap "jcs run --daemon"; do
  grep -qE "^${variant} +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]+ +10$" <<<"$out" ||
    fail "no row of 10 runs for $variant"
done
for ratio in "jcs run / bwrap:" "jcs run --daemon / bwrap:" "jcs run --daemon / jcs run:"; do
  [[ $out == *"$ratio"* ]] || fail "no ratio '$ratio'"
done
# The setup breakdown comes from jcs run --report.
grep -qE "^  [a-z_.]+ +[0-9]+$" <<<"$out" || fail "no setup breakdown"
# --settle-ms 0: back to back, as before the flag.
out=$("$bench" --jcs "$jcs" --iterations 10 --socket "$dir/jcs.sock" --settle-ms 0 2>&1)
[[ $? -eq 0 && $out == *"interleaved, 0 ms between runs"* ]] ||
  fail "launch_bench --settle-ms 0 did not run back to back: $out"
after=$(ls -d /tmp/launch_bench.* 2>/dev/null | wc -l)
[[ $after -eq $before ]] || fail "the bench left its jail root under /tmp"

[[ $failures -eq 0 ]] || exit 1
echo "PASS"
