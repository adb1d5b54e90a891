"""The simulator: a synthetic product's user base with planted truth.

One module per part of the world: ``parameters`` (every planted value),
``people`` (signups, segments, attributes, experiment arms), ``lives``
(ideas, adoption, churn, conversion, cancel or silent), ``activity``,
``purchases``, ``referrals`` (across chunks), ``kpis`` (the market panel),
``population`` (Monte Carlo truths), ``chunks`` (one chunk of users as
tables), ``truth`` (truth.json), ``files`` (streamed Parquet, atomic
folders), ``simulated`` (the result), ``generate`` (``simulate``,
``write``), and ``draws`` (small pure draws for model tests).
The public entry point is :mod:`workbench.data.simulate`.
"""
