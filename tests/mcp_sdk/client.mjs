// Drives `jcs mcp` with the official MCP TypeScript SDK's stdio client (a client nobody here
// wrote): initialize, ping, logging/setLevel, tools/list, tools/call of exec, a path-policy denial
// and a denied tool as isError results, and a long call cancelled through an AbortSignal (the SDK
// sends notifications/cancelled) whose processes must then be gone from the host, progress
// notifications, and the project's assets as resources.
//
// usage: node client.mjs JCS ARG...   (jcs's arguments: mcp --project ID ... or mcp --root DIR ...;
// the project must deny fs.write, have notes.txt saying "hello" and the skill asset
// .jido/skills/greet.md saying "# Greet")
// Prints one "ok: ..." line per check; exits 1 at the first failed one.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { execFileSync } from "node:child_process";
import { check, runChecks, waitFor } from "./checks.mjs";

const [jcs, ...jcsArgs] = process.argv.slice(2);
if (!jcs || jcsArgs.length === 0) {
  console.error("usage: node client.mjs JCS ARG...");
  process.exit(2);
}

const protocolErrors = [];
const transport = new StdioClientTransport({
  command: jcs,
  args: jcsArgs,
  env: process.env,  // JCS_SOCKET, TMPDIR
  stderr: "inherit",
});
const client = new Client({ name: "jcs-sdk-test", version: "1.0.0" });
client.onerror = (error) => protocolErrors.push(String(error));
let listChanged = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => { listChanged += 1; });
await client.connect(transport);

await runChecks(client);

// With JCS_RELOAD_PROJECT (a project of the daemon on JCS_SOCKET): `jcs assets reload` bumps the
// asset store's generation, and the server says the tool list changed.
const reloadProject = process.env.JCS_RELOAD_PROJECT;
if (reloadProject) {
  check(client.getServerCapabilities()?.tools?.listChanged === true,
        "initialize: tools.listChanged", client.getServerCapabilities());
  execFileSync(jcs, ["assets", "reload", reloadProject], { stdio: "ignore" });
  check(await waitFor("list_changed", () => listChanged > 0) !== null,
        "notifications/tools/list_changed after the assets reload");
}

await client.close();
check(protocolErrors.length === 0, "stdout carried only protocol messages", protocolErrors);
