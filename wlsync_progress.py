"""Progress of long commands (backfill, verify, run --once) and their per-table summary.

On a terminal: a tqdm bar with count, rate and ETA. Otherwise (a log file, a
pipe, CI): one plain line every WLSYNC_PROGRESS_INTERVAL seconds (default 10).
Either way, closing prints one summary line per table:

    with Progress("backfill", unit="keys", verb="enqueued", total=estimate) as progress:
        progress.start("public.movies")             # a table with nothing to do still gets its line
        progress.advance("public.movies", 50000)    # after each committed chunk
        progress.echo("a line of output")           # printed above the bar, not through it
"""
from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm import tqdm


def plain_interval() -> float:
    try:
        return max(0.0, float(os.environ.get("WLSYNC_PROGRESS_INTERVAL", "10")))
    except ValueError:
        return 10.0


def echo(text: str, stream: TextIO | None = None) -> None:
    """print(), above any progress bar on the stream rather than through it."""
    tqdm.write(text, file=stream or sys.stdout)


class Progress:
    def __init__(self, action: str, unit: str, verb: str, total: int | None = None,
                 stream: TextIO | None = None):
        """action names the command ("backfill"), unit what is counted ("keys"), verb
        what happened to them in the summary ("enqueued"); total may be an estimate
        (None: no ETA)."""
        self.action, self.unit, self.verb = action, unit, verb
        self.total = int(total) if total else None
        self.stream = stream or sys.stdout
        self.counts: dict[str, int] = {}
        self.spans: dict[str, list[float]] = {}  # table -> [first seen, last advanced]
        self.started = self.printed_at = self.active_at = time.monotonic()
        self.interval = plain_interval()
        self.bar = (tqdm(total=self.total, desc=action, unit=f" {unit}", unit_scale=True, file=self.stream,
                         dynamic_ncols=True, leave=False)
                    if self.stream.isatty() else None)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def start(self, table: str) -> None:
        """Count table from now: its summary line shows even if nothing comes of it."""
        self.counts.setdefault(table, 0)
        # A table's time starts where the previous step ended (its first step
        # already ran when advance() first names it).
        self.spans.setdefault(table, [self.active_at, self.active_at])

    def advance(self, table: str, count: int) -> None:
        self.start(table)
        self.counts[table] += count
        now = self.active_at = time.monotonic()
        self.spans[table][1] = now
        if self.bar is not None:
            self.bar.set_postfix_str(table, refresh=False)
            self.bar.update(count)
        elif now - self.printed_at >= self.interval:
            self.printed_at = now
            print(self.plain_line(table, now), file=self.stream, flush=True)

    def plain_line(self, table: str, now: float) -> str:
        done = sum(self.counts.values())
        rate = done / max(now - self.started, 1e-6)
        line = f"{self.action}: {table}, {done:,}"
        if self.total:
            eta = max(self.total - done, 0) / rate if rate else 0
            line += f" of about {self.total:,} {self.unit} ({min(done / self.total, 1):.0%}), ETA {eta:,.0f} s"
        else:
            line += f" {self.unit}"
        return line + f", {rate:,.0f} {self.unit}/s"

    def echo(self, text: str) -> None:
        """Print a line of the command's own output without breaking the bar."""
        echo(text, self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        for table, count in self.counts.items():
            first, last = self.spans[table]
            seconds = last - first
            rate = f" ({count / seconds:,.0f}/s)" if seconds > 0 and count else ""
            print(f"{table}: {count} {self.unit} {self.verb} in {seconds:.1f} s{rate}", file=self.stream)
        self.stream.flush()
        self.counts.clear()
