#!/bin/bash
# docs/completion/_jcs as zsh runs it: an interactive `zsh -f` (no user startup files) in a
# pseudo-terminal (zsh/zpty) loads it with compinit, a TAB is typed after each partial command
# line, and a key bound to a widget that dumps $BUFFER shows what the completion made of it.
# (The bash completion has its own such test in reference_docs_test.)
set -u
ws=${TEST_SRCDIR}/${TEST_WORKSPACE}
command -v zsh >/dev/null || {
  echo "FAIL: zsh is not installed (bazelw installs it)"
  exit 1
}
fpath_dir=$TEST_TMPDIR/fpath
mkdir -p "$fpath_dir"
cp "$ws/docs/completion/_jcs" "$fpath_dir/_jcs"

# One line per case: the typed text, a TAB, then the line as completed.
actual=$(zsh -f -s "$fpath_dir" "$TEST_TMPDIR/buffer" <<'ZSH'
zmodload zsh/zpty || exit 2
dir=$1 out=$2
complete_line() {
  rm -f $out
  # ^U clears the line, TAB completes, ^X dumps the buffer.
  zpty -w -n z $'\x15'"$1"$'\t\x18'
  local i
  for i in {1..200}; do [[ -s $out ]] && break; sleep 0.05; done
  print -r -- "$1 => $(<$out)"
}
zpty z 'zsh -f -i'
zpty -w z "fpath=($dir \$fpath); autoload -Uz compinit; compinit -u -D; PS1='> '"
zpty -w z "jcs() { :; }; dump() { print -r -- \"<\$BUFFER>\" >| $out; }; zle -N dump; bindkey '^X' dump"
complete_line 'jcs ru'
complete_line 'jcs run --mem'
complete_line 'jcs run --memory 1G --pi'
complete_line 'jcs run --net lo'
complete_line 'jcs run --landlock req'
complete_line 'jcs pro'
complete_line 'jcs project sto'
complete_line 'jcs help --completion z'
zpty -d z
ZSH
)
expected='jcs ru => <jcs run >
jcs run --mem => <jcs run --memory >
jcs run --memory 1G --pi => <jcs run --memory 1G --pids >
jcs run --net lo => <jcs run --net loopback >
jcs run --landlock req => <jcs run --landlock required >
jcs pro => <jcs project >
jcs project sto => <jcs project stop >
jcs help --completion z => <jcs help --completion zsh >'
if [[ $actual != "$expected" ]]; then
  echo "FAIL: zsh completion"
  diff -u <(echo "$expected") <(echo "$actual")
  exit 1
fi
echo "PASS: zsh completes as expected"
