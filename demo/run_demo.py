"""make demo: wlsync end to end on the embedded default (SQLite as WL).

Creates a demo MDB (movies, people, and a movie<->person join table with a
composite key), migrates it, tracks and backfills the tables, starts the driver,
makes a burst of inserts, updates and deletes (some rolled back), waits for the
queue to drain, runs verify and prints a summary. Exits 1 if WL differs.

Environment: WLSYNC_DEMO_SOURCE (default postgresql://postgres@127.0.0.1:5432/wlsync_demo);
the database is dropped and created again. WLSYNC_DEMO_WL: the SQLite file (default
./demo_wl.db; the driver's log goes beside it). WLSYNC_DEMO_METRICS_PORT: when set,
the driver serves Prometheus metrics on that port and the demo prints them once drained.
"""
from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import wlsync_migrate  # noqa: E402

SOURCE = os.environ.get("WLSYNC_DEMO_SOURCE", "postgresql://postgres@127.0.0.1:5432/wlsync_demo")
WL_FILE = Path(os.environ.get("WLSYNC_DEMO_WL", ROOT / "demo_wl.db"))
TARGET = f"sqlite:///{WL_FILE}"
BURST_TRANSACTIONS = 3000
METRICS_PORT = os.environ.get("WLSYNC_DEMO_METRICS_PORT")

SCHEMA = """
CREATE TABLE movies (id int PRIMARY KEY, title text NOT NULL, year int, rating numeric(3,1),
                     tags text[], details jsonb);
CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, born date);
CREATE TABLE movie_people (movie_id int REFERENCES movies ON DELETE CASCADE,
                           person_id int REFERENCES people ON DELETE CASCADE,
                           role text NOT NULL, PRIMARY KEY (movie_id, person_id));
INSERT INTO movies SELECT g, 'Movie ' || g, 1950 + g % 75, (g % 100) / 10.0, ARRAY['tag' || g % 7],
                          jsonb_build_object('runtime', 80 + g % 60) FROM generate_series(1, 2000) g;
INSERT INTO people SELECT g, 'Person ' || g, date '1940-01-01' + g * 7 FROM generate_series(1, 1000) g;
INSERT INTO movie_people SELECT m, 1 + (m * 7 + k) % 1000, CASE k WHEN 0 THEN 'director' ELSE 'actor' END
                          FROM generate_series(1, 2000) m, generate_series(0, 2) k;
"""


