"""Running one untrusted command in a bubblewrap sandbox, with limits and a hard deadline.

:func:`run` starts ``bwrap`` with every namespace unshared (no network, a private pid namespace
whose ``/proc`` shows only the sandbox, its own user namespace with uid/gid 65534 inside), a
cleared environment, read-only views of the interpreter, the venv, the data pack, system
libraries and the folders the caller names, a private size-limited tmpfs for ``/tmp`` and
``HOME``, and exactly one writable host folder. ``prlimit`` inside caps file size, open files,
processes, memory and CPU time. At the deadline the grader kills ``bwrap``; the sandbox's pid 1
dies with it (``--die-with-parent``) and the kernel takes every process of the namespace with it.
Output goes to a file in the writable folder (capped by the file-size limit), never to a pipe.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import WorkbookError

FILE_LIMIT = 64 << 20  # bytes per file written inside (executed notebook, answers, the log)
MEMORY_LIMIT = 12 << 30  # address space per process (TensorFlow reserves a few GiB of it)
TMPFS_LIMIT = 512 << 20  # /tmp and HOME together
OPEN_FILES = 1024
EXTRA_TASKS = 1024  # threads/processes the sandbox may add to its host user's count
GROUP_TASKS = 2048  # threads and processes of one whole sandbox (cgroup pids.max)
GROUP_MEMORY = 8 << 30  # memory of one whole sandbox, tmpfs pages included (cgroup memory limit)
DISK_LIMIT = 2 << 30  # bytes on disk in the writable folder, all files together (checked every second)
DISK_ENTRIES = 100_000  # files and folders in it: more counts as over the disk limit
CGROUPS = Path("/sys/fs/cgroup")
SYSTEM_READ = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/fonts", "/etc/localtime")
HOME = "/home/student"
INSTALL_HINT = "apt-get install bubblewrap (Debian/Ubuntu), dnf install bubblewrap (Fedora), or grade with --no-sandbox"


@dataclass
class Outcome:
    """How a sandboxed command ended: its exit status (None when killed at the deadline), the
    seconds it ran and the tail of what it printed."""

    returncode: int | None
    seconds: float
    tail: str
    limits: list[str] = field(default_factory=list)  # the cgroup limits that held (empty: none)
    stopped: str = ""  # why it was killed before the deadline (the disk limit), or empty

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def unavailable() -> str | None:
    """Why no sandbox can run here (one line), or None when bubblewrap works."""
    if shutil.which("bwrap") is None or shutil.which("prlimit") is None:
        return f"no bubblewrap sandbox (bwrap and prlimit are needed): {INSTALL_HINT}"
    probe = subprocess.run(
        ["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--ro-bind", "/", "/", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"bubblewrap cannot create user namespaces here ({reason[:120]}); {INSTALL_HINT}"
    return None


def _tasks_of_this_user() -> int:
    """Threads of this process's real uid now (``RLIMIT_NPROC`` counts them all)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


# seccomp: fallocate allocates 64 MB (the file-size limit) in a millisecond, so one second between
# two disk measurements could fill the host's disk; io_uring could do it without the syscall.
# Refused inside the sandbox: fallocate with EOPNOTSUPP (glibc's posix_fallocate then writes the
# zeros, at the disk's speed), io_uring_setup with ENOSYS. Per architecture: (AUDIT_ARCH, numbers).
SECCOMP_REFUSED = {
    "x86_64": (0xC000003E, {285: 95, 285 | 0x40000000: 95, 425: 38, 425 | 0x40000000: 38}),  # and x32
    "i386": (0x40000003, {324: 95, 425: 38}),  # 32-bit programs on an x86_64 kernel
    "aarch64": (0xC00000B7, {47: 95, 425: 38}),
}
SECCOMP_FD = 9  # the descriptor bwrap reads the filter from (`--seccomp`)


def seccomp_filter() -> bytes:
    """The classic-BPF seccomp program bwrap installs (``--seccomp``): :data:`SECCOMP_REFUSED`
    answered with their errno, every other call allowed."""
    import struct

    load, jump_eq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, errno = 0x7FFF0000, 0x00050000
    code: list[tuple[int, int, int, int]] = [(load, 0, 0, 4)]  # the architecture
    for arch, refused in SECCOMP_REFUSED.values():
        code.append((jump_eq, 0, 2 * len(refused) + 2, arch))  # not this one: skip its block
        code.append((load, 0, 0, 0))  # the call's number
        for number, error in refused.items():
            code += [(jump_eq, 0, 1, number), (ret, 0, 0, errno | error)]
        code.append((ret, 0, 0, allow))
    code.append((ret, 0, 0, allow))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in code)


