"""The doctor: rules over the data that name why a tenant (or an event, a delivery) is stuck and what fixes it.

``base`` holds what a finding is, ``rules`` the rules (one class each, one line of ``RULES``), ``fixes`` the
one-click fixes (each calls an existing service, behind its staff permission), ``service`` runs them: the
admin dashboard's "Needs attention", ``GET /api/doctor/``, ``manage.py doctor`` and the beat task that
announces new findings as ``tenant.stuck``.
"""
