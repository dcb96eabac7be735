"""Hostile submissions, built from the student edition as a student would, graded in the sandbox.

Each attack that could succeed turns its success into points: when it reads a solution, a hidden
test or a secret, writes outside its scratch folder or reaches the network, it computes the right
answer by hand (the workbook's own ``ranking.softmax`` would be refused), so a score of 0 shows
that every attempt failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from helpers import bottlenecks, data, grader, homework, judge, sandbox, tflite
from helpers.paths import BUILD_ENV, NOTEBOOKS, REPO


@pytest.fixture(autouse=True)
def bubblewrap():
    """A clear failure, never a skip, without bubblewrap (`make test` installs it: `make sandbox`)."""
    if reason := sandbox.unavailable():
        pytest.fail(reason)


NOTEBOOK = "01_classify.ipynb"
SOLVE = (
    "probabilities = np.exp(logits - logits.max()); probabilities /= probabilities.sum(); "
    "top5_indices = np.argsort(-probabilities)[:5]\n"
)
WRONG = "probabilities = np.zeros(len(logits)); top5_indices = list(range(5))\n"


def submission(folder, name: str, code: str, notebook: str = NOTEBOOK):
    """The student edition of ``notebook`` with ``code`` as its (first) exercise cell."""
    source = NOTEBOOKS / notebook
    nb = homework.student_edition(json.loads(source.read_text()), notebook, homework.fingerprint(source))
    cell = next(c for c in nb["cells"] if homework.EXERCISE_TAG in c["metadata"].get("tags", []))
    cell["source"] = code
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(nb))
    return path


def leak_or_wrong(attempts: str) -> str:
    """Code that runs ``attempts`` (each sets ``leaked`` to True when it worked), then solves the
    exercise only if something leaked."""
    return (
        "import os, re, glob, socket, sys\nleaked = []\n"
        + attempts
        + "print('leaked:', leaked)\n"
        + "if leaked:\n    "
        + SOLVE.replace("; ", "\n    ")
        + "else:\n    "
        + WRONG.replace("; ", "\n    ")
    )


STEAL = """
from helpers.paths import NOTEBOOKS, REPO
everywhere = [glob.glob(f'{top}/**/*.ipynb', recursive=True) for top in (REPO.parent, '/tmp', '/home', '/root')]
for path in [*glob.glob('*.ipynb'), *glob.glob(str(NOTEBOOKS / '*.ipynb')), *sum(everywhere, [])]:
    try:
        text = open(path).read()
    except OSError:
        continue
    if any(marker in text for marker in ('BEGIN ' + 'SOLUTION', 'BEGIN ' + 'HIDDEN TESTS', 'softmax_sums' + '_to_one')):
        leaked.append(path)
for path in [REPO / 'helpers' / 'judge.py', REPO / 'helpers' / 'grader.py']:
    if path.exists():
        leaked.append(str(path))
try:
    import helpers.judge
    leaked.append('import helpers.judge')
except ImportError:
    pass
"""
WRITE = """
from helpers.paths import REPO, NOTEBOOKS
import site
from helpers import bottlenecks, data, tflite
caches = (data.cache_dir(), bottlenecks.cache_root(), tflite.conversion_cache())  # its copies link to the host's
cached = [p for c in caches for p in glob.glob(str(c / '**'), recursive=True) if os.path.isfile(p)][:50]
existing = [REPO / 'helpers' / 'homework.py', NOTEBOOKS / '02_layer_dump.ipynb', SUBMISSIONS + '/victim.ipynb', *cached]
new = [os.path.join(p, 'zz_poison.pth') for p in site.getsitepackages()] + [OUT + '/grades.csv']
new += [str(c / 'zz_poison.tflite') for c in caches]  # its own copies: allowed, and never kept for anyone else
for target, mode in [*((t, 'r+') for t in existing), *((t, 'a') for t in new)]:
    try:  # r+: the host's file itself, not a new one in the sandbox's own /tmp
        with open(target, mode) as handle:
            handle.seek(0, 2)
            handle.write('\nimport helpers.homework as h; h.check = lambda *a, **k: True\n')
        if mode == 'r+' or not str(target).startswith('/tmp'):
            leaked.append(f'wrote {target}')
    except OSError:
        pass
