#!/usr/bin/env bash
# `jcs mcp` checked by a client nobody here wrote (issue 15): the official MCP TypeScript SDK's
# stdio client (tests/mcp_sdk/client.mjs, its npm packages pinned by the lockfile there) against a
# real daemon and project (`jcs mcp --project`) and a private one (`jcs mcp --root`), and its
# Streamable HTTP client (client_http.mjs) against the daemon's MCP HTTP transport: initialize,
# ping, logging/setLevel, tools/list with hints, exec, a path denial and a denied tool as isError
# results, a cancelled call whose processes die, an asset read as a resource, a command asset as a
# prompt, and tools/list_changed after an asset file changes (over HTTP: on the GET stream the SDK
# opens itself).
set -uo pipefail
ws="${TEST_SRCDIR}/${TEST_WORKSPACE}"
jcs="$ws/tools/jcs"
sdk="$ws/tests/mcp_sdk"
if [[ ! -d "$sdk/node_modules/@modelcontextprotocol/sdk" ]]; then
  echo "FAIL: tests/mcp_sdk/node_modules is missing: ./bazelw test installs it (npm ci in tests/mcp_sdk)" >&2
  exit 1
fi
# Under /tmp: a Unix socket's path must fit in 107 bytes, and TEST_TMPDIR's may not.
T=$(mktemp -d /tmp/jcs-mcp-test.XXXXXX)
mkdir "$T/project"
echo hello >"$T/project/notes.txt"
mkdir -p "$T/project/.jido/skills" "$T/project/.jido/commands"
echo "# Greet" >"$T/project/.jido/skills/greet.md"
# A command asset: the prompt "review" with a required argument.
cat >"$T/project/.jido/commands/review.md" <<'EOF_CMD'
---
description: Reviews one file
jido:
  schema:
    file: {type: string, required: true, doc: the file to review}
run: echo reviewed
---
Review {{file}} please.
EOF_CMD
chown -R nobody:nogroup "$T/project"  # tools never run as host root
# MCP over HTTP too, on a free loopback port (the daemon names it on stderr).
printf 'socket_path: "%s/jcs.sock"\nstate_dir: "%s/state"\nmcp_http_address: "127.0.0.1:0"\n' \
  "$T" "$T" >"$T/serve.cfg"

# The daemon in its own session: whatever it leaves behind is killed with it.
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
# watcher: an asset file that changes reloads the assets (list_changed over HTTP below).
"$jcs" project start "$T/project" --project-id mcp --opt 'deny_tools=["fs.write"]' \
  --opt watcher=true --opt watcher_debounce_ms=50 >/dev/null ||
  { echo "FAIL: project start" >&2; exit 1; }

# A missing project: jcs mcp exits 1 at once, naming it, with nothing on stdout.
out=$("$jcs" mcp --project nosuch </dev/null 2>"$T/err")
rc=$?
if [[ $rc -ne 1 || -n $out ]] || ! grep -q "project_not_found" "$T/err"; then
  echo "FAIL: jcs mcp --project nosuch: exit $rc, stdout '$out', stderr $(cat "$T/err")" >&2
  exit 1
fi
echo "ok: an unknown project exits 1 naming project_not_found"

# TMPDIR goes into the private daemon's config: a quote in it would write config fields of the
# caller's choosing. Refused before anything starts, naming TMPDIR.
evil="$T/a\" admin_uids: 4242 x: \""
mkdir -p "$evil"
out=$(TMPDIR="$evil" "$jcs" mcp --root "$T/project" </dev/null 2>"$T/err")
rc=$?
if [[ $rc -ne 1 || -n $out ]] || ! grep -q "^jcs mcp: TMPDIR: " "$T/err" || [[ -n $(ls -A "$evil") ]]; then
  echo "FAIL: a TMPDIR with a quote: exit $rc, stderr $(cat "$T/err"), left: $(ls -A "$evil")" >&2
  exit 1
fi
echo "ok: a TMPDIR that would inject config is refused"

echo "--- jcs mcp --project (through the running daemon)"
if ! JCS_RELOAD_PROJECT=mcp node "$sdk/client.mjs" "$jcs" mcp --project mcp; then
  echo "--- daemon log" >&2
  tail -n 30 "$T/serve.log" >&2
  exit 1
fi

