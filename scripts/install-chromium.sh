#!/usr/bin/env bash
# Make sure a headless Chromium and its matching ChromeDriver are installed, for the UI's
# real-browser tests (tests/browser, docs/ui.md). They come from Debian's packages
# `chromium` and `chromium-driver` (one source package, so the driver always matches the
# browser): no browser download, no `playwright install`, no Selenium Manager.
#
# Idempotent: does nothing when both binaries are there. Otherwise, as root on a Debian
# or Ubuntu machine (CI is one), runs `apt-get update` and installs the two packages;
# anywhere else it stops with a message saying what to install. `bash scripts/test.sh`
# calls it; the README's first command (`bash scripts/dev.sh`) needs no browser.
#
# Another browser: set HEADWATER_CHROMIUM and HEADWATER_CHROMEDRIVER to a Chromium (or
# Chrome) and the ChromeDriver of the same major version; the tests use them as they are.
#
# Usage: bash scripts/install-chromium.sh   (prints the two paths)
set -euo pipefail

chromium="${HEADWATER_CHROMIUM:-/usr/bin/chromium}"
chromedriver="${HEADWATER_CHROMEDRIVER:-/usr/bin/chromedriver}"

have() { [ -x "$chromium" ] && [ -x "$chromedriver" ]; }

fail() {
    echo "install-chromium.sh: $*" >&2
    echo "install-chromium.sh: the UI's browser tests need Chromium and ChromeDriver:" \
         "as root on Debian/Ubuntu, 'apt-get update && apt-get install -y chromium" \
         "chromium-driver'; elsewhere set HEADWATER_CHROMIUM and HEADWATER_CHROMEDRIVER" \
         "to a browser and its driver (same major version)" >&2
    exit 1
}

if ! have; then
    if [ -n "${HEADWATER_CHROMIUM:-}${HEADWATER_CHROMEDRIVER:-}" ]; then
        fail "HEADWATER_CHROMIUM='$chromium' or HEADWATER_CHROMEDRIVER='$chromedriver'" \
             "is not an executable file"
    fi
    command -v apt-get >/dev/null || fail "no apt-get on this machine, and $chromium or" \
                                          "$chromedriver is missing"
    [ "$(id -u)" = 0 ] || fail "$chromium or $chromedriver is missing and installing" \
                               "them needs root (this is uid $(id -u))"
    echo "install-chromium.sh: installing Debian's chromium and chromium-driver" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || fail "'apt-get update' failed"
    # With the packages' recommends (what was tried here; they include the Mesa drivers),
    # and one font family named, so pages and docs/ui/'s screenshots render alike.
    apt-get install -y -qq chromium chromium-driver \
        fonts-liberation >&2 || fail "'apt-get install chromium chromium-driver' failed"
    have || fail "the packages installed, but $chromium or $chromedriver is still missing"
fi

# A browser that cannot start (a missing library) fails here, not in the middle of a test.
"$chromium" --version >/dev/null 2>&1 || fail "'$chromium --version' failed"
"$chromedriver" --version >/dev/null 2>&1 || fail "'$chromedriver --version' failed"
echo "$chromium"
echo "$chromedriver"
