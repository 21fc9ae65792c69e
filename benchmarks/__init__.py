"""The benchmarks: each module writes its section of ``benchmarks/RESULTS.md``.

Run one from the repository root as a module, ``python -m benchmarks.NAME`` (``.venv/bin/python
-m benchmarks.run_all``), so that its imports of the shared helpers (``benchmarks.results``,
``benchmarks.seed_stats``, ``benchmarks.workloads``) and of the installed package need no path edits.
"""
