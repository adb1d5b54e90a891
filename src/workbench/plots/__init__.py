"""Figures from results and tables (seaborn/matplotlib). Never fits."""
