"""One run, with torch: task loading, data, the model, training under the budget,
evaluation and the run's record; pretraining and its checkpoints; the worker side
of a search trial. `runner.execute` is the entry point (docs/architecture.md)."""
