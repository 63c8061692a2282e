"use strict";
// The approval inbox page. Everything it shows comes from /api/inbox/live, a Server-Sent
// Events stream the server sends whenever the view changes: the page never polls. Rows are
// kept by run id and updated in place, so an element a person is about to click is never
// replaced under them. Text from a run (a model wrote it) is only ever set as textContent.

const KEY = "timestep.token";
const PAGE = 25;
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(KEY),
  status: "",
  search: "",
  offset: 0,
  selected: null,      // the open run's id
  view: null,          // the last InboxView
  skew: 0,             // server clock minus this page's clock, seconds
  live: null,          // AbortController of the live stream
  events: null,        // AbortController of the open run's event stream
  eventsFor: null,
  conversationKey: null,
};

if (location.hash.startsWith("#token=")) {
  state.token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem(KEY, state.token);
  history.replaceState(null, "", location.pathname + location.search);
}

// --- text from runs is data -----------------------------------------------------------------

// Control characters, bidirectional overrides and invisible format characters appear escaped
// (\u202e), so nothing can hide, reorder or disguise part of a pending call.
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

// Several lines of run text: each line made visible, the line breaks kept.
function visibleLines(text) {
  return String(text).split("\n").map(visible).join("\n");
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? visible(child) : child);
  }
  return node;
}

function setText(node, text) {
  const shown = visible(text);
  if (node.textContent !== shown) node.textContent = shown;
}

// Arguments as the model wrote them (JSON text), indented when they are JSON.
function formatArguments(text) {
  if (text === null || text === undefined || text === "") return "(no arguments)";
  try {
    return visibleLines(JSON.stringify(JSON.parse(text), null, 2));
  } catch (error) {
    return visible(text);
  }
}

function formatValue(value) {
  return typeof value === "string" ? visibleLines(value) : visibleLines(JSON.stringify(value, null, 2));
}

// --- times ----------------------------------------------------------------------------------

function nowSeconds() { return Date.now() / 1000 + state.skew; }

function ago(seconds) {
  const delta = Math.max(0, nowSeconds() - seconds);
  if (delta < 45) return "just now";
  if (delta < 90) return "a minute ago";
  if (delta < 3600) return Math.round(delta / 60) + " min ago";
  if (delta < 5400) return "an hour ago";
  if (delta < 86400) return Math.round(delta / 3600) + " h ago";
  if (delta < 172800) return "yesterday";
  return Math.round(delta / 86400) + " days ago";
}

function timeNode(seconds) {
  const node = el("time", { className: "ago", dateTime: new Date(seconds * 1000).toISOString() });
  node.dataset.at = String(seconds);
  node.title = new Date(seconds * 1000).toLocaleString();
  node.textContent = ago(seconds);
  return node;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "…";
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
}

// --- the API ----------------------------------------------------------------------------------

function runPath(runId, action) {
  return "api/run" + (action ? "/" + action : "") + "?id=" + encodeURIComponent(runId);
}

// A header value is a byte string: the token's UTF-8 bytes, one character per byte.
function bearer() {
  return "Bearer " + Array.from(new TextEncoder().encode(state.token), (b) => String.fromCharCode(b)).join("");
}

class Refused extends Error {}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": bearer(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 401) { refused(); throw new Refused("unauthorized"); }
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

// Server-Sent Events read with fetch (EventSource cannot send an Authorization header).
async function readEvents(path, signal, headers, onEvent) {
  const response = await fetch(path, { headers: { "Authorization": bearer(), ...headers }, signal, credentials: "omit", cache: "no-store" });
  if (response.status === 401) { refused(); throw new Refused("unauthorized"); }
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(data.error ? data.error.message : response.statusText);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let data = "";
      let id = null;
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) onEvent(JSON.parse(data), id);
    }
  }
}

// --- login and errors -------------------------------------------------------------------------

function refused() {
  sessionStorage.removeItem(KEY);
  state.token = null;
  showLogin("That token was refused. Paste the token `timestep serve` printed, or open the link it printed.");
}

function showLogin(message) {
  stopLive();
  $("inbox").hidden = true;
  $("tools").hidden = true;
  $("count").hidden = true;
  document.title = "Timestep approvals";
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message ? visible(message) : "";
  $("token").focus();
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message ? visible(message) : "";
}

