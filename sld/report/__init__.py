"""Reports of discovery runs and benchmarks: plots, the discovered law beside the human-derived one, provenance.

Examples
--------
``sld report runs/sft --out report/sft``; ``sld bench --method sld --budget-s 30 --report report/bench``.

Modules: ``data`` (read a run directory and its rows back), ``content`` (fit the reference laws, score both laws
on the validation folds and the test rows), ``plots`` (matplotlib figures, Agg backend), ``markdown`` and ``html``
(the two renderings), ``run_report`` (:func:`~sld.report.run_report.write_report`), ``bench_report``
(:func:`~sld.report.bench_report.write_bench_report`). Nothing is imported here, so that ``sld.errors`` can import
``sld.report.errors`` cheaply.
"""