"""
NETWORK_ENV_PROC = """
try:
    socket.create_connection(('127.0.0.1', PORT), timeout=2).close()
    leaked.append('network')
except OSError:
    pass
if any(k.startswith('GRADER_SECRET') for k in os.environ):
    leaked.append('environment')
if os.path.isdir(HOST_HOME):  # only the folders leading to the interpreter may show (as empty mount points)
    if [n for n in os.listdir(HOST_HOME) if not sys.base_prefix.startswith(os.path.join(HOST_HOME, n))]:
        leaked.append('home')
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        if 'pytest' in open(f'/proc/{pid}/cmdline').read() or 'helpers.grader' in open(f'/proc/{pid}/cmdline').read():
            leaked.append('/proc of the grader')
    except OSError:
        pass
"""
FAKE = """
import subprocess
subprocess.Popen(['sleep', '4243'], start_new_session=True)  # detached: must not outlive the grading
from helpers import homework, records
from IPython import get_ipython
from IPython.display import display
homework.check = lambda *a, **k: True
records.record = lambda *a, **k: None
np.allclose = lambda *a, **k: True
passed = {'name': 'check:softmax', 'value': {'passed': True, 'points': 1}}
fake = {'application/vnd.mobilenet-workbook.record+json': passed}
get_ipython().events.register('post_run_cell', lambda result: display(fake, raw=True))
for name in ('softmax', 'top5_order', 'softmax_sums_to_one'):
    homework.check(name, True, 1)
