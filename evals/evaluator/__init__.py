"""A promptfoo-style evaluator that writes through the eval store's write path.

config → render → provider call → assertions → `add_results` in batches → `complete_eval`.
`manage.py eval CONFIG` is the entry point; `runner.run_eval` is the library one.
"""
