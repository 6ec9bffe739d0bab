// The official A2A JavaScript SDK's client (@a2a-js/sdk, pinned by the
// lockfile here) against the daemon's A2A gateway (tests/a2a_sdk_test.sh):
// the agent card, message/send, message/stream until the task's final
// event, tasks/get, tasks/cancel of a running task, and a project whose
// protocol_allowlist leaves A2A out (every operation refused).
// Usage: node client.mjs BASE_URL TOKEN ALLOWED_PROJECT DENIED_PROJECT
import { randomUUID } from "node:crypto";
import { A2AClient } from "@a2a-js/sdk/client";

const [base, token, project, denied] = process.argv.slice(2);
const fetchImpl = (url, init = {}) =>
  fetch(url, {
    ...init,
    headers: { ...(init.headers || {}), authorization: `Bearer ${token}` },
  });

function check(ok, what, detail) {
  if (!ok) {
    console.error(`FAIL: ${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

const message = (text, extra = {}) => ({
  kind: "message",
  messageId: randomUUID(),
  role: "user",
  parts: [{ kind: "text", text }],
  ...extra,
});

const cardUrl = (p) => `${base}/projects/${p}/.well-known/agent-card.json`;
const client = await A2AClient.fromCardUrl(cardUrl(project), { fetchImpl });
const card = await client.getAgentCard();
const original = card.capabilities?.extensions?.[0]?.params;
check(
  card.protocolVersion === "0.3.0" && card.capabilities.streaming === true &&
    card.url === `${base}/projects/${project}/a2a` &&
    card.skills.some((s) => s.id === "fs.read") &&
    original?.agent_id === `jidocodeserver:${project}` &&
    original.capabilities.tool_count === card.skills.length &&
    original.capabilities.asset_counts.skills === 1,
  "agent card: A2A 0.3, streaming, the tools as skills, the jcs card as an extension",
  card,
);

// message/send (blocking): a new task, the conversation's answer in it.
let response = await client.sendMessage({ message: message("hello a2a") });
let task = response.result;
check(
  task?.kind === "task" && task.status.state === "completed" &&
    task.contextId === task.id &&
    task.history.at(-1)?.role === "agent" &&
    task.history.at(-1).parts[0].text === "Acknowledged: hello a2a",
  "message/send: a completed task with the agent's answer",
  response,
);
const taskId = task.id;

// message/stream on the same task: events until the final one.
const events = [];
for await (const event of client.sendMessageStream({
  message: message("stream please", { taskId }),
})) {
  events.push(event);
  if (event.kind === "status-update" && event.final) break;
}
const kinds = events.map((e) => e.kind);
const last = events.at(-1);
check(
  kinds[0] === "task" && kinds.includes("artifact-update") &&
    events.find((e) => e.kind === "artifact-update").artifact.parts[0].text ===
      "Acknowledged: stream please" &&
    last.kind === "status-update" && last.final === true &&
    last.status.state === "completed" && events.every((e) => (e.taskId ?? e.id) === taskId),
  "message/stream: task, working, the answer as an artifact, a final completed status",
  events,
);

// tasks/get: the whole conversation as history.
response = await client.getTask({ id: taskId });
check(
  response.result?.history?.length === 4 &&
    response.result.history.map((m) => m.role).join(",") === "user,agent,user,agent",
  "tasks/get: the task's history from the conversation",
  response,
);
response = await client.getTask({ id: "no-such-task" });
check(response.error?.code === -32001, "tasks/get of an unknown task: -32001 TaskNotFound", response);

// tasks/cancel of a running task: a turn the model answers only after 30 s.
response = await client.sendMessage({
  message: message("slow one", { metadata: { llm: { delay_ms: 30000, text: "late" } } }),
  configuration: { blocking: false },
});
const slow = response.result?.id;
check(response.result?.status?.state === "working", "message/send (non-blocking): working", response);
let state = "";
for (let i = 0; i < 100 && state !== "working"; i++) {
  state = (await client.getTask({ id: slow })).result?.status?.state;
  if (state !== "working") await new Promise((r) => setTimeout(r, 50));
}
const started = Date.now();
response = await client.cancelTask({ id: slow });
check(
  response.result?.status?.state === "canceled" && Date.now() - started < 10000,
  "tasks/cancel of a running task: canceled at once",
  response,
);
response = await client.cancelTask({ id: slow });
check(response.error?.code === -32002, "tasks/cancel again: -32002 TaskNotCancelable", response);

// A project whose protocol_allowlist leaves A2A out: every operation refused.
const deniedCard = await fetchImpl(cardUrl(denied));
const deniedBody = await deniedCard.json();
check(
  deniedCard.status === 403 && deniedBody.error?.code === -32010,
  "agent card of a project without a2a: 403, -32010",
  deniedBody,
);
const deniedClient = new A2AClient({ ...card, url: `${base}/projects/${denied}/a2a` }, { fetchImpl });
const refusals = [
  ["message/send (task.create)", await deniedClient.sendMessage({ message: message("x") })],
  ["message/send (message.send)",
   await deniedClient.sendMessage({ message: message("x", { taskId: "t1" }) })],
  ["tasks/get (task.get)", await deniedClient.getTask({ id: "t1" })],
  ["tasks/cancel (task.cancel)", await deniedClient.cancelTask({ id: "t1" })],
];
for (const [what, r] of refusals) {
  check(r.error?.code === -32010 && !r.result, `${what} on a project without a2a: -32010`, r);
}
for (const [what, stream] of [
  ["message/stream (message.send)",
   () => deniedClient.sendMessageStream({ message: message("x", { taskId: "t1" }) })],
  ["tasks/resubscribe (task.subscribe)", () => deniedClient.resubscribeTask({ id: "t1" })],
]) {
  let error;
  try {
    for await (const e of stream()) void e;
  } catch (e) {
    error = e;
  }
  check(/-32010/.test(String(error?.message)), `${what} on a project without a2a: -32010`, String(error));
}
