# Shared helpers of scripts/dev and scripts/test. Sourced, not run.
#
# Both commands must work on a fresh Debian 12 machine as root: they install
# what is missing with apt, build and install the extension into PostgreSQL
# 15, and run every server as an unprivileged user (PostgreSQL refuses root).

PG_MAJOR=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
# the unprivileged user that runs servers and the suites that start them
RUN_AS=${HYPERDRIVE_RUN_AS:-postgres}

# Debian packages the build and the tests need.
DEPENDENCIES="gcc make perl postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR \
libpq-dev libssl-dev openssl libev-dev libpg-query-dev libprotobuf-c-dev libipc-run-perl \
liblmdb-dev libsystemd-dev scdoc man-db \
libmariadb-dev mariadb-server mariadb-client sysbench python3-pymysql python3-mysqldb"
# (mariadb-server for its binaries only: the MySQL tests start their own
# servers with t/MariaDB.pm; the system service is stopped after installing it)
# and what scripts/package needs on top to build and check the Debian packages
# (debian/control's Build-Depends are the build's, above)
PACKAGE_DEPENDENCIES="dpkg-dev debhelper fakeroot lintian"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Install the packages that are missing (apt-get update only when needed):
# DEPENDENCIES and the packages named as arguments.
install_dependencies() {
	local missing="" pkg
	for pkg in $DEPENDENCIES "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $pkg"
	done
	# node and npm, for the driver tests (t/030_drivers.pl, t/110_mysql_drivers.pl). Looked up on PATH,
	# not with dpkg: a NodeSource nodejs package brings its own npm and
	# conflicts with Debian's.
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
	[ -z "$missing" ] && return 0
	is_root || die "missing Debian packages:$missing; run this command as root (or install them)"
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || die "apt-get update failed"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2 ||
		die "apt-get install$missing failed"
	case " $missing " in *" mariadb-server "*) stop_system_mariadb ;; esac
}

# Installing mariadb-server starts (and enables) the system's MariaDB on port
# 3306: the tests need none, so it is stopped and disabled (where there is no
# systemd, as in a container, there is nothing to disable).
stop_system_mariadb() {
	say "stopping and disabling the system MariaDB service (the tests start their own)"
	if [ -d /run/systemd/system ]; then
		systemctl disable --now mariadb.service >&2 || say "warning: could not stop mariadb.service"
	else
		service mariadb stop >/dev/null 2>&1 || true
		update-rc.d mariadb disable >/dev/null 2>&1 || true
	fi
}

# Build everything and install the extension into the server's directories.
build_and_install() {
	local src=$1
	make -C "$src" -s PG_CONFIG="$PG_CONFIG" >&2 || die "build failed"
	if is_root; then
		make -C "$src" -s PG_CONFIG="$PG_CONFIG" install >&2 || die "make install failed"
	else
		say "not root: skipping 'make install' (the extension must already be installed)"
	fi
}

# Run a command as the unprivileged server user (or as ourselves if not root).
as_server_user() {
	if is_root; then
		id "$RUN_AS" >/dev/null 2>&1 || die "user $RUN_AS does not exist (postgresql-$PG_MAJOR creates it)"
		runuser -u "$RUN_AS" -- env PATH="$PG_BINDIR:$PATH" "$@"
	else
		env PATH="$PG_BINDIR:$PATH" "$@"
	fi
}

# Print the output_plugin_libraries line this server needs, if it has the
# setting (PostgreSQL 15.19 and later minor releases; older ones refuse it).
output_plugin_setting() {
	# (grep without -q: an early exit would SIGPIPE postgres and fail the pipeline)
	if "$PG_BINDIR/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries\b' >/dev/null; then
		echo "output_plugin_libraries = 'pgoutput, test_decoding, hyperdrive'"
	fi
}

# A free TCP port on 127.0.0.1, starting from $1.
free_port() {
	local port=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
	done
	echo "$port"
}
