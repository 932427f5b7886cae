#!/usr/bin/env bash
# The project's two set-up commands for a fresh Debian 12 machine, run as root:
#   ./dev.sh demo   install what is missing, build, run the demo scenario
#   ./dev.sh test   install what is missing, build (plus an ASan/UBSan build),
#                   run the whole test suite in both
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES=(build-essential cmake pkg-config curl iproute2 procps
    libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev
    libnl-3-dev libnl-route-3-dev libseccomp-dev)
# qemu-system-x86, linux-image-amd64, cpio, kmod: the VM tier (tests/vm/):
# Debian's own kernel under QEMU, with the host root as the guest's root, so
# the guest runs the host's own ip, tc and ping (iputils-ping). Installing the
# kernel package adds files under /boot and /lib/modules; nothing boots it
# but tests/vm/vm-run.
TEST_PACKAGES=(libcriterion-dev python3 python3-jsonschema libxml2-utils openssl
    qemu-system-x86 linux-image-amd64 cpio kmod iputils-ping prometheus prometheus-alertmanager curl sqlite3)

install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "dev.sh: missing Debian packages: ${missing[*]}; run as root to install them" >&2
        exit 2
    fi
    echo "dev.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

case "${1:-}" in
demo)
    install_missing "${BUILD_PACKAGES[@]}"
    build build -DCHAOS_TESTS=OFF
    exec demo/run-demo.sh build scenarios/demo-retries-hold.json
    ;;
test)
    install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build build -DCHAOS_WERROR=ON
    # -j: the VM suites run beside the host tests (tests/CMakeLists.txt keeps
    # the host tests one at a time, and the guests in two lanes, with locks).
    # One job per CPU: with two guests beside a host test on 2 CPUs, host
    # tests that time a guard or a steady state ran out of CPU.
    (cd build && ctest --output-on-failure -j"$(nproc)")
    # The same suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
    build build-asan -DCHAOS_WERROR=ON -DCHAOS_SANITIZE=ON
    # vm/smoke tests the VM harness and the guest kernel, none of our
    # binaries: once is enough.
    (cd build-asan && ctest --output-on-failure -j"$(nproc)" -E '^vm/smoke$')
    ;;
*)
    echo "usage: ./dev.sh demo | ./dev.sh test" >&2
    exit 2
    ;;
esac
