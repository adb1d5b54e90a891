"""Model fitting: growth, scaling laws, conversion, CLV, survival, causal,
experiments. Functions take analysis tables (pandas) and return frozen result
dataclasses with ``summary()``, ``to_metrics()`` and ``_repr_html_``."""
