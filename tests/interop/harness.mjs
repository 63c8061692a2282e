// Node side of Timestep's RunState interop tests.
//
// Reads one JSON request on stdin and prints one JSON report on stdout:
//   {"mode": "produce", "cells": [...]}  run each cell's `source` script with the real
//       @openai/agents until it pauses for approval, apply the `before` decisions and
//       return `state.toString()` (the TS -> Python direction starts here).
//   {"mode": "resume", "cells": [...]}   load each cell's `state` with RunState.fromString,
//       apply the `after` decisions and run to completion with the `resume` script
//       (the Python -> TS direction ends here).
// Several cells run in one process so the suite starts Node only a few times.
//
// The agents mirror tests/interop/_harness.py: `Mailer` owns send_email (needs approval)
// and lookup_address (no approval); `Triage` hands off to `Mailer`.
import { pathToFileURL } from 'node:url';
import { Agent, MemorySession, RunState, Usage, run, tool } from '@openai/agents';
import { z } from 'zod';

// JS names the handoff tool after the agent name verbatim; Python lower-cases it.
const handoffToolName = (agentName) => `transfer_to_${agentName.replace(/[^a-zA-Z0-9]/g, '_')}`;

// The same usage numbers as the Python harness, so totals can be compared across a hand-over.
export function usageFor(index) {
  return new Usage({
    requests: 1,
    inputTokens: 100 + index,
    outputTokens: 10 + index,
    totalTokens: 110 + 2 * index,
    inputTokensDetails: { cached_tokens: 1 },
    outputTokensDetails: { reasoning_tokens: 2 },
  });
}

export function toOutput(turn, index) {
  if (turn.text !== undefined) {
    return [
      {
        type: 'message',
        id: `msg_${index}`,
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: turn.text }],
      },
    ];
  }
  return turn.calls.map((call) => ({
    type: 'function_call',
    id: `fc_${call.id}`,
    callId: call.id,
    name: call.handoff ? handoffToolName(call.handoff) : call.tool,
    arguments: JSON.stringify(call.args ?? {}),
    status: 'completed',
  }));
}

// Protocol item types the JS model layer understands as input.
const NATIVE_INPUT_TYPES = new Set(['message', 'function_call', 'function_call_result', 'reasoning']);

// Checks one model input the way a provider would: native item types only, and every
// function call paired with exactly one result (and no orphan results).
export function inputProblems(input) {
  if (typeof input === 'string') return [];
  const problems = [];
  const calls = new Map();
  const results = new Map();
  for (const item of input) {
    const type = item.type ?? 'message';
    if (!NATIVE_INPUT_TYPES.has(type)) problems.push(`foreign item type ${type}`);
    for (const key of Object.keys(item)) {
      if (key.includes('_') && key !== 'providerData') problems.push(`snake_case key ${key} in ${type}`);
    }
    if (type === 'function_call') {
      if (!item.callId || !item.name || typeof item.arguments !== 'string') {
        problems.push(`malformed function_call ${JSON.stringify(item)}`);
      }
      calls.set(item.callId, (calls.get(item.callId) ?? 0) + 1);
    }
    if (type === 'function_call_result') {
      const outputOk =
        typeof item.output === 'string' ||
        (item.output && typeof item.output === 'object' && item.output.type === 'text');
      if (!item.callId || !item.name || !outputOk) {
        problems.push(`malformed function_call_result ${JSON.stringify(item)}`);
      }
      results.set(item.callId, (results.get(item.callId) ?? 0) + 1);
    }
  }
  for (const [callId, count] of calls) {
    if (count !== 1) problems.push(`call ${callId} appears ${count} times`);
    if (results.get(callId) !== 1) problems.push(`call ${callId} has ${results.get(callId) ?? 0} results`);
  }
  for (const callId of results.keys()) {
    if (!calls.has(callId)) problems.push(`result for unknown call ${callId}`);
  }
  return problems;
}

export class ScriptedModel {
  constructor(turns, usageOffset) {
    this.turns = [...turns];
    this.usageOffset = usageOffset;
    this.calls = 0;
    this.inputs = [];
    this.problems = [];
  }

  async getResponse(request) {
    const input = structuredClone(request.input);
    this.inputs.push(input);
    this.problems.push(...inputProblems(input));
    const index = this.usageOffset + this.calls;
    this.calls += 1;
    const turn = this.turns.shift();
    if (!turn) throw new Error('scripted model ran out of turns');
    return { usage: usageFor(index), output: toOutput(turn, index), responseId: `resp_${index}` };
  }

  async *getStreamedResponse(request) {
    const response = await this.getResponse(request);
    yield {
      type: 'response_done',
      response: {
        id: response.responseId,
        usage: {
          requests: 1,
          inputTokens: response.usage.inputTokens,
          outputTokens: response.usage.outputTokens,
          totalTokens: response.usage.totalTokens,
        },
        output: response.output,
      },
    };
  }
}

