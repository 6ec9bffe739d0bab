#!/usr/bin/env bash
# Fails when clang-format (Google style, the repository's .clang-format) would change any C++ file.
set -euo pipefail
cd "${TEST_SRCDIR}/jcs"
command -v clang-format >/dev/null || { echo "clang-format is not installed (./bazelw installs it)"; exit 1; }
mapfile -t files < <(find . -name '*.cc' -o -name '*.h' | sort)
[[ ${#files[@]} -gt 10 ]] || { echo "expected the C++ sources in the runfiles, found ${#files[@]}"; exit 1; }
bad=0
for f in "${files[@]}"; do
  if ! clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not clang-formatted: ${f#./}"
    bad=1
  fi
done
[[ $bad -eq 0 ]] && echo "${#files[@]} files clang-format clean"
exit $bad