function setConnection(kind, text) {
  $("connection").dataset.state = kind;
  $("connection").textContent = text;
}

// --- the live view ----------------------------------------------------------------------------

function liveQuery() {
  const query = new URLSearchParams({ limit: String(PAGE), offset: String(state.offset) });
  if (state.status) query.set("status", state.status);
  if (state.search) query.set("q", state.search);
  if (state.selected !== null) query.set("selected", state.selected);
  return "api/inbox/live?" + query.toString();
}

function stopLive() {
  if (state.live) state.live.abort();
  state.live = null;
}

async function follow() {
  stopLive();
  const abort = new AbortController();
  state.live = abort;
  let wait = 500;
  while (!abort.signal.aborted && state.token) {
    try {
      await readEvents(liveQuery(), abort.signal, {}, (event) => {
        wait = 500;
        if (event.error) {
          setConnection("trouble", "server trouble");
          showError(event.error.message);
          return;
        }
        if (event.keepalive) return;
        setConnection("live", "live");
        showError("");
        state.skew = event.now - Date.now() / 1000;
        applyView(event);
      });
    } catch (error) {
      if (abort.signal.aborted || error instanceof Refused) return;
      setConnection("trouble", "reconnecting…");
      if (error.message && error.message !== "Failed to fetch" && !(error instanceof TypeError)) showError(error.message);
    }
    if (abort.signal.aborted) return;
    setConnection("trouble", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 5000);
  }
}

function applyView(view) {
  state.view = view;
  const count = view.pending_count;
  const label = count + (view.pending_more ? "+" : "");
  document.title = count ? "(" + label + ") Timestep approvals" : "Timestep approvals";
  $("count").hidden = !count;
  $("count").textContent = label + " waiting";
  $("pending-count").textContent = label;
  syncList($("pending"), view.pending);
  syncList($("runs"), view.runs);
  const searching = state.search ? " matching “" + visible(state.search) + "”" : "";
  $("pending-empty").hidden = view.pending.length > 0;
  $("pending-empty").textContent = state.search
    ? "No run waiting for a decision matches “" + visible(state.search) + "”."
    : "Nothing waits for a decision. Runs that stop for approval appear here at once.";
  $("runs-empty").hidden = view.runs.length > 0;
  $("runs-empty").textContent = state.offset > 0
    ? "No older runs" + searching + "."
    : (state.search || state.status)
      ? "No other run" + searching + (state.status ? " with status " + state.status.replace("_", " ") : "") + "."
      : view.pending.length ? "No other runs yet." : "No runs yet. Runs appear here as soon as an agent runs with Timestep, e.g. timestep run timestep.demo:mailer \"Email bob@example.com that the build is green\".";
  $("pager").hidden = state.offset === 0 && view.next_offset === null;
  $("newer").disabled = state.offset === 0;
  $("older").disabled = view.next_offset === null;
  $("page-info").textContent = "page " + (Math.floor(state.offset / PAGE) + 1);
  if (state.selected !== null && view.selected && view.selected.run_id === state.selected) {
    showRun(view.selected.run, view.selected.steps, view.selected.streamed);
  }
}

// --- the list: rows keyed by run id, updated in place -----------------------------------------

function waitingOn(run) {
  return (run.pending_approvals || []).filter((c) => !c.decision).map((c) => c.tool_name);
}

function summary(run) {
  if (run.status === "awaiting_approval") {
    const tools = waitingOn(run);
    return tools.length ? "wants to call " + tools.join(", ") : "decided; goes on shortly";
  }
  if (run.error) return run.error.split("\n")[0];
  if (run.note) return run.note;
  if (run.status === "completed" && run.final_output !== null && run.final_output !== undefined) {
    const text = typeof run.final_output === "string" ? run.final_output : JSON.stringify(run.final_output);
    return text.length > 120 ? text.slice(0, 119) + "…" : text;
  }
  return "";
}

function makeRow(runId) {
  const row = el("li", { className: "run", tabIndex: 0 });
  row.dataset.runId = runId;
  row.append(
    el("span", { className: "run-id" }),
    el("span", { className: "badge" }),
    el("span", { className: "agent" }),
    el("span", { className: "when" }),
    el("span", { className: "summary" }),
  );
  row.addEventListener("click", () => select(runId));
  row.addEventListener("keydown", (event) => { if (event.key === "Enter") select(runId); });
  return row;
}

