#!/bin/bash
# An ordinary test that passes the same with and without the jail: it reads its data from the
# runfiles, writes TEST_TMPDIR and an undeclared output.
set -euo pipefail
data=${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/bazel/testdata.txt
[[ $(cat "$data") == "runfiles reach the jail" ]] || { echo "FAIL: $data"; exit 1; }
[[ $(cat tests/bazel/testdata.txt) == "runfiles reach the jail" ]] || { echo "FAIL: cwd"; exit 1; }
echo scratch >"${TEST_TMPDIR}/scratch"
[[ $(cat "${TEST_TMPDIR}/scratch") == scratch ]]
if [[ -n ${TEST_UNDECLARED_OUTPUTS_DIR:-} ]]; then
  echo output >"${TEST_UNDECLARED_OUTPUTS_DIR}/ordinary.txt"
fi
echo PASS
