// Node side of `timestep import-pglite`, part 1: reads timestep 2026.0.x's `run_states` rows.
//
// Reads one JSON request on stdin:
//   {"databases": [{"path": "/tmp/.../0", "pglite": "/.../@electric-sql/pglite/dist/index.js"}]}
// where each database is opened with the pglite release given for it (timestep/pglite.py picks
// the one of the database's PostgreSQL version: a release opens only its own version's data
// directories), and prints one JSON report on stdout: for each database every row of the table,
// `state_data` as stored, or the reason it cannot be read. Only SELECTs are run.
import { pathToFileURL } from 'node:url';

const releases = new Map();
async function pgliteAt(entry) {
  if (!releases.has(entry)) releases.set(entry, (await import(pathToFileURL(entry).href)).PGlite);
  return releases.get(entry);
}

async function readDatabase(path, entry) {
  const PGlite = await pgliteAt(entry);
  const db = new PGlite(path);
  try {
    const exists = await db.query("SELECT to_regclass('public.run_states') IS NOT NULL AS present");
    if (!exists.rows[0].present) return { path, ok: false, error: 'no run_states table', rows: [] };
    const result = await db.query(
      `SELECT id::text AS id, run_id, state_type::text AS state_type, schema_version,
              state_data, is_active, created_at
         FROM run_states ORDER BY created_at, id`,
    );
    const rows = result.rows.map((row) => ({
      ...row,
      created_at: row.created_at?.toISOString?.() ?? row.created_at,
    }));
    return { path, ok: true, error: null, rows };
  } finally {
    await db.close();
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const databases = [];
for (const { path, pglite } of request.databases) {
  try {
    databases.push(await readDatabase(path, pglite));
  } catch (error) {
    databases.push({ path, ok: false, error: `${error?.name ?? 'Error'}: ${error?.message ?? error}`, rows: [] });
  }
}
process.stdout.write(JSON.stringify({ databases }));
