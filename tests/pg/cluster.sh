#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cluster.sh -- a throwaway PostgreSQL cluster on 127.0.0.1 for tests and the demo.
#
#   eval "$(tests/pg/cluster.sh start DIR)"   # prints PGHOST/PGPORT/PGUSER/PGDATABASE exports
#   eval "$(tests/pg/cluster.sh start DIR --tls)"   # + a self-signed CA (KINFER_PG_CA) and ssl=on
#   tests/pg/cluster.sh stop DIR
#   tests/pg/cluster.sh freeze|thaw DIR       # SIGSTOP / SIGCONT every server process
#
# initdb runs into DIR/data; as root, the cluster runs as the `postgres` user (the server
# refuses to run as root). Trust authentication on loopback only.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop|status DIR}
dir=${2:?usage: cluster.sh start|stop|status DIR}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "cluster.sh: no PostgreSQL server found (run deploy/install-deps.sh)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; chmod 700 "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  tls_opts=
  if [ "${3:-}" = --tls ]; then
    # a throwaway CA and a server certificate for localhost / 127.0.0.1 (openssl CLI);
    # clients verify with sslmode=verify-full sslrootcert=$KINFER_PG_CA
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kinfer test CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$dir/data/server.key" -out "$dir/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 2 -extfile "$dir/san.ext" -out "$dir/data/server.crt" >/dev/null 2>&1
    chmod 600 "$dir/data/server.key"
    chmod 644 "$dir/ca.crt"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/data/server.key" "$dir/data/server.crt"; fi
    tls_opts="-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
  fi
  # A random port below the kernel's ephemeral range, so that no client socket and no listener
  # on port 0 (the dev broker's) can hold it; another test's listener still can, so a start
  # that failed to bind tries another port (a fixed KINFER_PG_PORT is tried once).
  read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph_lo=32768
  [ "$eph_lo" -gt 12000 ] || eph_lo=32768
  for try in 1 2 3 4 5 6 7 8 9 10; do
    port=${KINFER_PG_PORT:-$(( 10000 + (RANDOM * 32768 + RANDOM) % (eph_lo - 10000) ))}
    rm -f "$dir/server.log"
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c fsync=off -c max_connections=200 $tls_opts" \
      start >/dev/null; then
      break
    fi
    if [ -n "${KINFER_PG_PORT:-}" ] || [ "$try" -eq 10 ] || ! grep -q "Address already in use" "$dir/server.log"; then
      cat "$dir/server.log" >&2
      exit 1
    fi
    echo "cluster.sh: port $port is taken, trying another" >&2
  done
  echo "$port" >"$dir/port"
  echo "export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres KINFER_PG_DIR='$dir'${tls_opts:+ KINFER_PG_CA='$dir/ca.crt'}"
  ;;
stop)
  [ -f "$dir/data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  ;;
restart-stopped)   # start again on the same port after a `stop` (outage tests)
  port=$(cat "$dir/port")
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c fsync=off -c max_connections=200" \
    start >/dev/null
  ;;
status)
  as_owner "$bindir/pg_ctl" -D "$dir/data" status
  ;;
freeze|thaw)   # SIGSTOP / SIGCONT the server and every backend (a hung database host whose
               # kernel still accepts and ACKs TCP: the stuck-dependency tests)
  pid=$(head -n 1 "$dir/data/postmaster.pid")
  sig=STOP; [ "$cmd" = thaw ] && sig=CONT
  # shellcheck disable=SC2046
  kill -s "$sig" "$pid" $(ps -o pid= --ppid "$pid")
  ;;
*) echo "usage: cluster.sh start|stop|restart-stopped|status|freeze|thaw DIR" >&2; exit 2 ;;
esac
