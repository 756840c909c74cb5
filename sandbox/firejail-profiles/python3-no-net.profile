# rljudge: the jail of one code submission (Python, no network, empty read-only filesystem view).
#
# Run by rljudge_sandbox.jail.start() exactly as:
#
#   env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
#   firejail --quiet --profile=<rljudge_sandbox>/firejail-profiles/python3-no-net.profile \
#       --blacklist=/<entry>...   (every top-level entry except bin dev etc lib lib32 lib64 libx32
#                                  proc run sbin tmp usr, and every entry of /run except firejail)
#       /usr/bin/python3 -I -S -c "<jail.BOOTSTRAP: read N bytes of stdin, exec them>" rljudge-jail-<marker>
#
# The harness source (N bytes) and then its JSON frames arrive on stdin. A jail serves the
# submissions of one scope (a batch) one after another, each from a fresh fork of the harness loop.
#
# from cwd /, in a new session, with PR_SET_PDEATHSIG=SIGKILL; firejail runs as root (the worker's
# uid). The harness keeps CAP_SETUID/SETGID/KILL only to drop each test's child to an unused uid
# (2000000 + the worker thread's id) with no capabilities, and to kill it. Per-test rlimits (CPU,
# address space, processes, open files, file size, core) are set by the harness, not here.
#
# Not used: noroot (firejail refuses it when started by root), shell none (the default, deprecated in 0.9.72),
# the --timeout option (adds ~2 s; Pebble and the harness bound time instead), private-bin /
# private-lib (copying the interpreter costs more than the jail itself).
# Each option below was checked on firejail 0.9.72 (tests/sandbox/test_adversarial.py).

# ---- filesystem: an empty, read-only view
disable-mnt
private
private-cwd
private-dev
private-etc ld.so.cache,localtime
private-tmp
read-only /
read-only /dev/shm
read-only /tmp
read-write /run

# ---- network: none
net none
protocol inet

# ---- privileges and kernel surface
caps.keep kill,setgid,setuid
dbus-system none
dbus-user none
ipc-namespace
machine-id
memory-deny-write-execute
no3d
nodvd
nogroups
noinput
nonewprivs
noprinters
nosound
nou2f
novideo
restrict-namespaces
# firejail's default syscall blacklist, plus the IPC objects that outlive the process that made
# them (SysV shared memory, message queues, semaphores; POSIX message queues): a warm jail's next
# submission must not find them (tests/sandbox/test_jail_reuse.py)
seccomp mq_open,msgget,semget,shmget
seccomp.block-secondary
x11 none
