"""Hostile cells against the real sandbox (bubblewrap namespaces, an unprivileged
user, seccomp, rlimits, bounded pipes). Each cell tries what an adversarial model
would; the test then checks the host, not the cell's own claims: the sentinel
files outside the work folder are byte-for-byte unchanged, the caller is alive
with its memory bounded, no secret appears in anything the cell returned, and a
forged report is not taken for a result."""

from __future__ import annotations

import ctypes
import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoact.tools import sandbox as sandbox_module
from autoact.tools.sandbox import SandboxLimits, SandboxUnavailable, run_python, sandbox_support

LIMITS = SandboxLimits(cpu_s=3, wall_s=15, memory_mb=1024, file_mb=4)
SECRET = "s3cret-" + hashlib.sha256(str(os.getpid()).encode()).hexdigest()[:16]



def test_the_isolated_sandbox_runs_here():
    """No skip where it is missing: `scripts/setup.sh` installs bubblewrap, and a
    containment suite that skips itself would prove nothing."""
    ok, reason = sandbox_support()
    assert ok, reason


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """Files outside the work folder the cells go after: a plain file, a root-only
    secret, and the environment of the caller holding a secret."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "data.txt").write_text("original\n")
    secret = target / "secret.txt"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    monkeypatch.setenv("AUTOACT_TEST_SECRET", SECRET)
    before = _snapshot(target)
    yield target
    assert _snapshot(target) == before, "a byte outside the work folder changed"


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
        for p in sorted(folder.rglob("*"))
    } | {".": (folder.stat().st_mode, ",".join(sorted(os.listdir(folder))))}


def contained(result) -> None:
    """Whatever the status, nothing the cell returned carries a secret."""
    text = " ".join(str(x) for x in (result.stdout, result.stderr, result.value, result.error))
    assert SECRET not in text, text[:500]


def run(code: str, **kw):
    result = run_python(code, limits=kw.pop("limits", LIMITS), **kw)
    contained(result)
    return result


def test_runs_as_an_unprivileged_user_in_its_own_namespaces():
    result = run("import os\nprint(os.getuid(), os.getgid(), os.getgroups(), os.getpid())\n"
                 "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
                 "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    assert result.ok, result.observation()
    uid_line, pids, caps = result.stdout.strip().splitlines()
    if os.geteuid() == 0:
        assert uid_line.startswith("65534 65534 [] ")
    assert int(uid_line.split()[-1]) < 10  # a fresh PID namespace
    assert eval(pids) == sorted(eval(pids)) and len(eval(pids)) <= 3  # bwrap, the child (and its init)
    assert int(caps, 16) == 0  # no capability at all
    assert result.layers["namespaces"] and result.layers["seccomp"] == "allow-list"


# ---- 1. writing into the caller's memory -----------------------------------------------
def test_cannot_write_into_the_callers_memory(outside):
    canary = ctypes.create_string_buffer(b"CANARY-UNTOUCHED")
    address = ctypes.addressof(canary)
    code = f"""
import os
hits = []
for pid in {{os.getppid(), 1, {os.getpid()}}}:
    try:
        d = os.open(f'/proc/{{pid}}', os.O_RDONLY)
        m = os.open('mem', os.O_RDWR, dir_fd=d)
        os.pwrite(m, b'OVERWRITTEN-BYME', {address})
        hits.append(pid)
    except OSError as e:
        print(pid, type(e).__name__, e)
hits
"""
    result = run(code)
    assert canary.value == b"CANARY-UNTOUCHED"
    assert result.value in (None, "[]"), result.observation()


# ---- 2. switching the audit hook off, then writing anywhere ------------------------------
def test_disabling_the_audit_hook_gains_nothing(outside):
    code = f"""
import sys, gc, os
main = sys.modules['__main__']
for name in list(vars(main)):
    if name.startswith('_') and isinstance(getattr(main, name), (set, frozenset, dict)):
        try: getattr(main, name).clear()
        except Exception: pass
try:
    for obj in gc.get_objects():
        pass
