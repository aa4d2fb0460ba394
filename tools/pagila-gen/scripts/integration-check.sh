#!/usr/bin/env bash
# Integration check of pagila-gen against a throwaway PostgreSQL server:
#   1. initdb a temporary cluster (as the postgres user when run as root) on a
#      free port of 127.0.0.1;
#   2. load the real Pagila dump (../shared/pagila) into database "pagila";
#   3. load scale 1 with pagila-gen into database "gen", compare every table's
#      row count with the real one (must be within 1%) and run `pagila-gen check`
#      (Postgres itself enforces the keys, FKs and CHECKs the loader created);
#   4. run `pagila-gen advance` twice (batch, simulated time) and check the data
#      rules again;
#   5. run the live workload `pagila-gen simulate`: 10 s at 50/s, a stop by
#      SIGINT (must exit 0 with its summary), and `--events 300 --seed 7` on two
#      identically loaded databases (the rows must match, timestamps aside);
#      check the data rules again;
#   6. with --scale N (e.g. --scale 100), time a load at that scale too.
# The server and its directory are removed on exit.
#
# Usage: tools/pagila-gen/scripts/integration-check.sh [--scale N] [--pg-bin DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
pagila="${PAGILA_DIR:-$repo/../shared/pagila}"
pg_bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
big_scale=""
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) big_scale="$2"; shift 2 ;;
        --pg-bin) pg_bin="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$pg_bin/initdb" ] || { echo "no initdb in $pg_bin (set PG_BIN)" >&2; exit 2; }
[ -f "$pagila/pagila-data.sql" ] || { echo "no Pagila dump in $pagila" >&2; exit 2; }

(cd "$repo" && cargo build --release -p pagila-gen --quiet)
gen="$repo/target/release/pagila-gen"

tmp="$(mktemp -d /tmp/pagila-gen-check.XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$tmp"
    as_pg=(runuser -u postgres --)
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cleanup() {
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
    -o "-p $port -k $tmp -c listen_addresses=127.0.0.1" start >/dev/null
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres
psql_() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
echo "server: $("$pg_bin/psql" -XAtc 'select version()' -d postgres)"

psql_ -d postgres -c "CREATE DATABASE pagila" -c "CREATE DATABASE gen"
psql_ -d pagila -f "$pagila/pagila-schema.sql" >/dev/null
psql_ -d pagila -f "$pagila/pagila-data.sql" >/dev/null

"$gen" load --dsn "host=127.0.0.1 port=$port user=postgres dbname=gen" --scale 1

tables="actor address category city country customer film film_actor film_category inventory language payment rental staff store"
counts_sql="SELECT t, n FROM (VALUES $(for t in $tables; do printf "('%s', (SELECT count(*) FROM public.%s))," "$t" "$t"; done | sed 's/,$//')) v(t, n) ORDER BY 1"
fail=0
printf '%-16s %8s %8s %7s\n' table real gen diff%
while IFS='|' read -r t real gen_n; do
    pct="$(awk -v a="$real" -v b="$gen_n" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')"
    flag=""
    if awk -v a="$real" -v b="$gen_n" 'BEGIN { d = b - a; if (d < 0) d = -d; exit !(d > a * 0.01) }'; then
        flag="  OUT OF RANGE"; fail=1
    fi
    printf '%-16s %8s %8s %7s%s\n' "$t" "$real" "$gen_n" "$pct" "$flag"
done < <(join -t'|' <("$pg_bin/psql" -XAtc "$counts_sql" -d pagila) <("$pg_bin/psql" -XAtc "$counts_sql" -d gen))

"$gen" check --dsn "host=127.0.0.1 port=$port user=postgres dbname=gen" --scale 1 || fail=1

# Move the scale-1 data forward twice and check the rules again.
for _ in 1 2; do
    "$gen" advance --dsn "host=127.0.0.1 port=$port user=postgres dbname=gen" --rentals 2000 --days 7
done
"$gen" check --dsn "host=127.0.0.1 port=$port user=postgres dbname=gen" --no-counts || fail=1

# The live workload: paced, then stopped by SIGINT between transactions.
gen_dsn="host=127.0.0.1 port=$port user=postgres dbname=gen"
"$gen" simulate --dsn "$gen_dsn" --rate 50/s --duration 10s --quiet || fail=1
"$gen" simulate --dsn "$gen_dsn" --rate 50/s --seed 3 >"$tmp/sim.out" 2>&1 &
sim_pid=$!
sleep 3
kill -INT "$sim_pid"
sim_rc=0
wait "$sim_pid" || sim_rc=$?
cat "$tmp/sim.out"
if [ "$sim_rc" != 0 ] || ! grep -q 'stopped: SIGINT' "$tmp/sim.out"; then
    echo "simulate did not stop cleanly on SIGINT (exit $sim_rc)"; fail=1
fi
"$gen" check --dsn "$gen_dsn" --no-counts || fail=1

# --events is reproducible: the same events on two identical databases.
psql_ -d postgres -c "CREATE DATABASE sim_a" -c "CREATE DATABASE sim_b"
fingerprint="SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
  SELECT 'r' || rental_id || '/' || inventory_id || '/' || customer_id || '/' || staff_id || '/' || (return_date IS NULL) AS x FROM rental
  UNION ALL SELECT 'p' || payment_id || '/' || customer_id || '/' || staff_id || '/' || rental_id FROM payment
  UNION ALL SELECT 'c' || customer_id || '/' || store_id || '/' || address_id || '/' || active || '/' || activebool FROM customer
  UNION ALL SELECT 'a' || address_id || '/' || address || '/' || city_id FROM address
  UNION ALL SELECT 'f' || film_id || '/' || rental_rate FROM film
  UNION ALL SELECT 's' || staff_id || '/' || store_id FROM staff
  UNION ALL SELECT 'm' || store_id || '/' || manager_staff_id FROM store) s"
for db in sim_a sim_b; do
    "$gen" load --dsn "host=127.0.0.1 port=$port user=postgres dbname=$db" --scale 1 >/dev/null
    "$gen" simulate --dsn "host=127.0.0.1 port=$port user=postgres dbname=$db" --events 300 --seed 7 --quiet
    "$gen" check --dsn "host=127.0.0.1 port=$port user=postgres dbname=$db" --no-counts >/dev/null || fail=1
done
fp_a="$("$pg_bin/psql" -XAtc "$fingerprint" -d sim_a)"
fp_b="$("$pg_bin/psql" -XAtc "$fingerprint" -d sim_b)"
if [ "$fp_a" = "$fp_b" ]; then
    echo "simulate --events 300 --seed 7: same rows on both databases ($fp_a)"
else
    echo "simulate --events 300 --seed 7: rows differ ($fp_a vs $fp_b)"; fail=1
fi

if [ -n "$big_scale" ]; then
    psql_ -d postgres -c "CREATE DATABASE gen_big"
    start=$(date +%s.%N)
    "$gen" load --dsn "host=127.0.0.1 port=$port user=postgres dbname=gen_big" --scale "$big_scale"
    end=$(date +%s.%N)
    "$gen" check --dsn "host=127.0.0.1 port=$port user=postgres dbname=gen_big" --scale "$big_scale" || fail=1
    awk -v s="$start" -v e="$end" -v sc="$big_scale" 'BEGIN { printf "scale %s loaded in %.1f s\n", sc, e - s }'
fi

if [ "$fail" = 0 ]; then echo "integration check: ok"; else echo "integration check: FAILED"; fi
exit "$fail"
