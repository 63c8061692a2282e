"""The DBOS application that hosts Timestep runs (`python -m workflows`, what `dbos start` runs)."""
