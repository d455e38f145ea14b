"""Journeys as data: the document (``document``), its checks (``validation``), the pure
per-person state machine (``engine``) and the per-step tally (``tally``)."""