function fillRow(row, run) {
  setText(row.querySelector(".run-id"), run.run_id);
  const badge = row.querySelector(".badge");
  setText(badge, run.status.replace("_", " "));
  badge.dataset.status = run.status;
  setText(row.querySelector(".agent"), run.agent);
  const when = row.querySelector(".when");
  if (when.dataset.at !== String(run.updated_at)) when.replaceChildren(timeNode(run.updated_at));
  when.dataset.at = String(run.updated_at);
  setText(row.querySelector(".summary"), summary(run));
  row.classList.toggle("selected", run.run_id === state.selected);
  row.setAttribute("aria-current", run.run_id === state.selected ? "true" : "false");
}

function syncList(list, runs) {
  const existing = new Map();
  for (const row of list.children) existing.set(row.dataset.runId, row);
  let previous = null;
  for (const run of runs) {
    let row = existing.get(run.run_id);
    if (row) existing.delete(run.run_id);
    else row = makeRow(run.run_id);
    fillRow(row, run);
    const wanted = previous ? previous.nextSibling : list.firstChild;
    if (wanted !== row) list.insertBefore(row, wanted);
    previous = row;
  }
  for (const row of existing.values()) row.remove();
}

function rows() {
  return [...$("pending").children, ...$("runs").children];
}

// --- the open run -----------------------------------------------------------------------------

function select(runId) {
  if (state.selected === runId) { focusDecision(); return; }
  state.selected = runId;
  state.conversationKey = null;
  document.body.classList.add("has-selection");
  for (const row of rows()) {
    row.classList.toggle("selected", row.dataset.runId === runId);
    row.setAttribute("aria-current", row.dataset.runId === runId ? "true" : "false");
  }
  $("calls").replaceChildren();
  $("timeline").replaceChildren();
  $("conversation").replaceChildren();
  $("events").textContent = "";
  // Shown at once from the list's record; the live stream brings the steps.
  const known = state.view && [...state.view.pending, ...state.view.runs].find((r) => r.run_id === runId);
  if (known) showRun(known, null, null);
  else { $("detail-empty").hidden = true; $("run").hidden = false; setText($("detail-title"), runId); }
  follow();
}

function closeRun() {
  state.selected = null;
  document.body.classList.remove("has-selection");
  $("run").hidden = true;
  $("detail-empty").hidden = false;
  stopEvents();
  for (const row of rows()) row.classList.remove("selected");
  follow();
}

function showRun(run, steps, streamed) {
  $("detail-empty").hidden = true;
  $("run").hidden = false;
  if (run === null) {
    setText($("detail-title"), state.selected);
    $("detail-badge").textContent = "";
    setText($("detail-status"), "There is no run with this id (any more).");
    $("calls").replaceChildren();
    return;
  }
  setText($("detail-title"), run.run_id);
  setText($("detail-badge"), run.status.replace("_", " "));
  $("detail-badge").dataset.status = run.status;
  setText($("detail-status"), [run.note, run.error].filter(Boolean).join(" — "));
  $("detail-status").dataset.status = run.status;
  showFacts(run);
  showCalls(run);
  const output = run.final_output;
  const shownOutput = output === null || output === undefined ? null : formatValue(output);
  const box = $("output");
  if (shownOutput === null) box.replaceChildren();
  else if (!box.firstChild || box.firstChild.lastChild.textContent !== shownOutput) {
    const pre = el("pre", { className: "final-output" });
    pre.textContent = shownOutput;
    box.replaceChildren(el("div", { className: "output" }, el("h3", {}, "Output"), pre));
  }
  if (steps !== null) showTimeline(run, steps);
  const key = run.run_id + "|" + run.status + "|" + run.segment + "|" + run.updated_at;
  if (state.conversationKey !== key) {
    state.conversationKey = key;
    loadConversation(run);
  }
  if (streamed !== null) showEvents(run, streamed);
}

