#!/bin/bash
# Runs the README's five-minute tour (the lines between <!-- tour:begin --> and <!-- tour:end -->)
# exactly as written, with the built jcs first on PATH, and checks what a newcomer should see.
set -u
ws=${TEST_SRCDIR}/${TEST_WORKSPACE}
readme=$ws/README.md
export PATH=$ws/tools:$PATH
tour=$(mktemp "${TEST_TMPDIR}/tour.XXXXXX")
awk '/<!-- tour:begin -->/ {on = 1; next} /<!-- tour:end -->/ {on = 0} on && !/^```/' \
  "$readme" >"$tour"
[[ $(wc -l <"$tour") -ge 10 ]] || { echo "FAIL: no tour found in README.md"; exit 1; }

# Its own session: whatever it leaves running (a daemon, after a failed line) is killed with it.
(cd "$TEST_TMPDIR" && exec setsid timeout 240 bash -eu "$tour") >"$tour.out" 2>&1 &
runner=$!
wait "$runner"
status=$?
# setsid did not fork (the subshell leads no process group), so the session's id is $runner.
pkill -KILL -s "$runner" 2>/dev/null || true
out=$(cat "$tour.out")
echo "$out"
failures=0
[[ $status -eq 0 ]] || { echo "FAIL: the tour stopped with exit $status"; failures=$((failures + 1)); }
for expected in \
  "every layer the default jail needs is here" \
  "65534" \
  "hello" \
  "ls: cannot access '/root'" \
  "Network is unreachable" \
  "no network: exit 1" \
  "denied: exit 1" \
  '"security.sandbox_violation":1' \
  "conversation c1 of project demo" \
  "corr-tour" \
  "drained, exit 0"; do
  if [[ $out != *"$expected"* ]]; then
    echo "FAIL: the tour's output lacks: $expected"
    failures=$((failures + 1))
  fi
done
[[ $failures -eq 0 ]] || exit 1
echo "PASS: the README tour runs as written"
