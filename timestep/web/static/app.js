"use strict";
const KEY = "timestep.token";
let token = sessionStorage.getItem(KEY);
let selected = null;
let eventsAbort = null;
const $ = (id) => document.getElementById(id);

if (location.hash.startsWith("#token=")) {
  token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem(KEY, token);
  history.replaceState(null, "", location.pathname + location.search);
}

// Text from a run (a model wrote it) is shown as data: control characters, bidirectional
// overrides and invisible format characters appear escaped (\u202e), so nothing can hide,
// reorder or disguise part of a pending call. The page only ever sets textContent.
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}]/gu;
function visible(value) {
  return String(value).replace(HIDDEN, (c) => {
    const code = c.codePointAt(0);
    if (c === "\n") return "\\n";
    if (c === "\t") return "\\t";
    if (c === "\r") return "\\r";
    if (code < 0x100) return "\\x" + code.toString(16).padStart(2, "0");
    if (code < 0x10000) return "\\u" + code.toString(16).padStart(4, "0");
    return "\\U" + code.toString(16).padStart(8, "0");
  });
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(typeof child === "string" ? visible(child) : child);
  return node;
}

// A run's routes with its id in the query: every id (with "/", ".", "..", "?", "#") travels.
function runPath(runId, action) {
  return "api/run" + (action ? "/" + action : "") + "?id=" + encodeURIComponent(runId);
}

// A header value is a byte string: the token's UTF-8 bytes, one character per byte.
function bearer() {
  return "Bearer " + Array.from(new TextEncoder().encode(token), (b) => String.fromCharCode(b)).join("");
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": bearer(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const data = await response.json();
  if (response.status === 401) { showLogin("That token was refused."); throw new Error("unauthorized"); }
  if (!response.ok) throw new Error(data.error ? data.error.type + ": " + data.error.message : response.statusText);
  return data;
}

function showLogin(message) {
  $("inbox").hidden = true;
  $("login").hidden = false;
  if (message) $("error").textContent = visible(message);
}

function waitingOn(run) {
  return (run.pending_approvals || [])
    .filter((c) => !c.decision)
    .map((c) => c.tool_name + "(" + (c.arguments || "") + ")")
    .join(", ");
}

async function refresh() {
  try {
    const status = $("status").value;
    const data = await api("GET", "api/runs?limit=100" + (status ? "&status=" + encodeURIComponent(status) : ""));
    const rows = data.runs.map((run) => {
      const row = el("tr", { className: "run" + (run.run_id === selected ? " selected" : "") },
        el("td", {}, run.run_id), el("td", {}, run.agent),
        el("td", { className: "status-" + run.status }, run.status),
        el("td", {}, new Date(run.updated_at * 1000).toLocaleString()),
        el("td", {}, waitingOn(run)));
      row.dataset.runId = run.run_id;
      row.addEventListener("click", () => select(run.run_id));
      return row;
    });
    $("runs").replaceChildren(...rows);
    $("error").textContent = "";
    if (selected) await showRun(selected);
  } catch (error) {
    if (error.message !== "unauthorized") $("error").textContent = visible(error.message || error);
  }
}

async function decide(runId, callId, kind, message, always) {
  try {
    const body = { call_id: callId };
    if (kind === "reject" && message) body.message = message;
    if (kind === "approve" && always) body.always = true;
    await api("POST", runPath(runId, kind), body);
    await refresh();
  } catch (error) {
    $("error").textContent = visible(error.message || error);
  }
}