function showFacts(run) {
  const facts = [
    ["agent", run.agent],
    ["started", timeNode(run.created_at)],
    ["updated", timeNode(run.updated_at)],
    ["segments", String(run.segment)],
  ];
  // The agent version the run is on: its label, else the start of its graph's fingerprint.
  if (run.version) facts.push(["version", (run.version.label || run.version.id) + (run.version.pinned ? " (pinned)" : "")]);
  const models = Object.entries(run.usage_by_model || {});
  for (const [model, used] of models) {
    facts.push(["model " + model, used.requests + " call" + (used.requests === 1 ? "" : "s") + ", " +
      used.input_tokens + " tokens in, " + used.output_tokens + " out"]);
  }
  if (!models.length) {
    const chosen = run.overrides && (run.overrides.agent || run.overrides.run_config);
    facts.push(["model", chosen || "the agent's (none called yet)"]);
  }
  if (run.owner) facts.push(["runs on", run.owner.executor_id + (run.owner.alive ? "" : " (gone)")]);
  const signature = JSON.stringify(facts.map(([k, v]) => [k, typeof v === "string" ? v : v.dataset.at]));
  if ($("facts").dataset.signature === signature) return;
  $("facts").dataset.signature = signature;
  $("facts").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
}

// The pending calls, each with its decision controls. A call's box is kept (and with it a
// message being typed) until the call is decided.
function showCalls(run) {
  const box = $("calls");
  const calls = run.pending_approvals || [];
  const existing = new Map();
  for (const node of box.children) existing.set(node.dataset.callId, node);
  const wanted = [];
  for (const call of calls) {
    const open = !call.decision && run.status === "awaiting_approval";
    const signature = JSON.stringify([run.run_id, call.call_id, call.decision, call.message, open]);
    let node = existing.get(call.call_id);
    if (!node || node.dataset.signature !== signature) node = callBox(run, call, open, signature);
    wanted.push(node);
  }
  const current = [...box.children];
  if (current.length !== wanted.length || current.some((node, i) => node !== wanted[i])) box.replaceChildren(...wanted);
}

function callBox(run, call, open, signature) {
  const args = el("pre", { className: "arguments" });
  args.textContent = formatArguments(call.arguments);
  const box = el("div", { className: "call" + (open ? " open" : "") },
    el("div", { className: "call-head" },
      el("strong", { className: "tool" }, call.tool_name),
      el("span", { className: "muted" }, " wants to run · call ", call.call_id, " · agent ", call.agent)),
    args);
  box.dataset.callId = call.call_id;
  box.dataset.signature = signature;
  if (call.decision) {
    const said = call.decision === "approve" ? "Approved" : "Rejected";
    box.append(el("p", { className: "decision", title: "recorded" }, said + (call.message ? ": " + call.message : "")));
    box.dataset.decision = call.decision;
  } else if (open) {
    const message = el("input", { className: "message", placeholder: "Message for the model, if you reject (m)", maxLength: 4000 });
    message.setAttribute("aria-label", "Message for the model on rejection");
    const approve = el("button", { className: "approve primary", type: "button", title: "Approve (a)" }, "Approve");
    const always = el("button", { className: "always", type: "button", title: "Approve this call and every later call of this tool in this run (A)" }, "Approve always");
    const reject = el("button", { className: "reject danger", type: "button", title: "Reject (r)" }, "Reject");
    approve.addEventListener("click", () => decide(run.run_id, call.call_id, "approve", box));
    always.addEventListener("click", () => decide(run.run_id, call.call_id, "always", box));
    reject.addEventListener("click", () => decide(run.run_id, call.call_id, "reject", box));
    message.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); decide(run.run_id, call.call_id, "reject", box); }
    });
    box.append(el("div", { className: "actions" }, approve, always, reject, message));
  } else {
    box.append(el("p", { className: "decision muted" }, "not decided (the run is " + run.status.replace("_", " ") + ")"));
  }
  return box;
}

async function decide(runId, callId, kind, box) {
  const buttons = box.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  try {
    const body = { call_id: callId };
    if (kind === "always") body.always = true;
    const message = box.querySelector("input.message");
    if (kind === "reject" && message && message.value.trim()) body.message = message.value;
    const run = await api("POST", runPath(runId, kind === "always" ? "approve" : kind), body);
    showError("");
    if (state.selected === runId) showRun(run, null, null);
  } catch (error) {
    if (!(error instanceof Refused)) showError(error.message || String(error));
    for (const button of buttons) button.disabled = false;
  }
}

function firstOpenCall() {
  return $("calls").querySelector(".call.open");
}

function focusDecision() {
  const call = firstOpenCall();
  if (call) call.querySelector("button.approve").focus();
}

// --- the timeline: recorded steps by segment, with the stops for approval between them --------

