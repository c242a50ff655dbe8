"""Speed measurements that write tables and plots into ``benchmarks/results/`` (not tests).

Run from the repository root: ``PYTHONPATH=. python benchmarks/NAME.py`` or ``python -m benchmarks.NAME``.
"""
