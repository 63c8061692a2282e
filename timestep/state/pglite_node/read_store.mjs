// Node side of `timestep import-pglite` (timestep/pglite.py runs it once per import).
//
// Reads one JSON request on stdin:
//   {"databases": ["/dir/pglite/default", ...], "graph": {"start": "Mailer", "agents": {...}}}
// and prints one JSON report on stdout: for each database, every row of timestep 2026.0.x's
// `run_states` table, and for each active row its state brought to the schema that
// @openai/agents writes today (`upgraded`, via RunState.fromString + toString, the SDK's own
// migration of older schema versions) or the reason it cannot be (`error`).
//
// The agents are rebuilt from the Python agent graph (names, tools with their JSON schemas,
// handoffs): enough for the SDK to resolve names while loading. Nothing runs here, and
// nothing is written to the store (it is opened read-only in effect: only SELECTs).
import { PGlite } from '@electric-sql/pglite';
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

async function readDatabase(path, start) {
  const db = new PGlite(path);
  try {
    const exists = await db.query("SELECT to_regclass('public.run_states') IS NOT NULL AS present");
    if (!exists.rows[0].present) return { path, ok: false, error: 'no run_states table', rows: [] };
    const result = await db.query(
      `SELECT id::text AS id, run_id, state_type::text AS state_type, schema_version,
              state_data, is_active, created_at, resumed_at
         FROM run_states ORDER BY created_at, id`,
    );
    const rows = [];
    for (const row of result.rows) {
      const out = {
        id: row.id,
        run_id: row.run_id,
        state_type: row.state_type,
        schema_version: row.schema_version,
        document_version: row.state_data?.$schemaVersion ?? null,
        is_active: row.is_active,
        created_at: row.created_at?.toISOString?.() ?? row.created_at,
        upgraded: null,
        error: null,
      };
      if (row.is_active) {
        try {
          const state = await RunState.fromString(start, JSON.stringify(row.state_data));
          out.upgraded = state.toString();
        } catch (error) {
          out.error = `${error?.name ?? 'Error'}: ${error?.message ?? error}`;
        }
      }
      rows.push(out);
    }
    return { path, ok: true, error: null, rows };
  } finally {
    await db.close();
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const agents = buildAgents(request.graph);
const start = agents[request.graph.start];
const databases = [];
for (const path of request.databases) {
  try {
    databases.push(await readDatabase(path, start));
  } catch (error) {
    databases.push({ path, ok: false, error: `${error?.name ?? 'Error'}: ${error?.message ?? error}`, rows: [] });
  }
}
process.stdout.write(JSON.stringify({ databases }));