echo "--- the daemon's Streamable HTTP transport (StreamableHTTPClientTransport)"
port=$(sed -n 's/^jcs serve: MCP HTTP on 127\.0\.0\.1:0 port \([0-9]*\)$/\1/p' "$T/serve.log")
token_file="$T/state/mcp-http.token"
if [[ -z $port || $(stat -c %a "$token_file") != 600 ]]; then
  echo "FAIL: no MCP HTTP port in the daemon's log, or the token file is not 0600" >&2
  cat "$T/serve.log" >&2
  exit 1
fi
echo "ok: MCP HTTP on port $port, its token file 0600"
if ! node "$sdk/client_http.mjs" "http://127.0.0.1:$port/mcp/mcp" "$(cat "$token_file")" \
  "$T/project"; then
  echo "--- daemon log" >&2
  tail -n 30 "$T/serve.log" >&2
  exit 1
fi

echo "--- protocol_allowlist without mcp: refused over stdio and HTTP, with security.protocol_denied"
mkdir "$T/nomcp"
chown nobody:nogroup "$T/nomcp"
"$jcs" project start "$T/nomcp" --project-id nomcp --opt 'protocol_allowlist=["A2A"]' >/dev/null ||
  { echo "FAIL: project start nomcp" >&2; exit 1; }
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
out=$(printf '%s\n%s\n%s\n%s\n' "$init" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' \
  '{"jsonrpc":"2.0","id":3,"method":"prompts/list"}' \
  '{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"review"}}' |
  "$jcs" mcp --project nomcp 2>/dev/null)
if [[ $(grep -c '"code":-32003' <<<"$out") -ne 4 ]] || grep -q '"result"' <<<"$out"; then
  echo "FAIL: jcs mcp on a project without mcp in protocol_allowlist answered: $out" >&2
  exit 1
fi
echo "ok: stdio: initialize, tools/list, prompts/list and prompts/get are -32003"
out=$(node -e '
  const [url, token, body] = process.argv.slice(1);
  const r = await fetch(url, { method: "POST", body, headers: {
    authorization: `Bearer ${token}`, "content-type": "application/json",
    accept: "application/json, text/event-stream" } });
  console.log(r.status, r.headers.get("mcp-session-id"), await r.text());
' --input-type=module "http://127.0.0.1:$port/mcp/nomcp" "$(cat "$token_file")" "$init")
if [[ $out != "200 null "*'"code":-32003'* ]]; then
  echo "FAIL: HTTP initialize on a project without mcp: $out" >&2
  exit 1
fi
echo "ok: HTTP: initialize is -32003 and opens no session"
# The daemon's structured log (its stderr here) carries every security.* event with its payload.
check_denied_events() {
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    const ops = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .filter((e) => e.event === "security.protocol_denied")
      .map((e) => `${e.payload.project_id}/${e.payload.protocol}/${e.payload.operation}`);
    const want = ["nomcp/mcp/initialize", "nomcp/mcp/tools.list", "nomcp/mcp/prompts.list",
                  "nomcp/mcp/prompts.get"];
    process.exit(want.every((w) => ops.includes(w)) ? 0 : 1);
  ' "$T/serve.log"
}
deadline=$((SECONDS + 15))
until check_denied_events; do
  if ((SECONDS > deadline)); then
    echo "FAIL: no security.protocol_denied {project_id, protocol, operation} in the daemon's log:" >&2
    grep protocol_denied "$T/serve.log" >&2
    exit 1
  fi
  sleep 0.05
done
echo "ok: security.protocol_denied {project_id, protocol, operation} for each denied operation"

echo "--- jcs mcp --root (a private daemon of its own)"
mkdir "$T/tmp"
if ! TMPDIR="$T/tmp" node "$sdk/client.mjs" "$jcs" mcp --root "$T/project" \
  --opt 'deny_tools=["fs.write"]'; then
  exit 1
fi
# The private daemon drained and its directory is gone once jcs mcp exited.
deadline=$((SECONDS + 15))
while pgrep -f "serve --config $T/tmp/" >/dev/null || [[ -n $(ls -A "$T/tmp") ]]; do
  if ((SECONDS > deadline)); then
    echo "FAIL: the private daemon outlived jcs mcp: $(pgrep -af "serve --config $T/tmp/"); $(ls -A "$T/tmp")" >&2
    exit 1
  fi
  sleep 0.05
done
echo "ok: the private daemon drained and its directory is removed"
