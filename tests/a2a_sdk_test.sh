#!/usr/bin/env bash
# The daemon's A2A gateway checked by a client nobody here wrote (issue 15): the official A2A
# JavaScript SDK's client (tests/a2a_sdk/client.mjs, its npm packages pinned by the lockfile there)
# against a real daemon over loopback TCP with the bearer token: the agent card, message/send,
# message/stream until the task completes, tasks/get, tasks/cancel of a running task, and a project
# whose protocol_allowlist leaves A2A out, each operation refused with security.protocol_denied.
set -uo pipefail
ws="${TEST_SRCDIR}/${TEST_WORKSPACE}"
jcs="$ws/tools/jcs"
sdk="$ws/tests/a2a_sdk"
if [[ ! -d "$sdk/node_modules/@a2a-js/sdk" ]]; then
  echo "FAIL: tests/a2a_sdk/node_modules is missing: ./bazelw test installs it (npm ci in tests/a2a_sdk)" >&2
  exit 1
fi
# Under /tmp: a Unix socket's path must fit in 107 bytes, and TEST_TMPDIR's may not.
T=$(mktemp -d /tmp/jcs-a2a-test.XXXXXX)
mkdir -p "$T/project/.jido/skills" "$T/noa2a"
echo "# Greet" >"$T/project/.jido/skills/greet.md"
chown -R nobody:nogroup "$T/project" "$T/noa2a"  # tools never run as host root
printf 'socket_path: "%s/jcs.sock"\nstate_dir: "%s/state"\na2a_http_address: "127.0.0.1:0"\n' \
  "$T" "$T" >"$T/serve.cfg"

setsid "$jcs" serve --config "$T/serve.cfg" 2>"$T/serve.log" &
serve=$!
cleanup() {
  kill -TERM "$serve" 2>/dev/null && wait "$serve"
  pkill -KILL -s "$serve" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
export JCS_SOCKET="$T/jcs.sock"
deadline=$((SECONDS + 30))
until "$jcs" ping >/dev/null 2>&1; do
  if ((SECONDS > deadline)) || ! kill -0 "$serve" 2>/dev/null; then
    echo "FAIL: the daemon did not answer (within 30 s)" >&2
    cat "$T/serve.log" >&2
    exit 1
  fi
  sleep 0.05
done
"$jcs" project start "$T/project" --project-id a2a >/dev/null ||
  { echo "FAIL: project start" >&2; exit 1; }
"$jcs" project start "$T/noa2a" --project-id noa2a --opt 'protocol_allowlist=["MCP"]' >/dev/null ||
  { echo "FAIL: project start noa2a" >&2; exit 1; }

port=$(sed -n 's/^jcs serve: A2A HTTP on 127\.0\.0\.1:0 port \([0-9]*\)$/\1/p' "$T/serve.log")
token_file="$T/state/mcp-http.token"
if [[ -z $port || $(stat -c %a "$token_file") != 600 ]]; then
  echo "FAIL: no A2A HTTP port in the daemon's log, or the token file is not 0600" >&2
  cat "$T/serve.log" >&2
  exit 1
fi
echo "ok: A2A HTTP on port $port, its token file 0600"

# Without the token: 401, for the card too.
code=$(node -e '
  const r = await fetch(process.argv[1]); console.log(r.status);
' --input-type=module "http://127.0.0.1:$port/projects/a2a/.well-known/agent-card.json")
if [[ $code != 401 ]]; then
  echo "FAIL: the agent card without the token: HTTP $code" >&2
  exit 1
fi
echo "ok: no token, no card (401)"

if ! node "$sdk/client.mjs" "http://127.0.0.1:$port" "$(cat "$token_file")" a2a noa2a; then
  echo "--- daemon log" >&2
  tail -n 30 "$T/serve.log" >&2
  exit 1
fi

# The daemon's structured log (its stderr here) carries every security.* event with its payload.
check_denied_events() {
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    const ops = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .filter((e) => e.event === "security.protocol_denied")
      .map((e) => `${e.payload.project_id}/${e.payload.protocol}/${e.payload.operation}`);
    const want = ["agent.card", "task.create", "message.send", "task.get", "task.cancel",
                  "task.subscribe"].map((op) => `noa2a/a2a/${op}`);
    const missing = want.filter((w) => !ops.includes(w));
    if (missing.length) { console.error(`missing: ${missing}`); process.exit(1); }
  ' "$T/serve.log"
}
deadline=$((SECONDS + 15))
until check_denied_events 2>"$T/missing"; do
  if ((SECONDS > deadline)); then
    echo "FAIL: security.protocol_denied events $(cat "$T/missing"); in the log:" >&2
    grep protocol_denied "$T/serve.log" >&2
    exit 1
  fi
  sleep 0.05
done
echo "ok: security.protocol_denied {project_id, protocol: a2a, operation} for each denied operation"