async function showRun(runId) {
  const run = await api("GET", runPath(runId));
  $("detail").hidden = false;
  // issue 23: the agent version the run is on (its label, else its fingerprint's start).
  const version = run.version ? ", version " + (run.version.label || run.version.id) + (run.version.pinned ? ", pinned" : "") : "";
  $("detail-title").textContent = visible(run.run_id + " (" + run.agent + version + ")");
  $("detail-status").textContent = visible("status: " + run.status + (run.note ? " — " + run.note : "") + (run.error ? " — " + run.error : ""));
  $("detail-status").dataset.status = run.status;
  // Re-render the calls only when they changed, so that a live refresh keeps a message being typed.
  const signature = JSON.stringify([run.run_id, run.status, run.pending_approvals, run.final_output]);
  if ($("calls").dataset.signature === signature) return;
  $("calls").dataset.signature = signature;
  const calls = (run.pending_approvals || []).map((call) => {
    const box = el("div", { className: "call" },
      el("strong", {}, call.tool_name), " (", call.call_id, ", agent ", call.agent, ")",
      el("pre", { className: "arguments" }, call.arguments || ""));
    box.dataset.callId = call.call_id;
    if (call.decision) {
      box.append(el("span", { className: "decision" }, call.decision + (call.message ? ": " + call.message : "")));
    } else if (run.status === "awaiting_approval") {
      const message = el("input", { className: "message", placeholder: "message for the model (reject)", size: 36 });
      const always = el("input", { className: "always", type: "checkbox" });
      const approve = el("button", { className: "approve", type: "button" }, "Approve");
      const reject = el("button", { className: "reject", type: "button" }, "Reject");
      approve.addEventListener("click", () => decide(run.run_id, call.call_id, "approve", null, always.checked));
      reject.addEventListener("click", () => decide(run.run_id, call.call_id, "reject", message.value));
      box.append(el("label", {}, always, " always "), approve, reject, message);
    }
    return box;
  });
  $("calls").replaceChildren(...calls);
  const talk = await api("GET", runPath(runId, "conversation"));
  $("conversation").replaceChildren(...talk.conversation.map((entry) => {
    const text = entry.kind === "message" ? entry.role + ": " + entry.text
      : entry.kind === "tool_call" ? "→ " + entry.tool + "(" + (entry.arguments || "") + ")"
      : entry.kind === "tool_output" ? "← " + (typeof entry.output === "string" ? entry.output : JSON.stringify(entry.output))
      : entry.kind === "approval_request" ? "‖ " + entry.tool + "(" + (entry.arguments || "") + ") awaits approval"
      : "[" + entry.kind + (entry.detail ? ": " + entry.detail : "") + "]";
    return el("div", { className: "entry " + entry.kind }, text);
  }));
  const steps = await api("GET", runPath(runId, "steps"));
  $("steps").replaceChildren(...steps.steps.map((step) => el("tr", { className: "step" },
    el("td", {}, String(step.segment)), el("td", {}, String(step.step)), el("td", {}, step.kind),
    el("td", {}, step.name), el("td", {}, step.status + (step.error ? ": " + step.error : "")),
    el("td", {}, step.duration_s === null ? "" : step.duration_s.toFixed(3)))));
  $("output").replaceChildren(run.final_output === null || run.final_output === undefined ? "" :
    el("pre", { className: "final-output" }, typeof run.final_output === "string" ? run.final_output : JSON.stringify(run.final_output, null, 2)));
}

async function followEvents(runId) {
  // EventSource cannot send an Authorization header: read the SSE stream with fetch.
  if (eventsAbort) eventsAbort.abort();
  const abort = new AbortController();
  eventsAbort = abort;
  $("events").textContent = "";
  let lastId = null;
  while (!abort.signal.aborted) {
    const headers = { "Authorization": bearer() };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    let ended = false;
    try {
      const response = await fetch(runPath(runId, "events"),
        { headers, signal: abort.signal, credentials: "omit", cache: "no-store" });
      if (!response.ok) {
        const data = await response.json();
        $("events").textContent = visible(data.error ? data.error.message : response.statusText);
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) lastId = line.slice(4);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (!data) continue;
          const event = JSON.parse(data);
          const line = (event.offset === null ? "-" : event.offset) + " " + event.type +
            (event.name ? " " + event.name : "") + (event.status ? " " + event.status : "") +
            (event.data && event.data.delta ? " " + JSON.stringify(event.data.delta) : "") + "\n";
          const shown = visible(line.slice(0, -1)) + "\n";
          if (!$("events").textContent.endsWith(shown)) $("events").textContent += shown;
          if (event.type === "timestep.run_ended") ended = event.status;
        }
      }
    } catch (error) {
      if (abort.signal.aborted) return;
    }
    // A parked run's stream goes on once it is decided: ask again (from the last event) later.
    if (ended && ended !== "awaiting_approval") return;
    await new Promise((resolve) => setTimeout(resolve, ended ? 2000 : 1000));
  }
}

async function select(runId) {
  selected = runId;
  for (const row of $("runs").children) row.classList.toggle("selected", row.dataset.runId === runId);
  try {
    await showRun(runId);
    followEvents(runId);
  } catch (error) {
    $("error").textContent = visible(error.message || error);
  }
}

function start() {
  $("login").hidden = true;
  $("inbox").hidden = false;
  refresh();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem(KEY, token);
  $("token").value = "";
  start();
});
$("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); token = null; showLogin(""); });
$("status").addEventListener("change", refresh);
setInterval(() => { if (token && $("live").checked && !$("inbox").hidden) refresh(); }, 2000);
if (token) start(); else showLogin("");
