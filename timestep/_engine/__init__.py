"""The durable engine: DBOS launch, the run workflow, recorded steps, the agent registry."""
