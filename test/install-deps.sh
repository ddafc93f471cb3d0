#!/usr/bin/env bash
# install-deps.sh: install everything fraudstream needs to build, test,
# benchmark and run its demo on Debian 12, idempotently.
#
#   - Debian packages: PostgreSQL 15 server and headers, librdkafka,
#     pgTAP and pg_prove, IPC::Run (PostgreSQL's Perl TAP framework), kcat,
#     a JDK and Maven (for the Kafka broker), gnuplot (benchmark plots);
#   - the Apache Kafka 4.x broker jars, resolved by Maven from
#     test/kafka/pom.xml into a local cache.
#
# Packages already installed are not touched; a second run downloads
# nothing.  Installing needs root; as another user the script only checks
# and says what is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

packages=(
    build-essential
    postgresql-15
    postgresql-server-dev-15
    libpq-dev
    postgresql-15-pgtap
    libtap-parser-sourcehandler-pgtap-perl
    libipc-run-perl
    librdkafka-dev
    kcat
    default-jdk-headless
    maven
    procps
    bc
    gnuplot-nox
)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed'; then
        missing+=("$pkg")
    fi
done
# A JDK of another vendor or version (17 or later) is as good.
if command -v java >/dev/null && command -v javac >/dev/null; then
    missing=("${missing[@]/default-jdk-headless/}")
fi
read -r -a missing <<<"${missing[*]:-}"

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing packages: ${missing[*]}" >&2
        echo "install-deps: run this script as root (or with sudo) to install them" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's postgresql package creates a default cluster and starts it; the
# project's scripts run private clusters and need neither.
if ! id postgres >/dev/null 2>&1; then
    echo "install-deps: the postgres account is missing; reinstall postgresql-15" >&2
    exit 1
fi

"$here/kafka/kafka-ctl.sh" fetch
echo "install-deps: all dependencies present"
