#!/bin/sh
# PID 1 of the UML lab kernel. The root filesystem is the host's (hostfs), so the
# guest sees the same paths, venv and repository; only what must be the guest's own
# (/run with netns mounts and daemon sockets, /dev/pts, /dev/shm) is a fresh tmpfs.
# Kernel command-line words KEY=value arrive here as environment: DK_PYTHON.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /dev/shm 2>/dev/null || { mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm; }
mkdir -p /dev/pts /run/lock && mount -t devpts devpts /dev/pts
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8

# Modules come from Debian's UML tree through a private -d root in tmpfs, so the
# host's /lib/modules is never written.
rel=$(uname -r)
mkdir -p /run/dk-modules/lib/modules && ln -s "/usr/lib/uml/modules/$rel" "/run/dk-modules/lib/modules/$rel"
# IPv6 starts off on every interface of the guest, those no lab plans included. Each
# lab's plan sets it per interface anyway, on every backend and kernel (underlay.Ipv6
# says why): on for a dual-stack lab, off for an IPv4 one.
modprobe -d /run/dk-modules ipv6 disable_ipv6=1 || echo "dmvpnkit-init: modprobe ipv6 failed" >&2
modprobe -d /run/dk-modules -a veth ip_gre esp4 xfrm_user af_key nfnetlink_log xt_NFLOG \
    nf_nat iptable_nat iptable_filter xt_MASQUERADE xt_hashlimit xt_conntrack sch_netem ip6table_filter \
    || echo "dmvpnkit-init: modprobe failed" >&2
# The kernel loads what it finds missing (ESP's gcm(aes), authenc, ...) on demand by
# calling /proc/sys/kernel/modprobe: point that at the same private tree.
printf '#!/bin/sh\nexec /sbin/modprobe -d /run/dk-modules "$@"\n' > /run/dk-modules/modprobe
chmod 755 /run/dk-modules/modprobe && echo /run/dk-modules/modprobe > /proc/sys/kernel/modprobe
ip link set lo up
# UML's hostname is "(none)", which FRR prints into its running config and then cannot
# read back (frr-reload.py, `lab reload`): give the lab kernel a valid one.
hostname dmvpnkit-lab

"$DK_PYTHON" -m dmvpnkit.labs.agent /dev/tty1
echo "dmvpnkit-init: agent exited with $?"
poweroff -f