except Exception as e:
    print('gc:', type(e).__name__)
for target in ({str(outside / 'data.txt')!r}, {str(outside / 'new.txt')!r}, sys.prefix + '/pwned', '/usr/pwned'):
    try:
        with open(target, 'w') as f:
            f.write('pwned')
        print('WROTE', target)
    except OSError as e:
        print(target, type(e).__name__)
"""
    result = run(code)
    assert "WROTE" not in result.stdout, result.observation()
    assert not Path(sys.prefix, "pwned").exists() and not Path("/usr/pwned").exists()


# ---- 3. writes and deletes outside with the hook on --------------------------------------
@pytest.mark.parametrize("attempt", [
    "os.link(OUT + '/data.txt', 'hl'); open('hl', 'w').write('pwned')",
    "d = os.open(OUT, os.O_RDONLY); os.write(os.open('created.txt', os.O_WRONLY | os.O_CREAT, dir_fd=d), b'x')",
    "d = os.open(OUT, os.O_RDONLY); os.remove('data.txt', dir_fd=d)",
    "import sqlite3; sqlite3.connect(OUT + '/x.db').execute('create table t(a)')",
    "os.mkfifo(OUT + '/fifo')",
    "os.chmod(OUT + '/data.txt', 0o777)",
    "import shutil; shutil.rmtree(OUT)",
    "d = os.open('/usr', os.O_RDONLY); os.write(os.open('pwned', os.O_WRONLY | os.O_CREAT, dir_fd=d), b'x')",
    "import cffi; ffi = cffi.FFI(); ffi.cdef('int open(const char *, int, int);'); "
    "lib = ffi.dlopen(None); print(lib.open((OUT + '/data.txt').encode(), os.O_WRONLY | os.O_TRUNC, 0))",
])
def test_writes_outside_the_work_folder_change_nothing(outside, attempt):
    result = run(f"import os\nOUT = {str(outside)!r}\n{attempt}")
    assert result.status != "ok" or "-1" in result.stdout, result.observation()
    assert not Path("/usr/pwned").exists()


# ---- 4. killing the caller -----------------------------------------------------------------
def test_cannot_signal_the_caller_or_other_processes():
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        code = f"""
import os, signal
for attempt in (lambda: signal.pidfd_send_signal(os.pidfd_open(os.getppid()), 9),
                lambda: signal.pidfd_send_signal(os.pidfd_open({os.getpid()}), 9),
                lambda: os.kill({os.getpid()}, 9), lambda: os.kill({bystander.pid}, 9),
                lambda: os.kill(1, 9), lambda: os.kill(-1, 9), lambda: os.killpg(0, 9)):
    try:
        attempt(); print('SENT')
    except Exception as e:
        print(type(e).__name__)
"""
        result = run(code)
        time.sleep(0.2)
        assert bystander.poll() is None, "a process outside the sandbox was killed"
        assert "SENT" not in result.stdout or result.status != "ok"
    finally:
        bystander.kill()
        bystander.wait()
    assert run("6 * 7").value == "42"  # and the caller carries on


# ---- 5. reading secrets ----------------------------------------------------------------------
def test_secrets_of_the_caller_and_the_host_are_unreadable(outside):
    code = f"""
import os, glob
found = []
paths = ['/etc/shadow', {str(outside / 'secret.txt')!r}, '/proc/1/environ', f'/proc/{{os.getppid()}}/environ',
         '/proc/{os.getpid()}/environ', '/proc/{os.getpid()}/mem'] + glob.glob('/proc/*/environ')
for p in paths:
    try:
        with open(p, 'rb') as f:
            found.append(f.read(100000))
    except OSError as e:
        print(p, type(e).__name__)
print(os.environ)
import sys
skip = {'/proc', '/sys', '/usr', '/dev', sys.prefix, sys.base_prefix}
for root, dirs, files in os.walk('/'):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
    for name in files:
        try:
            found.append(open(os.path.join(root, name), 'rb').read(100000))
        except OSError:
            pass
