// Drives `jcs serve`'s MCP Streamable HTTP transport with the official MCP TypeScript SDK's
// StreamableHTTPClientTransport (a client nobody here wrote): the checks of checks.mjs (tools,
// exec, denials as isError, progress, a cancelled call whose processes die, resources, prompts),
// then the transport's own: a request without the token is refused with 401, an asset file that
// changes brings tools/list_changed on the GET stream the SDK opens, and the session ends with
// DELETE (terminateSession), after which its id is unknown (404).
//
// usage: node client_http.mjs URL TOKEN PROJECT_DIR   (URL: http://127.0.0.1:PORT/mcp/<project_id>;
// PROJECT_DIR: that project's root, whose asset watcher is on)
// Prints one "ok: ..." line per check; exits 1 at the first failed one.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { writeFileSync } from "node:fs";
import { check, runChecks, waitFor } from "./checks.mjs";

const [url, token, projectDir] = process.argv.slice(2);
if (!url || !token || !projectDir) {
  console.error("usage: node client_http.mjs URL TOKEN PROJECT_DIR");
  process.exit(2);
}

const initialize = JSON.stringify({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {},
            clientInfo: { name: "raw", version: "1" } } });
const post = (headers, body = initialize) => fetch(url, {
  method: "POST", body,
  headers: { "content-type": "application/json",
             accept: "application/json, text/event-stream", ...headers } });

// Fail closed: no token, or a wrong one, gets nothing but 401.
check((await post({})).status === 401, "no bearer token: 401");
check((await post({ authorization: `Bearer ${token}x` })).status === 401,
      "a wrong bearer token: 401");

const transportErrors = [];
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "jcs-sdk-http-test", version: "1.0.0" });
client.onerror = (error) => transportErrors.push(String(error));
let listChanged = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => { listChanged += 1; });
await client.connect(transport);
const sessionId = transport.sessionId;
check(/^[0-9a-f]{32}$/.test(sessionId ?? ""), "initialize: an Mcp-Session-Id", sessionId);

await runChecks(client);

// The server-to-client stream: the SDK opens it (GET) after initialize. An asset file that
// changes reloads the project's assets (its watcher), and tools/list_changed arrives on it.
check(client.getServerCapabilities()?.tools?.listChanged === true,
      "initialize: tools.listChanged over HTTP", client.getServerCapabilities());
writeFileSync(`${projectDir}/.jido/commands/added.md`,
              "---\ndescription: Added while connected\nrun: echo added\n---\nAdded.\n");
check(await waitFor("list_changed", () => listChanged > 0) !== null,
      "notifications/tools/list_changed on the GET stream after an asset file changed");
const { tools: toolsAfter } = await client.listTools();
check(toolsAfter.some((tool) => tool.name === "command.run.added"),
      "tools/list then has the new command's tool", toolsAfter.map((tool) => tool.name));
const { prompts: afterPrompts } = await client.listPrompts();
check(afterPrompts.some((p) => p.name === "added"), "prompts/list then has the new prompt");

await transport.terminateSession();
check(transport.sessionId === undefined, "DELETE ends the session (terminateSession)");
const after = await post({ authorization: `Bearer ${token}`, "mcp-session-id": sessionId,
                           "mcp-protocol-version": "2025-06-18" },
                         JSON.stringify({ jsonrpc: "2.0", id: 9, method: "ping" }));
check(after.status === 404, "the ended session's id is unknown: 404", after.status);
await client.close();
check(transportErrors.length === 0, "no transport errors", transportErrors);
