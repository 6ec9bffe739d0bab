// The checks both transports' tests make (client.mjs: stdio, client_http.mjs: Streamable HTTP)
// with the official MCP TypeScript SDK's Client: initialize, ping, logging/setLevel, tools/list
// with hints, exec, a path denial and a denied tool as isError results, progress, a long call
// cancelled through an AbortSignal (the SDK sends notifications/cancelled) whose processes must
// then be gone from the host, the project's assets as resources and its command asset as a prompt.
// The project must deny fs.write, have notes.txt saying "hello", the skill asset
// .jido/skills/greet.md saying "# Greet" and the command asset .jido/commands/review.md
// (tests/mcp_sdk_test.sh).
import { readdirSync, readFileSync } from "node:fs";
import { randomInt } from "node:crypto";

export function check(cond, what, detail) {
  if (!cond) {
    console.error(`FAIL: ${what}${detail === undefined ? "" : ": " + JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

// Host processes whose command line holds `token` (the jail's processes are the host's too).
export function processesWith(token) {
  const found = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue;  // exited meanwhile
    }
    if (cmdline.includes(token)) found.push(`${pid}: ${cmdline}`);
  }
  return found;
}

export async function waitFor(what, predicate, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function runChecks(client) {
  const server = client.getServerVersion();
  check(server?.name === "jcs" && /^\d+\.\d+\.\d+/.test(server?.version ?? ""),
        "initialize: serverInfo names jcs and its version", server);
  check(client.getServerCapabilities()?.tools !== undefined, "initialize: the tools capability");
  await client.ping();
  check(true, "ping");
  await client.setLoggingLevel("debug");
  check(true, "logging/setLevel");

  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((tool) => [tool.name, tool]));
  check(byName.exec?.inputSchema?.type === "object" &&
          byName.exec.inputSchema.required?.includes("argv"),
        "tools/list: exec with its JSON Schema", byName.exec);
  check(byName.exec.annotations?.destructiveHint === true &&
          byName.exec.annotations?.readOnlyHint === false,
        "tools/list: exec is destructive, not read-only", byName.exec.annotations);
  check(byName["fs.read"]?.annotations?.readOnlyHint === true, "tools/list: fs.read is read-only");
  check(byName["fs.write"] === undefined, "tools/list: the project's deny_tools hides fs.write",
        Object.keys(byName));
  check(byName["exec.network"] === undefined, "tools/list: no network tool under egress deny");

  const { resources } = await client.listResources();
  const greet = resources.find((r) => r.uri === "jcs://assets/skill/greet");
  check(greet?.mimeType === "text/markdown", "resources/list: the skill asset", resources);
  const read = await client.readResource({ uri: greet.uri });
  check(read.contents?.[0]?.text === "# Greet\n", "resources/read: the asset's content", read);

  check(client.getServerCapabilities()?.prompts !== undefined, "initialize: the prompts capability");
  const { prompts } = await client.listPrompts();
  const review = prompts.find((p) => p.name === "review");
  check(review?.description === "Reviews one file" && review.arguments?.length === 1 &&
          review.arguments[0].name === "file" && review.arguments[0].required === true &&
          review.arguments[0].description === "the file to review",
        "prompts/list: the command asset with its declared argument", prompts);
  const prompt = await client.getPrompt({ name: "review", arguments: { file: "src/main.cc" } });
  check(prompt.messages?.length === 1 && prompt.messages[0].role === "user" &&
          prompt.messages[0].content?.type === "text" &&
          prompt.messages[0].content.text === "Review src/main.cc please.\n",
        "prompts/get: the body with the argument substituted", prompt);
  for (const [what, params] of [["a missing required argument", { name: "review" }],
                                ["an unknown prompt", { name: "nosuch" }]]) {
    let code;
    try {
      await client.getPrompt(params);
    } catch (error) {
      code = error.code;
    }
    check(code === -32602, `prompts/get: ${what} is -32602`, code);
  }

  const ran = await client.callTool({ name: "exec", arguments: { argv: ["/bin/cat", "notes.txt"] } });
  check(ran.isError === false && ran.structuredContent?.status === "ok" &&
          ran.structuredContent?.result?.stdout === "hello\n",
        "tools/call exec: stdout in structuredContent", ran);
  check(JSON.parse(ran.content[0].text).result.stdout === "hello\n",
        "tools/call exec: the same document as text");

  const outside = await client.callTool({ name: "fs.read", arguments: { path: "../../etc/shadow" } });
  check(outside.isError === true && outside.content[0].text.includes("outside_root") &&
          outside.structuredContent?.reason === "outside_root",
        "tools/call: a path outside the root is an isError result naming outside_root", outside);
  const denied = await client.callTool({
    name: "fs.write", arguments: { path: "x.txt", content: "no" } });
  check(denied.isError === true && denied.content[0].text.startsWith("fs.write failed: denied"),
        "tools/call: a tool the policy denies is an isError result naming the denial", denied);

  // Progress: the SDK sends a progress token when onprogress is given; jcs reports every second.
  const progress = [];
  const slow = await client.callTool(
    { name: "exec", arguments: { argv: ["/bin/sleep", "2.5"] } }, undefined,
    { onprogress: (p) => progress.push(p), timeout: 60000 });
  check(slow.isError === false && progress.length >= 1 &&
          progress.every((p, i) => i === 0 || p.progress > progress[i - 1].progress),
        "notifications/progress while a call runs, growing", progress);

  // A long call: a shell and two sleeps, marked with a token nothing else on the host has.
  const token = `3000.${randomInt(1e9)}`;
  const abort = new AbortController();
  const long = client.callTool(
    { name: "exec", arguments: { argv: ["/bin/sh", "-c", `sleep ${token} & sleep ${token} & wait`] } },
    undefined, { signal: abort.signal, timeout: 120000 });
  long.catch(() => {});  // awaited below
  const started = await waitFor("the long call's processes", () => {
    const found = processesWith(token);
    return found.length >= 3 ? found : null;
  });
  check(started !== null, "the long call runs (sh and two sleeps on the host)", processesWith(token));
  abort.abort("the test cancels it");
  let rejected = false;
  try {
    await long;
  } catch {
    rejected = true;
  }
  check(rejected, "the cancelled call's promise rejects");
  const gone = await waitFor("no processes left", () => processesWith(token).length === 0);
  check(gone !== null, "notifications/cancelled: every process of the call is gone",
        processesWith(token));
  await client.ping();
  check(true, "the server still answers after the cancel");
}
