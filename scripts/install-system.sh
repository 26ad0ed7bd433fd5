#!/usr/bin/env bash
# The Debian packages the tests drive, installed when missing (as root; otherwise it says what
# to install): headless Chromium (Playwright drives it through executable_path; its own browser
# download is not used), xmlsec1 (pysaml2 signs and verifies SAML with it), poppler-utils
# (pdftotext reads invoices back), Pango (WeasyPrint renders invoice PDFs with it) and wrk (the
# answer-cycle benchmark drives the server with it).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
command -v xmlsec1 >/dev/null 2>&1 || need+=(xmlsec1)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0 || need+=(libpango-1.0-0 libpangoft2-1.0-0)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
# redis-server: the fault tests (tests/core/test_faults.py) run a private one and stop it.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# PgBouncer (make test-pgbouncer, bench-pgbouncer): scripts/pgbouncer.sh runs its own instance;
# the package's system service, should it start one on 6432, is stopped and disabled below.
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || need+=(pgbouncer)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "missing system packages: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [[ " ${need[*]} " == *" pgbouncer "* ]]; then
  systemctl disable --now pgbouncer >/dev/null 2>&1 || service pgbouncer stop >/dev/null 2>&1 || true
fi
command -v chromium >/dev/null && command -v xmlsec1 >/dev/null && command -v pdftotext >/dev/null
