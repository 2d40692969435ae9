#!/usr/bin/env bash
# Write overhead of capture on MDB: pgbench single-row UPDATE (or INSERT) on a
# 100k-row table, untracked vs wlsync key capture vs full-row capture
# (to_jsonb(NEW) into a queue, the alternative wlsync rejected) vs key capture
# that NOTIFYs on every change (the original demo's wake-up).
# Usage: bench/capture_overhead.sh [clients...]   env: DURATION (s), RUNS, MODE=update|insert
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${BENCH_DB:-wlsync_bench_capture}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
MODE=${MODE:-update}
CLIENTS=("${@:-16}")
PSQL=(psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1)

dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
createdb -h 127.0.0.1 -U postgres "$DB"
.venv/bin/python wlsync_migrate.py migrate --source "postgresql://postgres@127.0.0.1/$DB" >/dev/null
"${PSQL[@]}" "$DB" <<'SQL'
CREATE TABLE bench_rows (id int PRIMARY KEY, counter int NOT NULL DEFAULT 0, note text NOT NULL DEFAULT 'a modest text value');
INSERT INTO bench_rows (id) SELECT generate_series(1, 100000);
CREATE TABLE full_row_queue (event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, table_name text, row_data jsonb, op text);
CREATE FUNCTION capture_full_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO full_row_queue (table_name, row_data, op) VALUES (TG_TABLE_NAME, to_jsonb(NEW), TG_OP);
    RETURN NULL;
END $$;
CREATE FUNCTION capture_key_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wlsync.queue (table_id, pk, op) VALUES (0, jsonb_build_object('id', NEW.id), 'U');
    PERFORM pg_notify('bench_every_change', '');
    RETURN NULL;
END $$;
VACUUM ANALYZE;
SQL

script=$(mktemp)
if [ "$MODE" = insert ]; then
    printf '\\set id random(1, 1000000000)\nINSERT INTO bench_rows (id) VALUES (:id) ON CONFLICT DO NOTHING;\n' >"$script"
else
    printf '\\set id random(1, 100000)\nUPDATE bench_rows SET counter = counter + 1 WHERE id = :id;\n' >"$script"
fi

setup() {
    "${PSQL[@]}" "$DB" -c "DROP TRIGGER IF EXISTS full_row ON bench_rows; DROP TRIGGER IF EXISTS key_notify ON bench_rows;" \
        -c "SELECT wlsync.untrack('bench_rows') FROM wlsync.tracked_table WHERE relid = 'bench_rows'::regclass" >/dev/null
    case $1 in
        untracked) ;;
        wlsync) "${PSQL[@]}" "$DB" -c "SELECT wlsync.track('bench_rows')" >/dev/null ;;
        full_row) "${PSQL[@]}" "$DB" -c "CREATE TRIGGER full_row AFTER INSERT OR UPDATE ON bench_rows FOR EACH ROW EXECUTE FUNCTION capture_full_row()" ;;
        notify_every) "${PSQL[@]}" "$DB" -c "CREATE TRIGGER key_notify AFTER INSERT OR UPDATE ON bench_rows FOR EACH ROW EXECUTE FUNCTION capture_key_notify()" ;;
    esac
    "${PSQL[@]}" "$DB" -c "TRUNCATE wlsync.queue, full_row_queue" -c "CHECKPOINT" >/dev/null
}

echo "variant,clients,run,tps"
for clients in "${CLIENTS[@]}"; do
    for run in $(seq 1 "$RUNS"); do
        for variant in untracked wlsync full_row notify_every; do
            setup "$variant"
            tps=$(pgbench -h 127.0.0.1 -U postgres -n -f "$script" -c "$clients" -j "$clients" -T "$DURATION" "$DB" 2>/dev/null \
                  | awk '/^tps = / {print $3}')
            echo "$variant,$clients,$run,$tps"
        done
    done
done
rm -f "$script"
dropdb -h 127.0.0.1 -U postgres "$DB"
