#!/usr/bin/env bash
# Build and install the Citus extension for Debian's PostgreSQL 15 from the source kept beside
# the repository (`../shared/citus/`: Citus is in none of the package registries CI reaches).
# As root. Does nothing when this version is already installed. About 6 minutes on 2 cores.
#
#   scripts/install-citus.sh DIR    DIR holds citus-<version>.tar.gz and its build note
set -euo pipefail

source_dir=$(cd "${1:?usage: $0 DIR}" && pwd)
tarball=$(ls "$source_dir"/citus-*.tar.gz | head -n 1)
version=$(basename "$tarball" .tar.gz | sed 's/^citus-//')
major_minor=${version%.*}
control=/usr/share/postgresql/15/extension/citus.control
if [ -f "$control" ] && grep -q "default_version = '$major_minor-" "$control" \
    && [ -f /usr/lib/postgresql/15/lib/citus.so ]; then
    echo "Citus $version is installed"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "Citus is missing: install Debian's postgresql-15-citus, or run this as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-server-dev-15 \
    libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev \
    libxslt1-dev libpam0g-dev libreadline-dev autoconf flex bison make gcc >/dev/null
build=$(mktemp -d "${TMPDIR:-/tmp}/citus-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
tar xzf "$tarball" -C "$build"
cd "$build/citus-$version"
for patch in "$source_dir"/*.patch; do
    [ -f "$patch" ] && patch -p1 --quiet <"$patch"
done
./configure --quiet >/dev/null
make -j"$(nproc)" >/dev/null
make install >/dev/null
echo "Citus $version installed"