def command_line(
    argv: list[str],
    *,
    writable: Path,
    read_only: list[tuple[Path, Path]],
    env: dict[str, str],
    cwd: Path,
    cpu_seconds: int,
) -> list[str]:
    """The ``bwrap ... prlimit ... argv`` command (see the module docstring); ``read_only`` is a list
    of ``(host path, path inside)``, bound in order (a later bind can cover part of an earlier one).
    Writes the seccomp filter (:func:`seccomp_filter`) beside ``writable``, where a shell opens it
    for bwrap."""
    bwrap = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMPFS_LIMIT),
        "--tmpfs",
        "/tmp",
        "--size",
        str(TMPFS_LIMIT),
        "--tmpfs",
        "/home",
        "--dir",
        HOME,
    ]
    python_home = Path(sys.base_prefix)
    for path in (*SYSTEM_READ, str(python_home)):
        if os.path.exists(path):
            bwrap += ["--ro-bind", path, path]
    for host, inside in read_only:
        bwrap += ["--ro-bind", str(host), str(inside)]
    bwrap += ["--bind", str(writable), str(writable)]
    for name, value in {"HOME": HOME, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env}.items():
        bwrap += ["--setenv", name, value]
    limits = [
        "prlimit",
        f"--fsize={FILE_LIMIT}",
        f"--nofile={OPEN_FILES}",
        f"--as={MEMORY_LIMIT}",
        f"--cpu={cpu_seconds}",
        f"--nproc={_tasks_of_this_user() + EXTRA_TASKS}",
        "--core=0",
        "--",
    ]
    bwrap += ["--remount-ro", "/"]  # the sandbox's own root (mount points) read-only too
    rules = writable.parent / f".seccomp-{writable.name}"  # outside the sandbox's view; removed with it
    rules.write_bytes(seccomp_filter())
    bwrap += ["--seccomp", str(SECCOMP_FD)]
    opened = f'exec "$@" {SECCOMP_FD}<"$0"'  # bwrap reads the filter from that descriptor
    return ["sh", "-c", opened, str(rules), *bwrap, "--chdir", str(cwd), "--", *limits, *argv]


def _own_group(controller: str) -> Path | None:
    """This process's cgroup folder for ``controller`` (cgroup v1: ``N:pids:/path``; v2: ``0::/path``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return CGROUPS / controller / path.lstrip("/")
    unified = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
    if unified is not None and (CGROUPS / "cgroup.controllers").is_file():
        return CGROUPS / unified.lstrip("/")
    return None


class Group:
    """A cgroup per sandbox capping its threads and processes and its memory as a whole, where this
    machine lets the grader make one (root, or a delegated cgroup); ``limits`` says what holds."""

    SETTINGS = {  # controller -> (file, value) for cgroup v1 and v2
        "pids": (("pids.max", str(GROUP_TASKS)), ("pids.max", str(GROUP_TASKS))),
        "memory": (("memory.limit_in_bytes", str(GROUP_MEMORY)), ("memory.max", str(GROUP_MEMORY))),
    }

    def __init__(self, name: str):
        self.folders: list[Path] = []
        self.limits: list[str] = []
        for controller, (v1, v2) in self.SETTINGS.items():
            parent = _own_group(controller)
            if parent is None:
                continue
            folder = parent / name
            unified = not (CGROUPS / controller).is_dir()
            setting, value = v2 if unified else v1
            try:
                folder.mkdir()
            except OSError:
                continue
            try:
                (folder / setting).write_text(value)
            except OSError:
                folder.rmdir()
                continue
            self.folders.append(folder)
            self.limits.append(f"{controller} {setting}={value}")

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` started by a shell that first moves itself into every folder of the group."""
        if not self.folders:
            return command
        join = 'for p in "$@"; do [ "$p" = -- ] && { shift; break; }; echo $$ > "$p"; shift; done; exec "$@"'
        return ["sh", "-c", join, "sh", *(str(f / "cgroup.procs") for f in self.folders), "--", *command]

    def remove(self) -> None:
        """Kill anything still in the group, then delete it."""
        for folder in reversed(self.folders):
            for _ in range(50):
                try:
                    pids = (folder / "cgroup.procs").read_text().split()
                    for pid in pids:
                        os.kill(int(pid), 9)
                    folder.rmdir()
                    break
                except (OSError, ValueError):
                    time.sleep(0.1)


