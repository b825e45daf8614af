#!/usr/bin/env bash
# A throwaway PostgreSQL cluster from Debian's packages, for the tests and the bench.
#
#   scripts/pg_cluster.sh start DIR   initdb in DIR (new or empty; its parent must be reachable by the server user), start it on a free loopback port,
#                                     print its URL (postgresql://lab@127.0.0.1:PORT/postgres) on stdout
#   scripts/pg_cluster.sh stop DIR    stop it and remove DIR
#   scripts/pg_cluster.sh down DIR    stop the server, keep its data (a database outage, for the fault tests)
#   scripts/pg_cluster.sh up DIR      start it again on the same port
#
# Installs the `postgresql` package with apt-get when no server binaries are found. As root (CI), the
# server runs as the `postgres` user (initdb refuses root). Trust authentication on 127.0.0.1 only;
# the unix socket lives inside DIR, so nothing touches /var/run/postgresql.
set -euo pipefail

find_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# Small and fast: a test cluster needs no durability (fsync off); loopback only, its socket in DIR.
server_options() {
  echo "-c listen_addresses=127.0.0.1 -p $1 -k $2 -c fsync=off -c synchronous_commit=off" \
       "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB"
}

as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd="${1:?usage: pg_cluster.sh start|stop|down|up DIR}"
dir="${2:?usage: pg_cluster.sh start|stop|down|up DIR}"

case "$cmd" in
start)
  bindir="$(find_bindir)"
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q postgresql >&2
    bindir="$(find_bindir)"
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_server_user "$bindir/initdb" -D "$dir/data" -U lab --auth=trust -E UTF8 --locale=C.UTF-8 -N >/dev/null
  as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "$(server_options "$port" "$dir")" start >/dev/null
  echo "$port" >"$dir/port"
  echo "postgresql://lab@127.0.0.1:$port/postgres"
  ;;
down)
  as_server_user "$(find_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
up)
  port="$(cat "$dir/port")"
  as_server_user "$(find_bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "$(server_options "$port" "$dir")" start >/dev/null
  ;;
stop)
  bindir="$(find_bindir)"
  if [ -n "$bindir" ] && [ -d "$dir/data" ]; then
    as_server_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg_cluster.sh start|stop|down|up DIR" >&2
  exit 2
  ;;
esac
