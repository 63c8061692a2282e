// The TypeScript end of the CLI hand-over (tests/interop/test_cli_handover.py), written the way
// docs/typescript-interop.md tells a user to: the state travels as a file.
//
//   node cli_handover.mjs resume STATE_FILE < cell.json
//       RunState.fromString(agent, <file>), apply the cell's `after` decisions, run to the end
//       with the cell's `resume` turns (file written by `timestep state export --format typescript`).
//   node cli_handover.mjs produce STATE_FILE < cell.json
//       run the cell's `source` turns until the run pauses, apply the `before` decisions and
//       write state.toString() to the file (read by `timestep state import`).
//
// Prints one JSON report on stdout. The agents and the scripted model are those of harness.mjs
// (the same Mailer/Triage agents as tests/apps/handover_app.py).
import { readFileSync, writeFileSync } from 'node:fs';
import { RunState, run } from '@openai/agents';
import { ScriptedModel, applyDecisions, buildAgents, stateReport, toInput, usageReport } from './harness.mjs';

async function resume(file, cell) {
  const executions = [];
  const model = new ScriptedModel(cell.resume, cell.usage_offset ?? 0);
  const agent = buildAgents(model, executions)[cell.start];
  const state = await RunState.fromString(agent, readFileSync(file, 'utf8'));
  const loaded = {
    current_turn: state._currentTurn,
    current_agent: state._currentAgent?.name ?? null,
    usage: usageReport(state._context.usage),
    interruptions: state.getInterruptions().map((item) => ({ call: item.rawItem.callId, tool: item.name })),
  };
  applyDecisions(state, cell.after);
  const result = await run(agent, state, { maxTurns: 10 });
  const report = stateReport(result, result.state, model, executions);
  report.loaded = loaded;
  return report;
}

async function produce(file, cell) {
  const executions = [];
  const model = new ScriptedModel(cell.source, 0);
  const agent = buildAgents(model, executions)[cell.start];
  const result = await run(agent, toInput(cell.input), { maxTurns: 10 });
  if (!result.interruptions?.length) throw new Error('the run finished without an interruption');
  applyDecisions(result.state, cell.before);
  writeFileSync(file, result.state.toString());
  return stateReport(result, result.state, model, executions);
}

const [mode, file] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const cell = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const handler = { resume, produce }[mode];
if (!handler || !file) {
  process.stderr.write('usage: node cli_handover.mjs resume|produce STATE_FILE < cell.json\n');
  process.exit(2);
}
process.stdout.write(JSON.stringify(await handler(file, cell)));