# Set when the grader itself is being stopped (SIGTERM, Ctrl-C in its main thread): every run in a
# worker thread kills its sandbox within a second and returns, so the batch can end and clean up.
STOP = threading.Event()


def run(command: list[str], *, timeout: float, log: Path, watch: Path | None = None) -> Outcome:
    """Run a :func:`command_line` (or any command), its output into ``log``; kill it at ``timeout``
    seconds. Returns the :class:`Outcome` with the last 2,000 characters of the log, read through
    the handle opened here (the command may replace ``log`` by a link or a pipe: never followed).
    Where a cgroup can be made (:class:`Group`), the whole run is capped at :data:`GROUP_TASKS`
    threads and processes and :data:`GROUP_MEMORY` bytes of memory. Every second the folder
    ``watch`` (the writable one) is measured (:func:`disk_usage`): past :data:`DISK_LIMIT` the run
    is killed at once, with ``stopped`` saying why."""
    start = time.monotonic()
    group = Group(f"workbook-grading-{os.getpid()}-{time.monotonic_ns()}")
    try:
        with open(log, "w+b") as handle:
            try:
                child = subprocess.Popen(
                    group.wrap(command), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT
                )
            except OSError as error:
                raise WorkbookError(f"cannot start the grading sandbox: {error}") from None
            returncode: int | None = None
            stopped = ""
            try:
                while (left := start + timeout - time.monotonic()) > 0:
                    try:
                        returncode = child.wait(timeout=min(1.0, left))
                        break
                    except subprocess.TimeoutExpired:
                        if STOP.is_set():
                            stopped = "stopped: the grader was stopped"
                            break
                        if watch is not None and disk_usage(watch) > DISK_LIMIT:
                            stopped = f"stopped: more than {DISK_LIMIT >> 20} MB (or {DISK_ENTRIES:,} files) written"
                            break
            finally:  # past the deadline, over the disk limit, or the grader itself stopped (SIGTERM)
                if returncode is None:
                    child.kill()  # bwrap: its pid namespace (the kernel and every process in it) dies with it
                    child.wait(timeout=30)
            return Outcome(returncode, time.monotonic() - start, tail(handle), group.limits, stopped)
    finally:
        group.remove()


def disk_usage(folder: Path) -> int:
    """Bytes allocated on disk under ``folder`` (links counted as links, never followed); more than
    :data:`DISK_ENTRIES` files and folders count as more than :data:`DISK_LIMIT`, and so does a
    folder the grader may not list (the sandbox's user is the grader's: a submission can take the
    read bit off a folder of its own to hide what it writes there)."""
    total, seen, todo = 0, 0, [str(folder)]
    while todo:
        try:
            with os.scandir(todo.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > DISK_ENTRIES:
                        return DISK_LIMIT + 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        todo.append(entry.path)
        except PermissionError:
            return DISK_LIMIT + 1
        except OSError:  # removed while it was measured
            continue
    return total


def tail(handle, size: int = 2000) -> str:
    """The last ``size`` bytes of an open binary file, as text."""
    end = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, end - size))
    return handle.read(size).decode("utf-8", "replace")


def read_regular(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of ``path`` when it is a regular file; ``None`` for anything else.

    For reading, on the host, what a sandboxed command left in its folder: a symbolic link (to a
    host secret, ``/dev/zero``), a named pipe or a device is never followed, opened or waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def printable(text: str) -> str:
    """``text`` with control characters (newlines, escape sequences) shown as escapes: text from a
    submission cannot redraw the grader's terminal or fake report lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def remove_tree(path: Path) -> None:
    """Delete a folder however deep or odd its content (``rm -rf`` walks without recursion limits),
    folders the grader may not list or change included (their owner's bits are put back first:
    the sandbox's user is the grader's, so a submission can take them off); never raises. Call it
    once nothing writes there any more (the sandbox is gone)."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False, "timeout": 300}
    try:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], **quiet)
        if os.path.lexists(path):  # chmod -R never follows a link below the folder named
            subprocess.run(["chmod", "-R", "u+rwx", "--", str(path)], **quiet)
            subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], **quiet)
    except (OSError, subprocess.SubprocessError):
        pass
