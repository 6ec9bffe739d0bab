#!/bin/bash
# The command-line reference (issue 17): docs/man/jcs.1 and docs/completion/{jcs.bash,_jcs} are
# what `jcs help --man` / `--completion bash|zsh` print from the flag tables today (regenerate:
#   bazel-bin/tools/jcs help --man >docs/man/jcs.1
#   bazel-bin/tools/jcs help --completion bash >docs/completion/jcs.bash
#   bazel-bin/tools/jcs help --completion zsh >docs/completion/_jcs
# ); the man page renders without a groff warning; the bash completion completes; and every
# command's --help exits 0 within 80 columns, listing the flags the man page lists, each with its
# default.
set -u
ws=${TEST_SRCDIR}/${TEST_WORKSPACE}
jcs=$ws/tools/jcs
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# 1. No drift between the committed files and the tables.
for pair in "man/jcs.1:--man" "completion/jcs.bash:--completion bash" \
  "completion/_jcs:--completion zsh"; do
  file=${pair%%:*}
  # shellcheck disable=SC2086
  if ! diff -u "$ws/docs/$file" <("$jcs" help ${pair#*:}) >"$TEST_TMPDIR/diff"; then
    cat "$TEST_TMPDIR/diff"
    fail "docs/$file is stale: regenerate it with jcs help ${pair#*:}"
  fi
done

# 2. The man page: no warnings of any kind (-ww), and every section there.
warnings=$(groff -man -Tutf8 -ww "$ws/docs/man/jcs.1" 2>&1 >/dev/null)
[[ -z $warnings ]] || fail "groff warnings: $warnings"
rendered=$(groff -man -Tutf8 -ww "$ws/docs/man/jcs.1" 2>/dev/null | sed 's/.\x08//g')
for want in "jcs run" "jcs serve" "jcs project start" "--memory SIZE" "--opt KEY=VALUE" \
  "[default: info]" "JCS_SOCKET"; do
  [[ $rendered == *"$want"* ]] || fail "the man page does not show '$want'"
done

# 3. Bash completion, as bash calls it: COMP_WORDS/COMP_CWORD in, COMPREPLY out.
complete_words() {
  bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _jcs jcs "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    echo "${COMPREPLY[*]}"' _ "$ws/docs/completion/jcs.bash" "$@"
}
expect_completion() {
  local want=$1
  shift
  local got
  got=$(complete_words "$@")
  [[ $got == "$want" ]] || fail "completing '$*': got '$got', want '$want'"
}
expect_completion "run" jcs ru
expect_completion "--memory" jcs run --me
expect_completion "start stop" jcs project st
expect_completion "none loopback egress" jcs run --net ""
expect_completion "--opt --options" jcs project start /srv/p --opt
expect_completion "--log-level" jcs serve --log
expect_completion "bash zsh" jcs help --completion ""
# After --, the words are the program's: nothing from jcs (bash falls back to file names).
expect_completion "" jcs run -- ls --me
# The zsh script at least parses as shell (zsh itself is not on the build image).
bash -n "$ws/docs/completion/jcs.bash" || fail "jcs.bash does not parse"
[[ $(head -1 "$ws/docs/completion/_jcs") == "#compdef jcs" ]] || fail "_jcs: no #compdef line"

# 4. Every command of the man page answers --help: exit 0, nothing on stderr, no line over 80
#    columns, and the flags the man page lists for it, each with its default.
mapfile -t commands < <(sed -n 's/^\.SS "jcs \([a-z]*\)\( [a-z][a-z]*\)\{0,1\}.*/\1\2/p' \
  "$ws/docs/man/jcs.1" | sed 's/ [A-Z].*//')
[[ ${#commands[@]} -ge 25 ]] || fail "only ${#commands[@]} commands in the man page"
for command in "${commands[@]}"; do
  # shellcheck disable=SC2086
  out=$("$jcs" $command --help 2>"$TEST_TMPDIR/err")
  status=$?
  [[ $status -eq 0 ]] || fail "jcs $command --help: exit $status"
  [[ ! -s $TEST_TMPDIR/err ]] || fail "jcs $command --help: stderr: $(cat "$TEST_TMPDIR/err")"
  [[ $out == "usage: jcs $command"* ]] || fail "jcs $command --help: no usage line"
  while IFS= read -r line; do
    ((${#line} <= 80)) || fail "jcs $command --help: line over 80 columns: $line"
  done <<<"$out"
  # The man page's flags of this command: the .TP entries of its .SS section.
  mapfile -t flags < <(awk -v head=".SS \"jcs $command" '
    index($0, head) == 1 && (substr($0, length(head) + 1, 1) ~ /[ "]/) {on = 1; next}
    /^\.S[SH]/ {on = 0}
    on && prev == ".TP" {sub(/^\\fB/, ""); sub(/\\fR.*/, ""); gsub(/\\-/, "-"); print}
    {prev = $0}' "$ws/docs/man/jcs.1")
  ((${#flags[@]} > 0)) || fail "jcs $command: no flags in the man page"
  # ... and no flag of --help is missing from it (jcs run's are read back from its usage text).
  listed=$(grep -cE '^  (-[A-Za-z], )?--[a-z]' <<<"$out" | head -1)
  [[ $out == *"  -h, --help"* ]] && listed=$((listed - 1))
  ((listed == ${#flags[@]})) ||
    fail "jcs $command: --help lists ${listed} flags, the man page ${#flags[@]}"
  for flag in "${flags[@]}"; do
    [[ $out == *"  $flag"* ]] || fail "jcs $command --help does not list $flag"
    # jcs run's table (jail/spec.cc) states defaults in its help text, where it has one.
    [[ $command == run ]] && continue
    entry=$(awk -v flag="  $flag" 'index($0, flag) == 1 {on = 1; print; next}
      on && /^  -/ {exit} on {print}' <<<"$out" | tr -s ' \n' '  ')
    [[ $entry == *"[default: "* ]] || fail "jcs $command --help: $flag has no default"
  done
done

# 5. The top-level list names every command, and --version answers without a daemon.
list=$("$jcs" --help)
for command in "${commands[@]}"; do
  [[ $list == *"  ${command%% *} "* ]] || fail "jcs --help does not list ${command%% *}"
done
[[ $("$jcs" --version --socket "$TEST_TMPDIR/none.sock") == "jcs "* ]] || fail "jcs --version"
# `jcs help COMMAND [SUB]` is `jcs COMMAND [SUB] --help`.
[[ $("$jcs" help project start) == "$("$jcs" project start --help)" ]] ||
  fail "jcs help project start differs from jcs project start --help"
[[ $("$jcs" help run) == "$("$jcs" run --help)" ]] || fail "jcs help run differs from jcs run --help"

if ((failures > 0)); then
  echo "${failures} failure(s)"
  exit 1
fi
echo "PASS: reference in sync, man page clean, completion works, ${#commands[@]} commands' --help"