export function buildAgents(model, executions) {
  const sendEmail = tool({
    name: 'send_email',
    description: 'Send an email.',
    parameters: z.object({ to: z.string(), body: z.string() }),
    needsApproval: true,
    execute: async ({ to, body }, runContext, details) => {
      executions.push({ tool: 'send_email', callId: details?.toolCall?.callId ?? null, to, body });
      const user = runContext?.context?.user_id;
      return user ? `sent to ${to} as ${user}` : `sent to ${to}`;
    },
  });
  const lookupAddress = tool({
    name: 'lookup_address',
    description: 'Look up the email address of a person.',
    parameters: z.object({ name: z.string() }),
    execute: async ({ name }, _runContext, details) => {
      executions.push({ tool: 'lookup_address', callId: details?.toolCall?.callId ?? null, name });
      return `${name.toLowerCase()}@example.com`;
    },
  });
  const mailer = new Agent({
    name: 'Mailer',
    instructions: 'You send emails for the user.',
    tools: [sendEmail, lookupAddress],
    model,
  });
  const triage = new Agent({
    name: 'Triage',
    instructions: 'Route the request to the right agent.',
    handoffs: [mailer],
    model,
  });
  return { Mailer: mailer, Triage: triage };
}

export function toInput(input) {
  if (typeof input === 'string') return input;
  return input.map((message) =>
    message.role === 'assistant'
      ? {
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: message.text }],
        }
      : { type: 'message', role: message.role, content: message.text },
  );
}

export function applyDecisions(state, decisions) {
  for (const decision of decisions ?? []) {
    const item = state.getInterruptions().find((candidate) => candidate.rawItem.callId === decision.call);
    if (!item) throw new Error(`no pending approval for ${decision.call}`);
    if (decision.approve) {
      state.approve(item, { alwaysApprove: Boolean(decision.always) });
    } else {
      state.reject(item, {
        alwaysReject: Boolean(decision.always),
        ...(decision.message ? { message: decision.message } : {}),
      });
    }
  }
}

export function usageReport(usage) {
  const sum = (details, key) => (details ?? []).reduce((total, entry) => total + (entry?.[key] ?? 0), 0);
  return {
    requests: usage.requests,
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
    cached_tokens: sum(usage.inputTokensDetails, 'cached_tokens'),
    reasoning_tokens: sum(usage.outputTokensDetails, 'reasoning_tokens'),
  };
}

export function stateReport(result, state, model, executions) {
  const interruptions = result.interruptions ?? [];
  return {
    ok: true,
    final_output: interruptions.length ? null : (result.finalOutput ?? null),
    last_agent: result.lastAgent?.name ?? null,
    interruptions: interruptions.map((item) => ({ call: item.rawItem.callId, tool: item.name })),
    executions,
    model_inputs: model.inputs,
    input_problems: model.problems,
    usage: usageReport(state._context.usage),
    current_turn: state._currentTurn,
    state: interruptions.length ? state.toString() : null,
  };
}

async function produce(cell) {
  const executions = [];
  const model = new ScriptedModel(cell.source, 0);
  const agents = buildAgents(model, executions);
  // A session cell keeps the conversation in a MemorySession, as a TypeScript service would.
  const session = cell.session ? new MemorySession() : undefined;
  const result = await run(agents[cell.start], toInput(cell.input), {
    context: cell.context ?? undefined,
    maxTurns: 10,
    ...(session ? { session } : {}),
  });
  if (!result.interruptions?.length) throw new Error('source run finished without an interruption');
  const state = result.state;
  applyDecisions(state, cell.before);
  const report = stateReport(result, state, model, executions);
  report.state = state.toString();
  report.session_items = session ? await session.getItems() : null;
  return report;
}

async function resume(cell) {
  const executions = [];
  const model = new ScriptedModel(cell.resume, cell.usage_offset ?? 0);
  const agents = buildAgents(model, executions);
  const startAgent = agents[cell.start];
  const state = await RunState.fromString(startAgent, cell.state);
  const loaded = {
    current_turn: state._currentTurn,
    current_agent: state._currentAgent?.name ?? null,
    usage: usageReport(state._context.usage),
    interruptions: state.getInterruptions().map((item) => ({ call: item.rawItem.callId, tool: item.name })),
  };
  applyDecisions(state, cell.after);
  // A session cell resumes with a MemorySession holding the conversation so far (the items the
  // exporting side's session held, converted to this SDK's protocol by the test).
  const session = cell.session ? new MemorySession({ initialItems: cell.session_items }) : undefined;
  const result = await run(startAgent, state, { maxTurns: 10, ...(session ? { session } : {}) });
  const report = stateReport(result, result.state, model, executions);
  report.loaded = loaded;
  report.session_items = session ? await session.getItems() : null;
  return report;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const handler = request.mode === 'produce' ? produce : resume;
  const results = {};
  for (const cell of request.cells) {
    try {
      results[cell.name] = await handler(cell);
    } catch (error) {
      results[cell.name] = { ok: false, error: `${error?.name ?? 'Error'}: ${error?.message ?? error}` };
    }
  }
  process.stdout.write(JSON.stringify(results));
}

// Run only as a script: tests/interop/cli_handover.mjs imports the pieces above.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
