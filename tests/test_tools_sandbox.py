"""The Python sandbox: each escape or runaway is stopped or refused, and the
session's next call still works with its earlier state."""

import socket
import threading
from pathlib import Path

import pytest

from autoact.tools.sandbox import PythonSandbox, SandboxLimits, run_python, strip_code_fences

LIMITS = SandboxLimits(cpu_s=2, wall_s=6, memory_mb=512, file_mb=1)


@pytest.fixture
def session():
    sandbox = PythonSandbox(LIMITS)
    first = sandbox.run("total = 40\ndef add(x):\n    return total + x")
    assert first.ok, first.observation()
    return sandbox


def still_works(sandbox: PythonSandbox) -> None:
    after = sandbox.run("add(2)")
    assert after.ok and after.value == "42", after.observation()


def test_stdout_value_and_traceback():
    result = run_python("print('hi')\n6 * 7", limits=LIMITS)
    assert result.status == "ok" and result.stdout.strip() == "hi" and result.value == "42"
    assert result.observation() == "hi\nOut: 42"
    error = run_python("def f():\n    return 1 / 0\nf()", limits=LIMITS)
    assert error.status == "error"
    assert "ZeroDivisionError" in error.error and 'File "<cell-1>", line 2, in f' in error.error
    assert "sandbox_child" not in error.error  # only the agent's own frames are shown


def test_all_layers_are_active():
    layers = run_python("1", limits=LIMITS).layers
    assert layers["rlimits"] and layers["audit"] and layers["seccomp"]


def test_infinite_loop_is_stopped_by_the_cpu_limit(session):
    result = session.run("while True:\n    pass")
    assert result.status == "cpu-limit" and "CPU time" in result.error
    still_works(session)


def test_sleeping_code_is_stopped_by_the_wall_clock():
    result = run_python("import time\ntime.sleep(60)", limits=SandboxLimits(cpu_s=2, wall_s=1.5))
    assert result.status == "timeout" and "longer than 1.5 s" in result.error


def test_memory_hog_gets_memory_error(session):
    result = session.run("hog = bytearray(2 * 1024 ** 3)")
    assert result.status == "error" and "MemoryError" in result.error
    still_works(session)


def test_fork_and_subprocess_are_refused(session):
    for code in ("import os\nos.fork()", "import subprocess\nsubprocess.run(['true'])", "import os\nos.system('true')"):
        result = session.run(code)
        assert result.status == "error" and "PermissionError" in result.error, code
    still_works(session)


def test_write_outside_the_temp_dir_is_refused(session, tmp_path):
    target = tmp_path / "escaped.txt"
    result = session.run(f"open({str(target)!r}, 'w').write('x')")
    # the audit hook refuses it; in the isolated view the folder does not even exist
    assert result.status == "error" and ("PermissionError" in result.error or "FileNotFoundError" in result.error)
    assert not target.exists()
    inside = session.run("open('notes.txt', 'w').write('ok')\nopen('notes.txt').read()")
    assert inside.ok and inside.value == "'ok'"
    still_works(session)


def test_file_size_limit():
    result = run_python("open('big.bin', 'wb').write(b'x' * (4 * 1024 * 1024))", limits=LIMITS)
    assert result.status == "error" and "File too large" in result.error  # RLIMIT_FSIZE: 1 MB here


