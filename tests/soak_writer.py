"""A soak-test writer process: random committed and rolled-back writes on a few hundred keys.

Every write first bumps the key's clock row (soak_clock), which serializes the
writers of one key for the rest of the transaction, so the version written into
the row grows with commit order, across deletes and re-inserts. Each committed
transaction also inserts one soak_log row. Prints {"committed": n, "rolled_back": m}.

usage: python tests/soak_writer.py DSN SEED SECONDS
"""
import json
import random
import sys
import time

import psycopg

ITEM_KEYS = 200
PAIR_AS, PAIR_BS = 20, ["x", "y y", "Zz", "q'uote", "é"]


def main(dsn: str, seed: int, seconds: float) -> None:
    rng = random.Random(seed)
    committed = rolled_back = 0
    deadline = time.monotonic() + seconds
    with psycopg.connect(dsn) as conn:
        while time.monotonic() < deadline:
            ops = sorted({("i", rng.randint(1, ITEM_KEYS), "") if rng.random() < 0.6
                          else ("p", rng.randint(1, PAIR_AS), rng.choice(PAIR_BS)) for _ in range(rng.randint(1, 4))})
            try:
                for kind, a, b in ops:
                    clock = f"{kind}:{a}:{b}"
                    version = conn.execute("UPDATE soak_clock SET v = v + 1 WHERE k = %s RETURNING v",
                                           [clock]).fetchone()[0]
                    action = rng.random()
                    if kind == "i":
                        if action < 0.7:
                            conn.execute("INSERT INTO soak_items VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE "
                                         "SET version = EXCLUDED.version, payload = EXCLUDED.payload",
                                         [a, version, "p" * rng.randint(0, 50)])
                        else:
                            conn.execute("DELETE FROM soak_items WHERE id = %s", [a])
                    else:
                        if action < 0.7:
                            conn.execute("INSERT INTO soak_pairs VALUES (%s, %s, %s) ON CONFLICT (a, b) DO UPDATE "
                                         "SET version = EXCLUDED.version", [a, b, version])
                        else:
                            conn.execute("DELETE FROM soak_pairs WHERE a = %s AND b = %s", [a, b])
                if rng.random() < 0.15:
                    conn.rollback()
                    rolled_back += 1
                    continue
                conn.execute("INSERT INTO soak_log (writer) VALUES (%s)", [seed])
                conn.commit()
                committed += 1
            except psycopg.errors.DeadlockDetected:
                conn.rollback()
                rolled_back += 1
    print(json.dumps({"committed": committed, "rolled_back": rolled_back}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
