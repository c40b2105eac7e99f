#!/bin/sh
# A stand-in for the official MariaDB image's entrypoint in the test cluster's image
# seclab.test/mariadb, implementing exactly the part of its contract seclab relies on
# (MariaDB/mariadb-docker, docker-entrypoint.sh):
# - the root password comes from MARIADB_ROOT_PASSWORD or its alias MYSQL_ROOT_PASSWORD, and
#   is applied only when the data directory /var/lib/mysql is empty (initialised);
# - root may log in from anywhere ('root'@'%', MARIADB_ROOT_HOST's default) and locally;
# - the server runs as user mysql, listening on 3306 on every address;
# - a first argument that is not an option runs that command instead (the setup Job's
#   `sh -c` and the clients `mariadb`, `mariadb-admin` are in the image).
set -eu
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
	exec "$@"
fi
datadir=/var/lib/mysql
password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
mkdir -p "$datadir" /run/mysqld
chown mysql:mysql "$datadir" /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
	if [ -z "$password" ]; then
		echo >&2 "error: database is uninitialized and password option is not specified (MARIADB_ROOT_PASSWORD or MYSQL_ROOT_PASSWORD)"
		exit 1
	fi
	echo "initialising $datadir"
	mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=normal \
		--skip-test-db >/dev/null
	socket=/run/mysqld/init.sock
	mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" &
	server=$!
	tries=0
	until mariadb-admin --socket="$socket" --user=root ping --silent 2>/dev/null; do
		tries=$((tries + 1))
		[ "$tries" -lt 120 ] || { echo >&2 "error: the server did not start to initialise"; exit 1; }
		sleep 0.5
	done
	# The password goes on standard input, never on a command line; with
	# NO_BACKSLASH_ESCAPES only quotes need doubling.
	quoted=$(printf '%s' "$password" | sed "s/'/''/g")
	mariadb --socket="$socket" --user=root <<EOF
SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';
ALTER USER 'root'@'localhost' IDENTIFIED BY '$quoted';
CREATE USER 'root'@'%' IDENTIFIED BY '$quoted';
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
	MYSQL_PWD=$password mariadb-admin --socket="$socket" --user=root shutdown
	wait "$server" || true
	echo "initialised $datadir"
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 "$@"
