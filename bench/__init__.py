"""Benchmarks: ``python -m bench`` runs all, ``python -m bench intake|lifecycle|webhooks`` one.

Each prints its figures and writes ``bench/results/<name>.json``; none fails on timing (see README.md).
"""
