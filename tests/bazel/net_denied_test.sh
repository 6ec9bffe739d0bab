#!/bin/bash
# Passes only in a jail without network (jcs_test, --run_under=//tools/bazel:jcs_run_under): a
# fresh network namespace has only a downed lo, so even loopback is unreachable. Outside a jail the
# connection is refused (or made) instead, and this test fails.
if out=$(bash -c ': >/dev/tcp/127.0.0.1/9' 2>&1); then
  echo "FAIL: connected to 127.0.0.1:9: the network is reachable"
  exit 1
fi
case $out in
  *"Network is unreachable"*) echo "PASS: $out" ;;
  *) echo "FAIL: expected 'Network is unreachable', got: $out"; exit 1 ;;
esac
