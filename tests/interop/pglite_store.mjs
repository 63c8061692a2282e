// Creates a PGLite store with timestep 2026.0.x's schema (facts: shared/notes/seed-store.md),
// for the `timestep import-pglite` tests. Usage: node pglite_store.mjs PGLITE_ENTRY < spec.json
// where PGLITE_ENTRY is the dist/index.js of an installed @electric-sql/pglite release (the
// store gets that release's PostgreSQL version) and spec is
// {"databases": {"/dir/pglite/default": [{"run_id", "state_type", "state_data", "is_active"}]}}.
import { pathToFileURL } from 'node:url';

const { PGlite } = await import(pathToFileURL(process.argv[2]).href);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const spec = JSON.parse(Buffer.concat(chunks).toString('utf8'));
for (const [path, rows] of Object.entries(spec.databases)) {
  const db = new PGlite(path);
  await db.exec(`
    CREATE TYPE run_state_type_enum AS ENUM ('interrupted', 'checkpoint', 'final');
    CREATE TABLE run_states (
      id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
      run_id TEXT NOT NULL,
      state_type run_state_type_enum NOT NULL,
      schema_version VARCHAR(20) NOT NULL CHECK (schema_version ~ '^[0-9]+\\.[0-9]+$'),
      state_data JSONB NOT NULL,
      is_active BOOLEAN NOT NULL DEFAULT true,
      created_at TIMESTAMP NOT NULL DEFAULT NOW(),
      resumed_at TIMESTAMP
    );
    CREATE UNIQUE INDEX run_states_active_run_id ON run_states (run_id) WHERE is_active;
  `);
  for (const row of rows) {
    await db.query(
      `INSERT INTO run_states (run_id, state_type, schema_version, state_data, is_active)
       VALUES ($1, $2, '1.0', $3, $4)`,
      [row.run_id, row.state_type, JSON.stringify(row.state_data), row.is_active],
    );
  }
  await db.close();
}