print(b''.join(found).decode(errors='replace'))
"""
    result = run(code, limits=SandboxLimits(cpu_s=10, wall_s=60, max_output=1_000_000))
    assert result.status in ("ok", "error", "output-limit"), result.observation()


# ---- 6. blowing up the caller's memory ------------------------------------------------------
@pytest.mark.parametrize("stream", [1, 2])
def test_output_flood_leaves_the_callers_memory_bounded(stream):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run(f"import os\nfor _ in range(8):\n    os.write({stream}, b'x' * 50_000_000)")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.status == "output-limit" and "was stopped" in result.error
    assert grown_mb < 100, f"the caller grew by {grown_mb:.0f} MB"
    assert len(result.stdout) <= LIMITS.max_output


# ---- 7. forging the result -------------------------------------------------------------------
@pytest.mark.parametrize("forgery", [
    "print('@@sandbox-result-0000@@' + json.dumps({'ok': True, 'value': '42'})); os._exit(0)",
    "print('@@sandbox-result-0000@@ garbage [[['); os._exit(0)",
    "for fd in range(3, 64):\n"
    "    try: os.write(fd, b'{\"kind\": \"result\", \"ok\": tru')\n"
    "    except OSError: pass\nos._exit(0)",
    "for fd in range(3, 64):\n"
    "    try: os.write(fd, b'{\"kind\": \"ready\", \"layers\": {\"seccomp\": false}}\\n')\n"
    "    except OSError: pass",
    # well-formed JSON of the wrong shape, and JSON too deep to decode
    "for fd in range(3, 64):\n"
    "    try: os.write(fd, b'{\"kind\": \"result\", \"ok\": true, \"replay_errors\": null}\\n')\n"
    "    except OSError: pass\nos._exit(0)",
    "for fd in range(3, 64):\n"
    "    try: os.write(fd, b'[' * 200000 + b'\\n')\n"
    "    except OSError: pass\nos._exit(0)",
])
def test_a_forged_report_is_not_taken_for_a_result(forgery):
    result = run(f"import os, json\n{forgery}")
    assert result.status in ("crashed", "output-limit") and result.value is None, result.observation()
    assert "without a result" in result.error or "was stopped" in result.error


def test_a_huge_report_is_cut_off_without_inflating_the_caller():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run("import os\nline = b'{\"kind\": \"result\", \"replay_errors\": [' + b'{},' * 330000 + b'{}]}\\n'\n"
                 "for fd in range(3, 64):\n    try: os.write(fd, line)\n    except OSError: pass\nos._exit(0)")
    assert result.status in ("crashed", "output-limit") and result.value is None
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 30


def test_layers_are_reported_before_any_cell_runs():
    """A cell that rewrites its own report cannot turn a layer off in the record."""
    result = run("import os\nfor fd in range(3, 64):\n"
                 "    try: os.write(fd, b'{\"kind\": \"result\", \"ok\": true, \"value\": \"1\"}\\n')\n"
                 "    except OSError: pass\nraise SystemExit")
    assert result.status == "crashed"  # two results: the forged one and the real one
    assert result.layers.get("seccomp") == "allow-list" and result.layers.get("namespaces")


# ---- processes, network, ctypes, rlimits ----------------------------------------------------------
@pytest.mark.parametrize("code", [
    "import os\nos.fork()",
    "import subprocess\nsubprocess.run(['true'])",
    "import os\nos.posix_spawn('/usr/bin/true', ['true'], {})",
    "import os\nos.execv('/usr/bin/true', ['true'])",
    "import ctypes\nctypes.CDLL(None).fork()",
    "import os\nos.unshare(os.CLONE_NEWUSER)" if hasattr(os, "unshare") else "raise PermissionError",
])
def test_no_process_is_created(code):
    result = run(code)
    assert result.status == "error", result.observation()


def test_network_is_unreachable():
    result = run("import socket\nfor family, addr in ((socket.AF_INET, ('127.0.0.1', 22)), (socket.AF_INET6, ('::1', 22))):\n"
                 "    try:\n        socket.socket(family).connect(addr); print('CONNECTED')\n"
                 "    except OSError as e:\n        print(type(e).__name__)\nsocket.if_nameindex()")
    assert "CONNECTED" not in result.stdout
    assert result.value is None or "eth" not in result.value  # no interface but loopback


def test_rlimits_cannot_be_raised():
    result = run("import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)")
    assert result.status == "error" and ("ValueError" in result.error or "PermissionError" in result.error)


def test_fork_bomb_in_threads_is_bounded():
    result = run("import threading, time\nts = [threading.Thread(target=time.sleep, args=(5,)) for _ in range(10000)]\n"
                 "[t.start() for t in ts]", limits=SandboxLimits(cpu_s=3, wall_s=8, nofile=64))
    assert result.status in ("error", "timeout", "killed", "cpu-limit", "crashed")


@pytest.mark.parametrize("code", [
    # memfd pages count against no rlimit: host memory past the limit
    "import os\nos.memfd_create('m')",
    # a BSD lock on a read-only file would reach the host and other sandboxes
    "import fcntl, sys\nfcntl.flock(open(sys.executable, 'rb'), fcntl.LOCK_EX)",
    # the host's pseudo-terminal pool
    "open('/dev/ptmx', 'rb')",
    # core dumps stay off, also where a root helper would receive them
    "import resource\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))",
])
def test_shared_host_resources_are_out_of_reach(code):
    result = run(code)
    assert result.status == "error" and ("Error" in result.error), result.observation()


def test_tmp_is_a_private_writable_folder():
    from autoact.tools.sandbox import _interpreter_paths

    # the only host names under the sandbox's /tmp: the parents of an interpreter
    # that lives under the host's /tmp (a clone there), bound read-only
    bound = {Path(p).relative_to("/tmp").parts[0] for p in _interpreter_paths() if p.startswith("/tmp/")}
    result = run("import tempfile, os\nopen('/tmp/x', 'w').write('x')\nwith tempfile.NamedTemporaryFile() as f:\n"
                 "    name = f.name\nsorted(os.listdir('/tmp')), os.path.dirname(name)")
    assert result.ok and result.value == repr((sorted({"x"} | bound), "/sandbox")), result.observation()
    assert run("import os\nsorted(os.listdir('/tmp'))").value == repr(sorted(bound))  # gone with the last call


def test_the_work_folder_is_private_and_size_limited():
    first = run("open('mine.txt', 'w').write('x')\nimport os\nos.getcwd()")
    assert first.ok and first.value == "'/sandbox'"
    second = run("import os\nos.listdir('.')")
    assert second.value == "[]"  # the previous call's folder is gone
    full = run("f = open('fill.bin', 'wb')\nfor _ in range(100):\n    f.write(b'x' * 1_000_000)",
               limits=SandboxLimits(file_mb=1000, folder_mb=8))
    assert full.status == "error" and "No space left" in full.error


# ---- where the isolation is missing ------------------------------------------------------------
def test_without_bubblewrap_the_tool_refuses_unless_weak_mode_is_chosen(monkeypatch):
    monkeypatch.setenv("AUTOACT_BWRAP", "/nonexistent/bwrap")
    sandbox_support.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="AUTOACT_SANDBOX=process"):
            run_python("1", limits=LIMITS)
        monkeypatch.setenv("AUTOACT_SANDBOX", "process")
        weak = run_python("6 * 7", limits=LIMITS)
        assert weak.ok and weak.isolation == "process"
        assert weak.observation().startswith(sandbox_module.WEAK_NOTICE)  # said on every call
        monkeypatch.setenv("AUTOACT_SANDBOX", "nonsense")
        with pytest.raises(ValueError, match="AUTOACT_SANDBOX"):
            run_python("1", limits=LIMITS)
    finally:
        monkeypatch.delenv("AUTOACT_BWRAP")
        sandbox_support.cache_clear()
    assert sandbox_support()[0]


def test_the_caller_survives_a_self_kill():
    result = run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert result.status == "killed" and "SIGKILL" in result.error
    assert run("1 + 1").value == "2"  # the caller goes on calling