"""


def fingerprint_of_host() -> str:
    """sha256 over helpers/, notebooks/ and the names in site-packages: what a poisoning would change."""
    digest = hashlib.sha256()
    for path in sorted([*(REPO / "helpers").glob("*.py"), *NOTEBOOKS.glob("*.ipynb")]):
        digest.update(path.name.encode() + path.read_bytes())
    site = next((REPO / ".venv" / "lib").glob("python*/site-packages"))
    digest.update(" ".join(sorted(os.listdir(site))).encode())
    return digest.hexdigest()


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that counts connections (the sandbox must make none)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                seen.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


def test_hostile_submissions_earn_nothing_and_change_nothing(tmp_path, pack, listener, monkeypatch, request):
    port, connections = listener
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "hunter2")
    out = tmp_path / "out"
    out.mkdir()
    victim = submission(tmp_path, "victim", SOLVE)
    cached = data.cache_dir() / "litert" / "grading-probe.tflite"  # the sandbox reads the caches, never writes them
    converted = tflite.conversion_cache() / "grading-probe.tflite"
    for planted in (cached, converted):
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes(b"cached conversion")
    request.addfinalizer(converted.unlink)  # the build cache is the repository's own: leave nothing in it
    before, victim_bytes = fingerprint_of_host(), victim.read_bytes()
    constants = (
        f"PORT = {port}\nSUBMISSIONS = {str(tmp_path)!r}\nOUT = {str(out)!r}\nHOST_HOME = {os.path.expanduser('~')!r}\n"
    )
    steal = submission(tmp_path, "steal", leak_or_wrong(constants + STEAL + WRITE + NETWORK_ENV_PROC))
    fake = submission(tmp_path, "fake", FAKE + WRONG)
    subset = submission(  # 04: its own notebook read from the kernel's working directory
        tmp_path,
        "subset",
        "import json\nsource = json.load(open('04_label_subset.ipynb'))\n"
        "exec(''.join(c['source'] for c in source['cells'] if c.get('id') == 'c08e'))\n",
        "04_label_subset.ipynb",
    )
    blank = submission(tmp_path, "blank", "raise NotImplementedError()\n")  # graded after the poisoning
    results = grader.grade_all([str(p) for p in (steal, fake, subset, victim, blank)], timeout=240)
    scores = {os.path.basename(r["submission"]): (r["score"], r["max_score"]) for r in results}
    assert scores == {
        "steal.ipynb": (0, 3),  # nothing read, written or reached
        "fake.ipynb": (0, 3),  # rebinding check/record/np.allclose and a display hook count for nothing
        "subset.ipynb": (0, 3),  # the kernel's notebooks/ holds the student edition: no solution to run
        "victim.ipynb": (3, 3),  # graded after the attacks, unchanged
        "blank.ipynb": (0, 3),
    }, results
    assert [c["error"] for c in results[2]["checks"]] == ["did not run (NotImplementedError)"] * 2
    assert fingerprint_of_host() == before and victim.read_bytes() == victim_bytes
    assert cached.read_bytes() == converted.read_bytes() == b"cached conversion"
    host_caches = (data.cache_dir(), bottlenecks.cache_root(), tflite.conversion_cache())
    assert not [p for c in host_caches if c.is_dir() for p in c.rglob("zz_poison*")]  # a submission's run adds nothing
    assert processes_with("sleep 4243") == []
    assert sorted(os.listdir(out)) == [] and connections == []


def processes_with(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in open(f"/proc/{pid}/cmdline").read().replace("\0", " "):
                found.append(pid)
        except OSError:
            continue
    return found


def test_the_time_limit_holds_and_nothing_survives(tmp_path, pack):
    hang = submission(
        tmp_path,
        "hang",
        "import os, re, subprocess\n"
        "subprocess.Popen(['sleep', '4242'], start_new_session=True)\n"
        "os._exit = lambda *a: None\n"
        "re.match('(a+)+$', 'a' * 40 + 'b')  # catastrophic backtracking: minutes\n",
    )
    grader.warm_caches(NOTEBOOKS / NOTEBOOK)  # once per version, before the clock starts (a no-op when warm)
    temporary = set(os.listdir(tempfile.gettempdir()))
    start = time.monotonic()
    (result,) = grader.grade_all([str(hang)], timeout=40)
    elapsed = time.monotonic() - start
    assert elapsed < 40 + 10, elapsed  # the grader's own set-up is part of the 10 s
    assert result["score"] == 0 and "stopped after the time limit of 40 s" in result["warnings"]
    assert all(c["error"] == "did not run (stopped after the time limit of 40 s)" for c in result["checks"])
    assert processes_with("sleep 4242") == []
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - temporary if n.startswith("grading-")}


def test_a_dead_kernel_is_graded_as_far_as_it_got_and_output_is_capped(tmp_path, pack):
    # Solved, then 60 MB of output and 200,000 lines, then the kernel dies: the extract cell after
    # the exercise never runs, so every check says why.
    spam = submission(
        tmp_path,
        "spam",
        SOLVE + "print('x' * 60_000_000)\nfor i in range(200_000):\n    print(i)\nimport os\nos._exit(3)\n",
    )
    solved_spam = submission(tmp_path, "solved_spam", SOLVE + "print('y' * 60_000_000)\n")
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps({**json.loads(solved_spam.read_text()), "metadata": []}))
    command = [sys.executable, "-m", "helpers", "grade", str(spam), str(bad), str(solved_spam), "--json", "--jobs", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=400)
    assert result.returncode == 0, result.stderr
    spam_row, bad_row, solved_row = (json.loads(line) for line in result.stdout.splitlines())  # JSON lines
    assert len(result.stdout) < 20_000  # the output stayed in the sandbox
    assert (
        result.stderr.strip().splitlines() == [f"error: {bad_row['error']}"]
        and "not a valid notebook" in bad_row["error"]
    )
    assert spam_row["score"] == 0 and all(c["error"].startswith("did not run (") for c in spam_row["checks"])
    assert solved_row["score"] == 3  # a capped 60 MB print does not stop the grading


def test_no_sandbox_says_so_in_every_report(tmp_path, pack):
    blank = submission(tmp_path, "blank", "raise NotImplementedError()\n")
    command = [sys.executable, "-m", "helpers", "grade", str(blank), "--no-sandbox", "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [f"warning: {grader.NO_SANDBOX_WARNING}"]
    assert f"warning: {grader.NO_SANDBOX_WARNING}" in result.stdout  # the terminal report
    assert grader.NO_SANDBOX_WARNING in (tmp_path / "out" / "grades.csv").read_text()
    assert grader.NO_SANDBOX_WARNING in (tmp_path / "out" / "blank.html").read_text()


def test_the_sandbox_workbook_carries_the_data_listings_but_not_the_judge(tmp_path):
    """Folder entries of the registry (the ImageNet sample, the flower subset) are found through
    helpers/listings: without it, every notebook cell reading them fails inside the sandbox."""
    view = grader._view(tmp_path)
    listings = sorted(p.name for p in (view / "helpers" / "listings").iterdir())
    assert listings == sorted(p.name for p in (REPO / "helpers" / "listings").iterdir()) and listings
    assert not (view / "helpers" / "judge.py").exists() and not (view / "helpers" / "grader.py").exists()


def test_links_and_deep_folders_left_behind_harm_nothing(tmp_path, pack):
    """Found by a red-team review: the grader read the log through a link the submission planted
    (a host secret in the report), and a 3000-level folder made the clean-up raise (batch lost)."""
    secret = tmp_path / "host_secret.txt"
    secret.write_text("HOST_ONLY_SECRET_42")
    leak = submission(
        tmp_path,
        "leak",
        "import os\nw = os.environ['WORKBOOK_ANSWERS']\n"
        f"os.remove(w + '/log.txt')\nos.symlink({str(secret)!r}, w + '/log.txt')\n"
        "os.symlink('/dev/zero', w + '/executed_01_classify.ipynb')\n"
        "os.kill(os.getppid(), 9)  # papermill dies: the grader quotes the log's last line\n",
    )
    deep = submission(
        tmp_path,
        "deep",
        "import os\nfd = os.open(os.environ['WORKBOOK_ANSWERS'], os.O_RDONLY)\n"
        "for _ in range(3000):  # the grader re-runs this cell: the folders may exist already\n"
        "    try:\n        os.mkdir('d', dir_fd=fd)\n    except FileExistsError:\n        pass\n"
        "    fd, old = os.open('d', os.O_RDONLY, dir_fd=fd), fd\n    os.close(old)\n"
        "os.close(fd)\n" + SOLVE,
    )
    solved = submission(tmp_path, "solved", SOLVE)
    temporary = set(os.listdir(tempfile.gettempdir()))
    leaked, deep_row, fine = grader.grade_all([str(leak), str(deep), str(solved)], timeout=120)
    assert "HOST_ONLY_SECRET_42" not in json.dumps(leaked) and leaked["score"] == 0
    assert deep_row["score"] == fine["score"] == 3
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - temporary if n.startswith("grading-")}


FORK_BOMB = """
import os, time
n = 0
try:
    for _ in range(5000):
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
        n += 1
