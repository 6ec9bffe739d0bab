#!/bin/bash
# Passes only in a jail: host files outside the jail's root, its runfiles and the system
# directories cannot be read (Debian's package database and root's home are always on the host).
for path in /var/lib/dpkg/status /root/.bashrc /root/.profile; do
  if [[ -e $path ]] || cat "$path" >/dev/null 2>&1; then
    echo "FAIL: $path is visible"
    exit 1
  fi
done
# Writes outside the root fail too (the runfiles are read-only).
if touch "${TEST_SRCDIR}/planted" 2>/dev/null; then
  echo "FAIL: wrote into the runfiles tree"
  exit 1
fi
echo "PASS: no host file outside the jail is visible"
