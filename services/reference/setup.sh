#!/usr/bin/env bash
# nestlab reference setup: the one step that installs anything for reference runs.
#  - Debian packages (apt, only the missing ones): qemu-system-x86 (7.2),
#    xen-hypervisor-4.17-amd64, linux-image-amd64 + the matching linux-headers,
#    busybox-static, gcc, make;
#  - into the cache dir ($NESTLAB_REFERENCE_DIR, default ./.nestlab/reference):
#    the uncompressed Xen ELF (QEMU's multiboot loader cannot read the .gz),
#    nestlab_vblk.ko built against the installed 6.1 kernel's headers, and
#    setup.json naming what a run uses.
# Safe to run again. Usage: setup.sh [--no-apt]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${NESTLAB_REFERENCE_DIR:-$PWD/.nestlab/reference}"
no_apt=0
[ "${1:-}" = "--no-apt" ] && no_apt=1

log() { echo "reference setup: $*" >&2; }

pkgs=(qemu-system-x86 xen-hypervisor-4.17-amd64 linux-image-amd64 linux-headers-amd64 busybox-static gcc make)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ $no_apt -eq 1 ]; then
    log "missing Debian packages: ${missing[*]} (run without --no-apt to install them)"
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel the linux-image-amd64 metapackage points at (not the host's own kernel).
kver="$(dpkg-query -W -f='${Depends}' linux-image-amd64 | grep -o 'linux-image-[0-9][^ ,]*' | head -1 | sed 's/^linux-image-//')"
hver="$(dpkg-query -W -f='${Depends}' linux-headers-amd64 | grep -o 'linux-headers-[0-9][^ ,]*' | head -1 | sed 's/^linux-headers-//')"
[ -n "$kver" ] || { log "cannot tell which kernel linux-image-amd64 installs"; exit 1; }
if [ "$kver" != "$hver" ]; then
  log "linux-image-amd64 ($kver) and linux-headers-amd64 ($hver) disagree; upgrade both"
  exit 1
fi
vmlinuz="/boot/vmlinuz-$kver"
modules="/lib/modules/$kver"
[ -f "$vmlinuz" ] && [ -d "$modules/build" ] || { log "missing $vmlinuz or $modules/build"; exit 1; }
xen_gz="$(ls /boot/xen-4.17-amd64.gz 2>/dev/null || ls /boot/xen-4.17*.gz | head -1)"
[ -f "$xen_gz" ] || { log "no /boot/xen-4.17*.gz"; exit 1; }

mkdir -p "$cache/module"
log "uncompressing $xen_gz"
gzip -dc "$xen_gz" > "$cache/xen.elf"

src="$here/guest/module"
files=(Kbuild Makefile nestlab_main.c nestlab_transport.c nestlab_vblk.h)
log "building nestlab_vblk.ko against $modules/build"
rm -rf "$cache/module"/*
for f in "${files[@]}"; do cp "$src/$f" "$cache/module/"; done
make -s -C "$modules/build" M="$cache/module" modules >"$cache/module/build.log" 2>&1 || {
  cat "$cache/module/build.log" >&2
  log "module build failed"
  exit 1
}
srchash="$(cd "$src" && cat "${files[@]}" | sha256sum | cut -d' ' -f1)"
qemu_version="$(qemu-system-x86_64 --version | head -1)"
cat > "$cache/setup.json" <<JSON
{
  "kernelVersion": "$kver",
  "vmlinuz": "$vmlinuz",
  "modulesDir": "$modules",
  "xen": "$cache/xen.elf",
  "module": "$cache/module/nestlab_vblk.ko",
  "moduleSourceSha256": "$srchash",
  "busybox": "/bin/busybox",
  "qemu": "$(command -v qemu-system-x86_64)",
  "qemuVersion": "$qemu_version"
}
JSON
log "ready: $cache/setup.json (kernel $kver, $qemu_version)"