except OSError:
    pass
print('forked', n, flush=True)
"""


FALLOCATE = """
import ctypes, errno, os
fd = os.open("big", os.O_CREAT | os.O_WRONLY)
libc = ctypes.CDLL(None, use_errno=True)
if libc.fallocate(fd, 0, ctypes.c_long(0), ctypes.c_long(1 << 20)) == 0:
    print("fallocate allowed")
else:
    print("fallocate refused", ctypes.get_errno() == errno.EOPNOTSUPP)
os.posix_fallocate(fd, 0, 1 << 20)  # glibc writes the zeros itself when the call is refused
print("size", os.fstat(fd).st_size, flush=True)
"""


def test_fallocate_is_refused_inside_the_sandbox(tmp_path):
    """fallocate reserves 64 MB in a millisecond: between two disk measurements (1 s) a submission
    could fill the host's disk with it; the seccomp filter refuses it (posix_fallocate still works)."""
    line = sandbox.command_line(
        [os.path.join(sys.base_prefix, "bin", "python3"), "-c", FALLOCATE],
        writable=tmp_path / "work",
        read_only=[],
        env={},
        cwd=tmp_path / "work",
        cpu_seconds=60,
    )
    (tmp_path / "work").mkdir()
    outcome = sandbox.run(line, timeout=60, log=tmp_path / "log.txt")
    assert outcome.returncode == 0, outcome.tail
    assert outcome.tail.split() == ["fallocate", "refused", "True", "size", str(1 << 20)], outcome.tail