// Tokens of each model call, when the run's usage lists one entry per recorded model call
// (usage.request_usage_entries), and the model's name when the run used one model.
function modelCallFacts(run, steps) {
  const calls = steps.filter((s) => s.kind === "model" && s.status === "done");
  const entries = (run.usage && run.usage.request_usage_entries) || [];
  const models = Object.keys(run.usage_by_model || {});
  const facts = new Map();
  calls.forEach((step, i) => {
    const parts = [];
    if (models.length === 1) parts.push(models[0]);
    if (entries.length === calls.length) parts.push(entries[i].input_tokens + " in / " + entries[i].output_tokens + " out tokens");
    facts.set(step, parts.join(", "));
  });
  return facts;
}

function showTimeline(run, steps) {
  const items = [];
  const longest = Math.max(0.001, ...steps.map((s) => s.duration_s || 0));
  const facts = modelCallFacts(run, steps);
  let segment = 0;
  for (const step of steps) {
    if (step.segment !== segment) {
      if (segment > 0) items.push(el("li", { className: "stop" }, "stopped for approval; decided, then went on"));
      segment = step.segment;
    }
    const bar = el("span", { className: "bar" });
    bar.style.width = Math.max(2, Math.round(100 * (step.duration_s || 0) / longest)) + "%";
    const what = step.kind === "model" ? "model call " + step.name : "tool " + step.name;
    const detail = facts.get(step);
    const item = el("li", { className: "step " + step.kind + " " + step.status },
      el("span", { className: "what", title: what + (detail ? " · " + detail : "") }, what,
        detail ? el("span", { className: "muted" }, " · " + detail) : null),
      el("span", { className: "took" }, step.status === "running" ? "running…" : duration(step.duration_s)),
      el("span", { className: "track" }, bar),
      step.error ? el("span", { className: "step-error" }, step.error) : null);
    items.push(item);
  }
  if (run.status === "awaiting_approval") {
    const open = waitingOn(run);
    items.push(el("li", { className: "stop waiting" }, open.length
      ? "waiting for a decision on " + open.join(", ")
      : "decided; the next segment starts when a worker takes it"));
  } else if (run.status === "running" && run.note) {
    items.push(el("li", { className: "stop" }, run.note));
  } else if (["completed", "failed", "cancelled"].includes(run.status)) {
    items.push(el("li", { className: "end " + run.status }, run.status + " " + ago(run.updated_at)));
  }
  if (!steps.length && run.status !== "awaiting_approval") items.unshift(el("li", { className: "muted" }, "no recorded steps yet"));
  const signature = JSON.stringify([steps, run.status, run.note, waitingOn(run)]);
  if ($("timeline").dataset.signature === signature) return;
  $("timeline").dataset.signature = signature;
  $("timeline").replaceChildren(...items);
}

async function loadConversation(run) {
  try {
    const talk = await api("GET", runPath(run.run_id, "conversation"));
    if (state.selected !== run.run_id) return;
    const decided = new Map((run.pending_approvals || []).map((c) => [c.call_id, c]));
    const outputs = new Set(talk.conversation.filter((e) => e.kind === "tool_output").map((e) => e.call_id));
    const entries = talk.conversation.map((entry) => {
      let text;
      if (entry.kind === "message") text = entry.role + ": " + entry.text;
      else if (entry.kind === "tool_call") text = "→ " + entry.tool + "(" + (entry.arguments || "") + ")";
      else if (entry.kind === "tool_output") text = "← " + (typeof entry.output === "string" ? entry.output : JSON.stringify(entry.output));
      else if (entry.kind === "approval_request") {
        const call = decided.get(entry.call_id);
        const outcome = outputs.has(entry.call_id) ? "decided"
          : call && call.decision === "approve" ? "approved"
          : call && call.decision === "reject" ? "rejected" + (call.message ? ": " + call.message : "")
          : run.status === "awaiting_approval" ? "awaits approval" : "decided";
        text = "‖ " + entry.tool + "(" + (entry.arguments || "") + ") " + outcome;
      } else text = "[" + entry.kind + (entry.detail ? ": " + entry.detail : "") + "]";
      return el("div", { className: "entry " + entry.kind }, text);
    });
    $("conversation").replaceChildren(...(entries.length ? entries : [el("p", { className: "muted" }, "(none stored yet: a run stores its conversation when it stops)")]));
  } catch (error) {
    if (!(error instanceof Refused)) $("conversation").replaceChildren(el("p", { className: "error" }, error.message || String(error)));
  }
}

