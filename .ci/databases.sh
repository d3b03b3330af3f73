#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, trust auth, database test) and MariaDB
# (127.0.0.1:3306, root without password, database test) answer: installs them from
# Debian's packages when missing, starts them when stopped. Sourced by .ci/run.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then echo "$name is up"; return 0; fi
    sleep 1
  done
  echo "$name did not come up within 60 s" >&2
  return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
my_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql postgresql-client >/dev/null
fi
if ! pg_up; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
wait_for PostgreSQL pg_up
# Trust auth on loopback, and the test database, whatever state the cluster was in.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  as_root sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null

if ! command -v mariadbd >/dev/null 2>&1 && ! [ -x /usr/sbin/mariadbd ]; then
  echo "installing MariaDB from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
if ! my_up; then
  as_root mkdir -p /run/mysqld
  as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
fi
wait_for MariaDB my_up
mysql --protocol=tcp -h 127.0.0.1 -uroot -e 'create database if not exists test'

export TOKENWARDEN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
export TOKENWARDEN_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test
# A backend whose URL is missing fails the suites instead of being skipped.
export TOKENWARDEN_TEST_REQUIRE_BACKENDS=postgres,mysql