@pytest.fixture
def listener():
    """A local TCP server that records whether anyone connected."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    seen = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                seen.append(conn)
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_network_connection_is_refused(session, listener):
    port, seen = listener
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
    result = session.run(code)
    assert result.status == "error" and ("PermissionError" in result.error or "OSError" in result.error)
    assert seen == []
    still_works(session)


@pytest.mark.parametrize("layer", ["seccomp", "netns"])
def test_network_refused_by_each_kernel_layer_alone(listener, layer):
    """With the audit hook off, the kernel layers still refuse (they hold as root)."""
    port, seen = listener
    only = {"audit": False, "seccomp": layer == "seccomp", "netns": layer == "netns"}
    result = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
                        limits=LIMITS, layers=only)
    if not result.layers.get(layer):
        pytest.skip(f"the kernel does not allow the {layer} layer here")
    assert result.status == "error" and seen == []


def test_fork_refused_by_seccomp_alone():
    result = run_python("import os\nos.fork()", limits=LIMITS, layers={"audit": False, "netns": False})
    if not result.layers.get("seccomp"):
        pytest.skip("seccomp is not available here")
    assert result.status == "error" and "Operation not permitted" in result.error
    threads = run_python("import threading\nt = threading.Thread(target=print)\nt.start(); t.join()\n'ok'",
                         limits=LIMITS, layers={"audit": False, "netns": False})
    assert threads.ok, threads.observation()  # threads are still allowed


def test_ctypes_is_refused():
    result = run_python("import ctypes\nctypes.CDLL(None).fork()", limits=LIMITS)
    assert result.status == "error" and "PermissionError" in result.error


def test_state_persists_and_snapshots(session):
    session.run("total = total + 1")
    assert session.run("total").value == "41"
    state = session.get_state()
    fresh = PythonSandbox(LIMITS)
    fresh.set_state(state)
    assert fresh.run("add(1)").value == "42"
    before = len(fresh.cells)
    failed = fresh.run("undefined_name")
    assert "NameError" in failed.error and len(fresh.cells) == before  # failed cells are not replayed


def test_replay_hides_earlier_output():
    sandbox = PythonSandbox(LIMITS)
    sandbox.run("print('first')")
    assert sandbox.run("print('second')").stdout.strip() == "second"


def test_output_is_bounded():
    result = run_python("print('x' * 100000)", limits=SandboxLimits(max_output=100))
    assert len(result.stdout) < 200 and "more characters" in result.stdout


def test_code_fences_are_stripped():
    assert strip_code_fences("```python\nprint(1)\n```") == "print(1)"
    assert strip_code_fences("print(1)") == "print(1)"


def test_child_environment_has_no_parent_secrets(monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN_FOR_TEST", "leak")
    result = run_python("import os\n'SECRET_TOKEN_FOR_TEST' in os.environ", limits=LIMITS)
    assert result.value == "False"


def test_weak_mode_removes_its_temp_dir_and_says_it_is_weak():
    result = run_python("import os\nos.getcwd()", limits=LIMITS, isolation="process")
    assert result.ok and not Path(result.value.strip("'")).exists()
    assert "weak 'process' mode" in result.observation()
    isolated = run_python("import os\nos.getcwd()", limits=LIMITS)
    assert isolated.value == "'/sandbox'" and "weak" not in isolated.observation()


def test_a_run_offering_python_is_refused_where_the_sandbox_cannot_isolate(monkeypatch):
    from autoact.graph.environment import Backend, TaskSetupError
    from autoact.graph.context import BaseContext
    from autoact.tools import load_task
    from autoact.tools.sandbox import sandbox_support

    backend, task = Backend(), load_task("demo")
    monkeypatch.setenv("AUTOACT_BWRAP", "/nonexistent/bwrap")
    sandbox_support.cache_clear()
    try:
        with pytest.raises(TaskSetupError, match="Python tool is offered.*AUTOACT_SANDBOX=process"):
            backend.tools(task, BaseContext(task="demo", tools=["Retrieve", "Python"]))
        assert [t["name"] for t in backend.tools(task, BaseContext(task="demo", tools=["Retrieve"]))] == ["Retrieve"]
        monkeypatch.setenv("AUTOACT_SANDBOX", "process")  # the explicit opt-in
        assert len(backend.tools(task, BaseContext(task="demo", tools=["Retrieve", "Python"]))) == 2
    finally:
        monkeypatch.delenv("AUTOACT_BWRAP")
        sandbox_support.cache_clear()


def test_files_in_the_work_folder_can_be_created_renamed_and_removed():
    code = (
        "import os, tempfile, shutil\n"
        "os.mkdir('d'); open('d/a.txt', 'w').write('x'); os.rename('d/a.txt', 'd/b.txt')\n"
        "with tempfile.NamedTemporaryFile() as f:\n    f.write(b'x')\n"
        "os.remove('d/b.txt'); shutil.rmtree('d'); open('/tmp/t', 'w').write('t'); os.unlink('/tmp/t')\n"
        "sorted(os.listdir('.'))"
    )
    result = run_python(code, limits=LIMITS)
    assert result.ok and result.value == "[]", result.observation()


def test_an_interpreter_under_tmp_is_still_visible_in_the_sandbox(tmp_path):
    """The sandbox's private /tmp must not hide an environment (or a clone of the
    project) that lives under the host's /tmp: CI clones there."""
    import site
    import subprocess
    import sys

    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    ours = next(p for p in site.getsitepackages() if p.startswith(sys.prefix))
    theirs = next((env_dir / "lib").glob("python3*/site-packages"))
    (theirs / "autoact_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    code = "from autoact.tools.sandbox import run_python; r = run_python('import sys\\nsys.prefix'); print(r.status, r.value)"
    out = subprocess.run([str(env_dir / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok", repr(str(env_dir))], out.stdout + out.stderr[-1000:]
