"""Side-by-side benchmarks of selu_zoo: ``python -m benchmarks [--quick|--full] [--only=...]``.

Results are written (never asserted): one JSON file per group, RESULTS.md and ratios.png in
``benchmarks/results/``. See benchmarks/harness.py for how candidates are timed.
"""
