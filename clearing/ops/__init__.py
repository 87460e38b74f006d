"""The operators' tools: offline commands, end-to-end runs, the demo, benchmarks, simulation."""