// --- a streamed run's events ------------------------------------------------------------------

function stopEvents() {
  if (state.events) state.events.abort();
  state.events = null;
  state.eventsFor = null;
}

function showEvents(run, streamed) {
  $("events-title").hidden = false;
  if (!streamed) {
    stopEvents();
    $("events").textContent = "This run was not started with stream=True: it has no live events (its recorded steps are in the timeline).";
    return;
  }
  if (state.eventsFor === run.run_id) return;
  followEvents(run.run_id);
}

async function followEvents(runId) {
  stopEvents();
  const abort = new AbortController();
  state.events = abort;
  state.eventsFor = runId;
  $("events").textContent = "";
  let lastId = null;
  while (!abort.signal.aborted) {
    let ended = false;
    try {
      await readEvents(runPath(runId, "events"), abort.signal, lastId === null ? {} : { "Last-Event-ID": lastId }, (event, id) => {
        if (id !== null) lastId = id;
        const line = (event.offset === null ? "-" : event.offset) + " " + event.type +
          (event.name ? " " + event.name : "") + (event.status ? " " + event.status : "") +
          (event.data && event.data.delta ? " " + JSON.stringify(event.data.delta) : "");
        const shown = visible(line) + "\n";
        if (!$("events").textContent.endsWith(shown)) $("events").textContent += shown;
        if (event.type === "timestep.run_ended") ended = event.status;
      });
    } catch (error) {
      if (abort.signal.aborted || error instanceof Refused) return;
    }
    // A parked run's stream goes on once it is decided: read on from the last event.
    if (ended && ended !== "awaiting_approval") return;
    await new Promise((resolve) => setTimeout(resolve, ended ? 2000 : 1000));
  }
}

// --- keys -------------------------------------------------------------------------------------

function move(step) {
  const all = rows();
  if (!all.length) return;
  const at = all.findIndex((row) => row.dataset.runId === state.selected && row.classList.contains("selected"));
  const next = all[Math.min(all.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
  select(next.dataset.runId);
  next.scrollIntoView({ block: "nearest" });
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement || event.target instanceof HTMLTextAreaElement;
  if (event.key === "Escape") {
    if ($("help").open) $("help").close();
    else if (typing) event.target.blur();
    else if (state.selected !== null && window.matchMedia("(max-width: 760px)").matches) closeRun();
    return;
  }
  if (typing || $("inbox").hidden) return;
  const call = firstOpenCall();
  const keys = {
    "j": () => move(1), "ArrowDown": () => move(1),
    "k": () => move(-1), "ArrowUp": () => move(-1),
    "/": () => $("search").focus(),
    "?": () => $("help").showModal(),
    "a": () => call && call.querySelector("button.approve").click(),
    "A": () => call && call.querySelector("button.always").click(),
    "r": () => call && call.querySelector("button.reject").click(),
    "m": () => call && call.querySelector("input.message").focus(),
  };
  const action = keys[event.key];
  if (action) { event.preventDefault(); action(); }
}

// --- start --------------------------------------------------------------------------------------

function start() {
  $("login").hidden = true;
  $("login-error").hidden = true;
  $("inbox").hidden = false;
  $("tools").hidden = false;
  setConnection("connecting", "connecting…");
  follow();
}

let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.search = $("search").value.trim();
    state.offset = 0;
    follow();
  }, 250);
});
$("status").addEventListener("change", () => { state.status = $("status").value; state.offset = 0; follow(); });
$("newer").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); follow(); });
$("older").addEventListener("click", () => {
  if (state.view && state.view.next_offset !== null) { state.offset = state.view.next_offset; follow(); }
});
$("back").addEventListener("click", closeRun);
$("help-close").addEventListener("click", () => $("help").close());
$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem(KEY, state.token);
  $("token").value = "";
  start();
});
$("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); state.token = null; showLogin(""); });
document.addEventListener("keydown", onKey);
// Relative times age on the page itself; nothing is fetched for them.
setInterval(() => {
  for (const node of document.querySelectorAll("time.ago")) node.textContent = ago(Number(node.dataset.at));
}, 30000);
if (state.token) start(); else showLogin("");
