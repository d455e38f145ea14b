"""A report as CSV (the API's ``format=csv`` and ``clarion reports show --csv``). Pure.

One row per (period, platform): first the totals (``period`` = ``total``), then every bucket of
the series in time order. ``platform`` is ``all``, or with a per-platform split also each
platform (``none`` holds the person-level facts: inflow, not sent for lack of a device,
blocked). Columns are the flat figure names of ``Figures.columns`` then the rates; rates are
only filled on the total rows (a rate inside one hour mixes sends of that hour with interactions
of other sends, so it is left blank rather than shown misleadingly) other than ``none`` (its
people were sent on the other platforms). An empty cell in a rate column of a total row means
there was nothing to divide by, or that the rate's inputs were not reported: the last column,
``rates_not_reported``, names those rates (space-separated).
"""

from __future__ import annotations

import csv
import io

from clarion.domain.reports import NO_PLATFORM, RATE_NAMES, Figures, Report


def _rows(report: Report) -> list[tuple[str, str, Figures, bool]]:
    rows = [("total", "all", report.totals, True)]
    rows += [("total", p, f, True) for p, f in report.platforms.items()]
    for b in report.series:
        start = b.start.isoformat()
        rows.append((start, "all", b.figures, False))
        rows += [(start, p, f, False) for p, f in b.platforms.items()]
    return rows


def report_csv(report: Report) -> str:
    rows = _rows(report)
    names: dict[str, None] = {}
    for _, _, fig, _ in rows:
        names.update(dict.fromkeys(name for name, _ in fig.columns()))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "platform", *names, *RATE_NAMES, "rates_not_reported"])
    for period, platform, fig, with_rates in rows:
        values = dict(fig.columns())
        shown = with_rates and platform != NO_PLATFORM
        rates = fig.rates.as_dict() if shown else {}
        writer.writerow([period, platform, *(values.get(n, 0) for n in names),
                         *("" if rates.get(r) is None else f"{rates[r]:.6f}"
                           for r in RATE_NAMES),
                         " ".join(fig.not_reported) if shown else ""])
    return out.getvalue()
