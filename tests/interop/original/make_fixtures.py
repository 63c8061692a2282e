"""Makes the fixtures of this folder with the ORIGINAL timestep 2026.0.8 (not run in CI).

Run it with a Python that has the original package from PyPI (it shares our package's name, so
never in Timestep's own virtualenv) and Node.js with `@electric-sql/pglite` 0.3.14 (the version
of the original's lockfile) in `node_modules` of the working directory; the README of this
folder gives the exact commands. It starts a local stand-in for the OpenAI API
(tests/fake_openai.py, made to ask for one `get_weather` call and then to answer), runs the
original's own flow to the tool-approval interruption (`timestep.run_agent`, `result.to_state()`,
`RunStateStore(...).save(state)`) three ways, and writes:

- `store.tar.xz`: the PGLite store the original wrote under `$XDG_CONFIG_HOME/timestep/pglite/`
  (its databases `default` and `db_<session id>`), as the original left it;
- `documents.json`: every row of its `run_states` tables, read back by the original's own
  `RunStateStore.load()` path (`state_data` exactly as stored).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/fake_openai.py (standard library only)

from fake_openai import FakeOpenAI  # noqa: E402


class WeatherModel(FakeOpenAI):
    """Asks for `get_weather` for the city in the user's message until a tool output is in the
    input, then answers with that output. `call_fields` are added to each function call item
    (today's Responses API sends `namespace` and `caller`, null for a plain function tool)."""

    call_fields: dict[str, Any] = {}

    def _response(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = super()._response(body)
        items = [i for i in body.get("input") or [] if isinstance(i, dict)]
        last = items[-1] if items else {}
        if last.get("type") == "function_call_output":
            reply["output"][0]["content"][0]["text"] = f"The weather: {last['output']}"
            return reply
        city = "Berkeley" if "Berkeley" in json.dumps(last) else "Oakland"
        index = reply["id"].split("_")[1]
        reply["output"] = [
            {
                "type": "function_call",
                "id": f"fc_{index}",
                "call_id": f"call_weather_{index}",
                "name": "get_weather",
                "arguments": json.dumps({"city": city}),
                "status": "completed",
                **self.call_fields,
            }
        ]
        return reply


async def flows(fake: WeatherModel) -> None:
    # The original 2026.0.8: importing it makes its vendored Agents SDK the `agents` package.
    from timestep import RunStateStore, run_agent  # isort: skip

    from agents import Agent, OpenAIConversationsSession, SQLiteSession, function_tool
    from timestep._vendored.agents.model_settings import ModelSettings

    @function_tool(needs_approval=True)
    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        return f"sunny in {city}"

    agent = Agent(
        name="Weather Assistant",
        instructions="You answer questions about the weather.",
        tools=[get_weather],
        model="gpt-4.1",
        # Given explicitly: 2026.0.8 installed from PyPI loads its vendored `model_settings`
        # under two module names, and the default one fails Agent's isinstance check.
        model_settings=ModelSettings(),
    )
    ask = [{"role": "user", "content": "What's the weather in Berkeley?"}]

    # 1. The original's "partial" scenario: an OpenAI conversation session whose first question
    #    was approved and answered; the second one's state is saved under the conversation id
    #    (database pglite/db_<conv id>), its input holding the conversation so far.
    fake.call_fields = {"namespace": None, "caller": None}
    session = OpenAIConversationsSession()
    result = await run_agent(
        agent, [{"role": "user", "content": "Weather in Oakland?"}], session, False
    )
    assert result.interruptions, "the fake model asked for get_weather: expected an approval"
    state = result.to_state()
    state.approve(state.get_interruptions()[0])
    result = await run_agent(agent, state, session, False)
    assert result.final_output == "The weather: sunny in Oakland", result.final_output
    result = await run_agent(agent, ask, session, False)
    assert result.interruptions
    session_id = await session._get_session_id()
    store = RunStateStore(agent=agent, session_id=session_id)
    await store.save(result.to_state())

    fake.call_fields = {}

    # 2. The store made with no id (database pglite/default, the run id made on save).
    result = await run_agent(
        agent, [{"role": "user", "content": "And in Oakland?"}], SQLiteSession("s2"), False
    )
    assert result.interruptions
    store = RunStateStore(agent=agent)
    await store.save(result.to_state())
    print("default store run id:", store.run_id)

    # 3. A caller's run id (database pglite/db_weather-run-3), saved, loaded back and saved again
    #    (the first row becomes inactive, as the original's save does).
    result = await run_agent(agent, ask, SQLiteSession("s3"), False)
    store = RunStateStore(agent=agent, run_id="weather-run-3")
    await store.save(result.to_state())
    state = await store.load()
    assert state.get_interruptions(), "the original loads its own state back"
    await store.save(state)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, WeatherModel() as fake:
        os.environ["XDG_CONFIG_HOME"] = tmp
        os.environ["OPENAI_BASE_URL"] = fake.url
        os.environ["OPENAI_API_KEY"] = "sk-fake"
        os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
        asyncio.run(flows(fake))
        store = Path(tmp) / "timestep" / "pglite"
        with tarfile.open(HERE / "store.tar.xz", "w:xz", preset=9) as tar:
            tar.add(store, arcname="pglite")
        documents = dump_rows(store)
    (HERE / "documents.json").write_text(json.dumps(documents, indent=1, sort_keys=True) + "\n")
    print(f"wrote {HERE / 'store.tar.xz'} and {HERE / 'documents.json'}")


def dump_rows(store: Path) -> list[dict[str, Any]]:
    """Every row of every database, read with the same @electric-sql/pglite as the original."""
    script = """
    const path = require('path');
    const { PGlite } = require(path.join(process.cwd(), 'node_modules/@electric-sql/pglite'));
    (async () => {
      const out = [];
      for (const dir of JSON.parse(process.argv[1])) {
        const db = new PGlite(dir);
        const r = await db.query(`SELECT run_id, state_type::text AS state_type, schema_version,
          state_data, is_active FROM run_states ORDER BY created_at, id`);
        for (const row of r.rows) out.push({ database: path.basename(dir), ...row });
        await db.close();
      }
      console.log(JSON.stringify(out));
    })();
    """
    dirs = sorted(str(d) for d in store.iterdir() if (d / "PG_VERSION").is_file())
    done = subprocess.run(
        ["node", "-e", script, json.dumps(dirs)], capture_output=True, text=True, check=True
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


if __name__ == "__main__":
    main()