def test_a_fork_bomb_stops_at_the_sandbox_s_task_limit(tmp_path):
    """Under a root grader RLIMIT_NPROC binds nothing (uid 0 is exempt, and the sandbox's uid maps to
    it): the cgroup of the sandbox caps its threads and processes as a whole, and its memory."""
    line = sandbox.command_line(
        [os.path.join(sys.base_prefix, "bin", "python3"), "-c", FORK_BOMB],
        writable=tmp_path,
        read_only=[],
        env={},
        cwd=tmp_path,
        cpu_seconds=60,
    )
    outcome = sandbox.run(line, timeout=60, log=tmp_path / "log.txt")
    parent = sandbox._own_group("pids")
    if parent is not None and os.access(parent, os.W_OK):  # a cgroup can be made here (root on CI: yes)
        assert f"pids pids.max={sandbox.GROUP_TASKS}" in outcome.limits, outcome
        assert any(limit.startswith("memory ") for limit in outcome.limits), outcome
    if outcome.limits:
        forked = int(outcome.tail.split("forked", 1)[1].split()[0])
        assert forked < sandbox.GROUP_TASKS, outcome.tail  # stopped by the cap, not by the loop's 5000
    assert outcome.seconds < 30  # the sleeping children died with the sandbox's pid namespace
    assert processes_with("time.sleep(20)") == []


def test_the_warm_up_runs_once_and_only_it_adds_to_the_caches(tmp_path, pack, monkeypatch):
    """The instructor's solutions warm the caches once per version (full marks: a self-test of the
    notebook); what the warm-up computed is kept as plain files, never what the mirror links to."""
    monkeypatch.setenv(BUILD_ENV, str(tmp_path / "build"))  # its own caches and record
    source = NOTEBOOKS / NOTEBOOK
    warmed = grader.warm_caches(source, timeout=240)
    assert (warmed["score"], warmed["max_score"]) == (3, 3), warmed
    assert grader.warm_caches(source, timeout=240) is None  # this version is warm
    assert json.loads(grader.warm_record().read_text())[NOTEBOOK]["score"] == [3, 3]

    made, host = tmp_path / "made", tmp_path / "host" / "tflite"
    (made / "tflite" / "sub").mkdir(parents=True)
    host.mkdir(parents=True)
    (host / "old.tflite").write_bytes(b"old")
    (made / "tflite" / "old.tflite").symlink_to(host / "old.tflite")  # the mirror's link to the host's file
    (made / "tflite" / "elsewhere.tflite").symlink_to("/etc/hostname")
    (made / "tflite" / "new.tflite").write_bytes(b"new")
    (made / "tflite" / "sub" / "features.npy").write_bytes(b"npy")
    (made / "tflite" / "x.tflite.abc.part").write_bytes(b"half")
    grader._harvest(made, [host])
    kept = {str(p.relative_to(host)): p.read_bytes() for p in host.rglob("*") if p.is_file()}
    assert kept == {"old.tflite": b"old", "new.tflite": b"new", "sub/features.npy": b"npy"}