def show_metrics() -> None:
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    step(f"the driver's metrics: curl -s {url} (histogram buckets left out)")
    time.sleep(5)  # the queue figures are read at most every 5 s
    with urllib.request.urlopen(url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("wlsync_") and "_bucket{" not in line:
                print("    " + line)


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def recreate_database() -> None:
    info = psycopg.conninfo.conninfo_to_dict(SOURCE)
    name = info.get("dbname")
    admin = psycopg.conninfo.make_conninfo(SOURCE, dbname="postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        sys.exit(f"demo: cannot reach PostgreSQL ({wlsync_migrate.one_line(exc)}); start it or set WLSYNC_DEMO_SOURCE")


def burst(conn: psycopg.Connection) -> tuple[int, int]:
    """Random writes in small transactions; about 1 in 8 rolled back."""
    rng = random.Random(42)
    committed = rolled_back = 0
    next_movie = 2001
    for _ in range(BURST_TRANSACTIONS):
        with conn.cursor() as cur:
            for _ in range(rng.randint(1, 6)):
                action = rng.random()
                movie = rng.randint(1, next_movie - 1)
                if action < 0.35:
                    cur.execute("INSERT INTO movies (id, title, year) VALUES (%s, %s, %s)",
                                [next_movie, f"New movie {next_movie}", rng.randint(1950, 2026)])
                    cur.execute("INSERT INTO movie_people VALUES (%s, %s, 'actor') ON CONFLICT DO NOTHING",
                                [next_movie, rng.randint(1, 1000)])
                    next_movie += 1
                elif action < 0.80:
                    cur.execute("UPDATE movies SET rating = %s, tags = tags || %s WHERE id = %s",
                                [round(rng.uniform(0, 10), 1), [f"t{rng.randint(1, 9)}"], movie])
                elif action < 0.90:
                    cur.execute("UPDATE people SET name = name || '*' WHERE id = %s", [rng.randint(1, 1000)])
                else:
                    cur.execute("DELETE FROM movies WHERE id = %s", [movie])
        if rng.random() < 0.125:
            conn.rollback()
            rolled_back += 1
        else:
            conn.commit()
            committed += 1
    return committed, rolled_back


def main() -> int:
    step(f"creating the demo MDB {wlsync_migrate.describe(SOURCE)}")
    recreate_database()
    wlsync_migrate.migrate(SOURCE)
    with psycopg.connect(SOURCE, autocommit=True) as mdb:
        mdb.execute(SCHEMA)
        step("tracking movies, people, movie_people and backfilling their existing rows")
        backfilled = sum(mdb.execute("SELECT wlsync.track(%s), wlsync.backfill(%s)", [t, t]).fetchone()[1]
                         for t in ("movies", "people", "movie_people"))
        print(f"    {backfilled} existing rows enqueued")

        WL_FILE.unlink(missing_ok=True)
        log_path = WL_FILE.with_name("demo_driver.log")
        step(f"starting the driver: wlsync_driver.py run --target {TARGET} (log: {log_path})")
        log_file = open(log_path, "w")
        metrics = ["--metrics-port", METRICS_PORT] if METRICS_PORT else []
        driver = subprocess.Popen([sys.executable, str(ROOT / "wlsync_driver.py"), "--log-json", "run",
                                   "--source", SOURCE, "--target", TARGET, *metrics],
                                  stdout=log_file, stderr=subprocess.STDOUT)
        try:
            step(f"a burst of {BURST_TRANSACTIONS} transactions of inserts, updates and deletes (some rolled back)")
            started = time.monotonic()
            with psycopg.connect(SOURCE) as writer:
                committed, rolled_back = burst(writer)
            written_at = time.monotonic()
            print(f"    {committed} committed, {rolled_back} rolled back, in {written_at - started:.1f} s")

            step("waiting for the queue to drain")
            while True:
                pending = mdb.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0]
                print(f"\r    pending events: {pending:>7}", end="", flush=True)
                if pending == 0:
                    break
                if driver.poll() is not None:
                    print()
                    print(log_path.read_text()[-2000:])
                    return 1
                time.sleep(0.2)
            drained_at = time.monotonic()
            print()
            if METRICS_PORT:
                show_metrics()
        finally:
            driver.send_signal(signal.SIGTERM)
            driver.wait(30)
            log_file.close()

    step("verify: python wlsync_driver.py verify")
    verify = subprocess.run([sys.executable, str(ROOT / "wlsync_driver.py"), "verify", "--source", SOURCE,
                             "--target", TARGET], capture_output=True, text=True)
    print("    " + verify.stdout.strip().replace("\n", "\n    "))

    batches = [entry for entry in (json.loads(line) for line in log_path.read_text().splitlines()
                                   if line.startswith("{")) if "lag_s" in entry]
    events = sum(b["events"] for b in batches)
    lags = [b["lag_s"] for b in batches] or [0.0]
    print()
    print("summary")
    print(f"  events synced         {events} ({backfilled} backfilled, {events - backfilled} from the burst) "
          f"in {len(batches)} batches")
    print(f"  throughput            {events / (drained_at - started):,.0f} events/s while the burst was written; "
          f"queue empty {(drained_at - written_at) * 1000:.0f} ms after the last commit")
    print(f"  lag per batch         median {statistics.median(lags) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms")
    print(f"  WL == MDB             {'yes' if verify.returncode == 0 else 'NO'}")
    return verify.returncode


if __name__ == "__main__":
    sys.exit(main())
