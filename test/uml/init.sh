#!/bin/busybox sh
# PID 1 of the User-Mode Linux guest that test/uml/harness.ts boots.
#
# The guest's root is the host's own root through hostfs, read-only, so the
# host's node, ip and the checkout are all here; everything the guest writes
# goes to tmpfs, except the results directory, which is the one host
# directory mounted writable (hostfs, at /run/uml-out).
#
# Parameters: kernel command-line words the kernel does not recognise become
# environment variables of init (init/main.c, unknown_bootoption()):
#   FAND_UML_OUT      host path of the results directory
#   FAND_UML_MODULES  "builtin": load no modules (the kernel has them built in)
# The command is in $FAND_UML_OUT/argv, one argument per line: the script for
# node, then its arguments.
#
# Results, in the results directory:
#   script.log   the script's stdout and stderr
#   result.json  {"status": exit status, "result": last line of stdout that
#                starts with "{" (or null), "uptime": [init, node start, node end]}
# linux.uml exits 0 whatever happens in here: result.json is the only verdict.

BB=/bin/busybox
OUT=/run/uml-out
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/run/tmp TMPDIR=/run/tmp FAND_UML=1

say() { echo "uml-init: $*"; }
uptime_s() { $BB cut -d' ' -f1 /proc/uptime; }

halt_now() {
  $BB sync
  $BB umount "$OUT" 2>/dev/null
  $BB poweroff -f
  # poweroff -f does not return; if it somehow does, PID 1 must not exit
  # (the kernel would panic, and a panicking UML waits for a keypress).
  while :; do $BB sleep 60; done
}

$BB mount -t proc proc /proc
$BB mount -t sysfs sysfs /sys
# devtmpfs: /dev/null, /dev/urandom, and /dev/net/tun once tun is loaded.
# Debian's UML kernel mounts it on /dev itself (CONFIG_DEVTMPFS_MOUNT).
$BB grep -q '^devtmpfs /dev ' /proc/mounts || $BB mount -t devtmpfs devtmpfs /dev
$BB mkdir -p /dev/shm /dev/pts
$BB mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$BB mount -t devpts devpts /dev/pts
# /run: `ip netns` keeps its namespaces in /run/netns, fand its state in /run/fand.
$BB mount -t tmpfs -o mode=755 tmpfs /run
# Not /tmp: the checkout under test may live there (CI clones anywhere), and
# a tmpfs over it would hide it. Scratch space is /run/tmp (TMPDIR, HOME).
$BB mkdir -p /run/tmp && $BB chmod 1777 /run/tmp
T0=$(uptime_s)

$BB mkdir -p "$OUT"
if [ -z "$FAND_UML_OUT" ] || ! $BB mount -t hostfs -o "$FAND_UML_OUT" hostfs "$OUT"; then
  say "cannot mount the results directory '$FAND_UML_OUT' (FAND_UML_OUT) via hostfs"
  halt_now
fi

# Modules, in dependency order (there is no modprobe/depmod on the host, and
# busybox insmod takes one file and resolves nothing). A module that is
# already there (or built in) is skipped.
KDIR=/usr/lib/uml/modules/$($BB uname -r)/kernel
# FAND_UML_MODULES=builtin: a kernel with everything built in (linux-fan.uml).
[ "$FAND_UML_MODULES" = builtin ] || for m in net/ipv4/tunnel4 net/ipv4/ip_tunnel net/ipv4/ipip drivers/net/veth \
         net/llc/llc net/802/stp lib/crc-ccitt net/ipv6/ipv6 net/bridge/bridge \
         drivers/net/tun; do
  name=$($BB basename "$m" | $BB tr - _)
  [ -d "/sys/module/$name" ] && continue
  if [ -f "$KDIR/$m.ko" ]; then
    $BB insmod "$KDIR/$m.ko" || say "insmod $KDIR/$m.ko failed"
  else
    say "module $m: no $KDIR/$m.ko (not built as a module for $($BB uname -r)?)"
  fi
done
[ -c /dev/net/tun ] || { $BB mkdir -p /dev/net; $BB mknod /dev/net/tun c 10 200; }

$BB ip link set lo up

set --
while IFS= read -r arg; do set -- "$@" "$arg"; done < "$OUT/argv"
T1=$(uptime_s)
node "$@" > "$OUT/script.log" 2>&1 < /dev/null
status=$?
T2=$(uptime_s)

last=$($BB grep '^{' "$OUT/script.log" | $BB tail -n 1)
[ -n "$last" ] || last=null
printf '{"status":%d,"uptime":[%s,%s,%s],"result":%s}\n' "$status" "$T0" "$T1" "$T2" "$last" > "$OUT/result.json.tmp"
$BB mv "$OUT/result.json.tmp" "$OUT/result.json"
halt_now