def test_the_disk_limit_holds_for_all_files_together(tmp_path, pack, monkeypatch):
    """Files under the 64 MB cap each, but many of them: the run stops within seconds of passing
    the disk limit (lowered here to 300 MB so the test writes little), graded as far as it got."""
    monkeypatch.setattr(sandbox, "DISK_LIMIT", 300 << 20)
    grader.warm_caches(NOTEBOOKS / NOTEBOOK)  # before the clock (a no-op when warm)
    filler = submission(
        tmp_path,
        "filler",
        "import os, time\n"
        "for i in range(12):  # 12 x 40 MB = 480 MB, one file at a time\n"
        "    with open(os.path.join(os.environ['WORKBOOK_ANSWERS'], f'fill{i}'), 'wb') as f:\n"
        "        f.write(os.urandom(40 << 20))\n"
        "time.sleep(600)\n",
    )
    start = time.monotonic()
    (result,) = grader.grade_all([str(filler)], timeout=300)
    assert time.monotonic() - start < 120  # not the 300 s time limit
    assert "stopped: more than 300 MB (or 100,000 files) written" in result["warnings"], result
    assert result["score"] == 0


def test_disk_usage_counts_links_as_links_and_caps_the_entries(tmp_path, monkeypatch):
    (tmp_path / "big").write_bytes(b"x" * (1 << 20))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "link").symlink_to(tmp_path / "big")
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)  # never followed
    used = sandbox.disk_usage(tmp_path)
    assert (1 << 20) <= used < (1 << 20) + (64 << 10)  # the file's blocks, the folder and the links' few
    monkeypatch.setattr(sandbox, "DISK_ENTRIES", 3)
    for i in range(3):
        (tmp_path / f"empty{i}").touch()
    assert sandbox.disk_usage(tmp_path) > sandbox.DISK_LIMIT  # 7 entries > 3: counted as over the limit


WRITTEN_01 = [  # 01's written questions (H1, H2, and the Questions section once nbgrader_metadata gave it a cell)
    c["id"]
    for c in json.loads((NOTEBOOKS / NOTEBOOK).read_text())["cells"]
    if c["cell_type"] == "markdown" and homework.EXERCISE_TAG in c["metadata"].get("tags", [])
]


def test_fair_grading_of_two_same_named_submissions(tmp_path, pack):
    """A helper in a cell the student added above an exercise cell whose id changed (cut and
    paste) earns every point; the exercise done with the workbook's own ``ranking.softmax`` earns
    none and says why; two ``01_classify.ipynb`` from two folders get a page and a student each."""
    source = NOTEBOOKS / NOTEBOOK
    nb = homework.student_edition(json.loads(source.read_text()), NOTEBOOK, homework.fingerprint(source))
    k = next(i for i, c in enumerate(nb["cells"]) if homework.EXERCISE_TAG in c["metadata"].get("tags", []))
    nb["cells"][k] |= {
        "id": "5f1c2a9e",
        "source": "probabilities = soft(logits)\ntop5_indices = np.argsort(-probabilities)[:5]\n",
    }
    helper = "def soft(z):\n    e = np.exp(z - np.max(z))\n    return e / e.sum()\n"
    nb["cells"].insert(
        k,
        {"cell_type": "code", "id": "helper", "metadata": {}, "execution_count": None, "outputs": [], "source": helper},
    )
    for name in ("alice", "bob"):
        (tmp_path / name).mkdir()
    (tmp_path / "alice" / NOTEBOOK).write_text(json.dumps(nb))
    reference = submission(
        tmp_path / "bob",
        "01_classify",
        "probabilities = ranking.softmax(logits)\ntop5_indices = np.argsort(-probabilities)[:5]\n",
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "helpers",
        "grade",
        str(tmp_path / "alice" / NOTEBOOK),
        str(reference),
        "--json",
        "--jobs",
        "2",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=400)
    assert result.returncode == 0, result.stderr
    alice, bob = (json.loads(line) for line in result.stdout.splitlines())
    assert (alice["student"], alice["score"], bob["student"], bob["score"]) == ("alice", 3, "bob", 0)
    assert (
        "exercise cell c10e found by its tag and position (its id is '5f1c2a9e' in the submission)" in alice["warnings"]
    )
    assert any("uses the workbook's own ranking.softmax" in w for w in bob["warnings"])
    assert [w["cell_id"] for w in alice["written"]] == WRITTEN_01 and not any(w["answered"] for w in alice["written"])
    pages = sorted(p.name for p in out.glob("*.html"))
    assert pages == ["alice-01_classify.html", "bob-01_classify.html"]
    assert "ranking.softmax" in (out / "bob-01_classify.html").read_text()
    assert (out / "manual.csv").read_text().count("\n") == 1 + 2 * len(WRITTEN_01)  # a row per written answer


