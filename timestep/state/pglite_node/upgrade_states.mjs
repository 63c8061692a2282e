// Node side of `timestep import-pglite`, part 2: brings saved RunState documents to the schema
// that @openai/agents writes today, with the SDK's own migration (RunState.fromString, then
// toString).
//
// Reads one JSON request on stdin:
//   {"graph": {"start": "Mailer", "agents": {...}}, "documents": [{...}, ...]}
// and prints {"states": [{"upgraded": "..."} or {"error": "..."}, ...]} in the same order.
// The agents are rebuilt from the Python agent graph (names, tools with their JSON schemas,
// handoffs): enough for the SDK to resolve names while loading. Nothing runs here.
import { Agent, RunState, tool } from '@openai/agents';

function buildAgents(graph) {
  const agents = {};
  for (const [name, spec] of Object.entries(graph.agents)) {
    agents[name] = new Agent({
      name,
      instructions: '',
      tools: spec.tools.map((t) =>
        tool({
          name: t.name,
          description: t.description ?? '',
          parameters: t.parameters,
          strict: t.strict,
          needsApproval: t.needsApproval,
          execute: async () => {
            throw new Error('timestep import-pglite never runs tools');
          },
        }),
      ),
    });
  }
  for (const [name, spec] of Object.entries(graph.agents)) {
    agents[name].handoffs = spec.handoffs.map((target) => agents[target]);
  }
  return agents;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const start = buildAgents(request.graph)[request.graph.start];
const states = [];
for (const document of request.documents) {
  try {
    const state = await RunState.fromString(start, JSON.stringify(document));
    states.push({ upgraded: state.toString() });
  } catch (error) {
    states.push({ error: `${error?.name ?? 'Error'}: ${error?.message ?? error}` });
  }
}
process.stdout.write(JSON.stringify({ states }));
