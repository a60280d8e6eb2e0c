"""The benchmarks of textdiffusion: one module per question, run as `python -m bench.NAME` from the repository root.

bench/harness.py holds the run/record/render skeleton they share (arguments, the machine, the result file, its
Markdown tables, the README summary); bench/common.py the measurement helpers (sizes, timing, MFU, training a model).
Results are in bench/results/; bench/README.md gives the findings.
"""