def test_the_gradescope_autograder_writes_results_json(tmp_path, pack):
    """run_autograder from 01's zip, with a temporary folder in place of /autograder."""
    import zipfile

    from helpers import gradescope

    zips = {p.name: p for p in gradescope.build(tmp_path / "zips")}
    graded = [s.name.split("_")[0] for s in grader.notebook_list() if judge.PROBES.get(s.name)]
    assert sorted(zips) == [f"{number}_autograder.zip" for number in graded] and "07c_autograder.zip" in zips
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zips["01_autograder.zip"]) as archive:
        assert {"setup.sh", "run_autograder", "helpers/grader.py", "notebooks/01_classify.ipynb"} <= set(
            archive.namelist()
        )
        assert "helpers.gradescope warm --notebook 01_classify.ipynb" in archive.read("setup.sh").decode()
        archive.extractall(root / "source")  # what Gradescope does with the zip
    (root / "source" / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    submission(root / "submission", "01_classify", SOLVE)
    env = {**os.environ, "AUTOGRADER": str(root), "WORKBOOK_PYTHON": sys.executable, "WORKBOOK_DATA": str(pack)}
    done = subprocess.run(
        [str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 3 and [
        (t["name"], t["score"], t["max_score"], t["visibility"]) for t in results["tests"]
    ] == [
        ("softmax", 1, 1, "visible"),
        ("top5_order", 1, 1, "visible"),
        ("softmax_sums_to_one", 1, 1, "after_published"),
    ]
    blank = ", ".join(WRITTEN_01)  # nothing written: every written answer flagged
    assert results["output"].startswith("autograded 3 / 3\n") and f"(blank: {blank})" in results["output"]


def test_a_grader_stopped_by_sigterm_leaves_no_folder_and_no_sandbox(tmp_path, pack):
    """A batch system ends an overlong job with SIGTERM: the grader exits as it does on an error,
    the running sandbox (and its kernel) killed and the batch folder removed."""
    solved = submission(tmp_path, "solved", "import time\ntime.sleep(600)\n" + SOLVE)
    grader.warm_caches(NOTEBOOKS / NOTEBOOK)  # so the grading runs in the batch's worker thread, not a warm-up
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    grading = subprocess.Popen(
        [sys.executable, "-m", "helpers", "grade", str(solved)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(scratch.glob("grading-*/**/log.txt")):  # the sandbox has started
            assert grading.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(2)
        grading.terminate()
        assert grading.wait(timeout=60) == 128 + 15
    finally:
        grading.kill()  # a grader that ignored SIGTERM must not outlive the test (its sandbox dies with it)
    assert list(scratch.iterdir()) == []
    for _ in range(50):  # a killed sandbox's processes may take a moment to be gone
        alive = subprocess.run(["pgrep", "-f", str(scratch)], capture_output=True, text=True).stdout.split()
        if not alive:
            break
        time.sleep(0.2)
    assert alive == []  # nothing of that grading still runs
