#!/usr/bin/env bash
# Fails when a package includes a package above it (issue 11): the include graph runs one way,
#   tests/ -> tools/ -> supervisor/ -> runtime/conversation/ -> runtime/tools/ -> runtime/assets/
#     -> runtime/policy/
#     -> runtime/project/ -> jail/ -> egress/, telemetry/ -> loop/ -> proto/, base/, sanitizers/
#   with runtime/journal/ beside the runtime packages, using only telemetry/ and below
#   (runtime/conversation/ reads it for the incident timeline, and runs its project's tools),
#   and protocol/mcp/ (the MCP server) above runtime/tools/ and below supervisor/ and tools/: it
#   speaks MCP over a backend they give it (the control service for the daemon's HTTP transport,
#   the daemon's control API for `jcs mcp`); protocol/a2a/ (the A2A gateway) beside it, on its
#   JSON-RPC parser, and protocol/http/ (the gateways' loopback HTTP pieces) below both.
# ALLOWED below is the whole table: a package may include itself and the packages listed for it,
# nothing else. A source file in a package missing from the table, or an include of a project
# directory that is no package in it, fails too, so a new package has to be placed in the graph.
# Reads the sources' #include lines (a test cannot run `bazel query`).
set -euo pipefail

declare -A ALLOWED=(
  [base]=""
  [sanitizers]=""
  [proto]="sanitizers"
  [loop]="base proto"
  [telemetry]="base loop proto sanitizers"
  [egress]="base loop proto sanitizers"
  # The one arrow between siblings: a jail starts the egress proxy of its network policy.
  [jail]="base egress loop proto sanitizers"
  [runtime/journal]="base loop proto sanitizers telemetry"
  [runtime/project]="base egress jail loop proto sanitizers telemetry"
  [runtime/policy]="base egress jail loop proto runtime/project sanitizers telemetry"
  # Project assets (.jido loaders and store): read with the policy's sensitive-path rules.
  [runtime/assets]="base egress jail loop proto runtime/policy runtime/project sanitizers telemetry"
  [runtime/tools]="base egress jail loop proto runtime/assets runtime/policy runtime/project sanitizers telemetry"
  [runtime/conversation]="base egress jail loop proto runtime/assets runtime/journal runtime/policy runtime/project runtime/tools sanitizers telemetry"
  # The daemon serves MCP over HTTP (protocol/mcp's transport, on the control service's tools).
  [supervisor]="base egress jail loop proto protocol/a2a protocol/http protocol/mcp runtime/assets runtime/conversation runtime/journal runtime/policy runtime/project runtime/tools sanitizers telemetry"
  [protocol/mcp]="base egress jail loop proto protocol/http runtime/assets runtime/policy runtime/project runtime/tools sanitizers telemetry"
  [protocol/a2a]="base egress jail loop proto protocol/http protocol/mcp runtime/assets runtime/policy runtime/project runtime/tools sanitizers telemetry"
  [protocol/http]="base sanitizers"
  [tools]="base egress jail loop proto protocol/a2a protocol/http protocol/mcp runtime/assets runtime/conversation runtime/journal runtime/policy runtime/project runtime/tools sanitizers supervisor telemetry"
  [tests]="base egress jail loop proto protocol/a2a protocol/http protocol/mcp runtime/assets runtime/conversation runtime/journal runtime/policy runtime/project runtime/tools sanitizers supervisor telemetry tools"
)

# The package of a repository path: the longest table entry its directory starts with, or "".
package_of() {
  local dir=${1%/*} best="" p
  [[ $1 == */* ]] || dir=""
  for p in "${!ALLOWED[@]}"; do
    if [[ $dir == "$p" || $dir == "$p"/* ]] && ((${#p} > ${#best})); then best=$p; fi
  done
  printf '%s' "$best"
}

# Checks every .cc/.h under $1; prints each violation; returns 1 if there was one.
check_tree() {
  local root=$1 bad=0 file rel pkg line inc target top
  declare -A tops=()
  for p in "${!ALLOWED[@]}"; do tops[${p%%/*}]=1; done
  while IFS= read -r file; do
    rel=${file#"$root"/}
    pkg=$(package_of "$rel")
    if [[ -z $pkg ]]; then
      echo "$rel: in no package of the layering table (tests/layering_test.sh): place it in the graph"
      bad=1
      continue
    fi
    while IFS= read -r line; do
      inc=${line#*\"}
      inc=${inc%%\"*}
      top=${inc%%/*}
      # Only the project's own directories; absl/, gtest/, nlohmann/ ... are third-party.
      [[ $inc == */* && -n ${tops[$top]:-} ]] || continue
      target=$(package_of "$inc")
      if [[ -z $target ]]; then
        echo "$rel: includes \"$inc\", which is in no package of the layering table"
        bad=1
      elif [[ $target != "$pkg" && " ${ALLOWED[$pkg]} " != *" $target "* ]]; then
        echo "$rel: includes \"$inc\": $pkg/ may not include $target/ (it may include: ${ALLOWED[$pkg]:-nothing})"
        bad=1
      fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
  done < <(find "$root" \( -name '*.cc' -o -name '*.h' \) -not -path '*/third_party/*' | sort)
  return $bad
}

cd "${TEST_SRCDIR}/jcs"
count=$(find . \( -name '*.cc' -o -name '*.h' \) -not -path '*/third_party/*' | wc -l)
if ((count < 100)); then
  echo "expected the C++ sources in the runfiles, found ${count}"
  exit 1
fi

# The checker must catch an arrow back up: a copy of one file of jail/ that includes the tool
# pipeline, and a file in a directory the table does not know.
scratch=$(mktemp -d "${TEST_TMPDIR:-/tmp}/layering.XXXXXX")
mkdir -p "$scratch/jail" "$scratch/runtime/tools" "$scratch/newpkg"
printf '#include "runtime/tools/tool_runtime.h"\n' >"$scratch/jail/up.cc"
printf '#include "jail/spec.h"\n' >"$scratch/runtime/tools/down.cc"
printf '#include "loop/event_loop.h"\n' >"$scratch/newpkg/x.cc"
if out=$(check_tree "$scratch"); then
  echo "the checker accepted a forbidden include:"
  echo "$out"
  exit 1
fi
for want in 'jail/up.cc: includes "runtime/tools/tool_runtime.h": jail/ may not include runtime/tools/' \
  'newpkg/x.cc: in no package of the layering table'; do
  if [[ $out != *"$want"* ]]; then
    echo "the checker did not report: $want"
    echo "$out"
    exit 1
  fi
done
if [[ $out == *down.cc* ]]; then
  echo "the checker rejected an allowed include:"
  echo "$out"
  exit 1
fi

if check_tree .; then
  echo "${count} files: every include runs down the layering table"
else
  exit 1
fi
