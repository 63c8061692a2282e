"""Stored state: the SQL schema and migrations, run records, the RunState store and adapters."""
