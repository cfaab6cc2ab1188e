"""Load test of the rater endpoints: many raters rate one study at once through gunicorn on PostgreSQL.

    .venv/bin/python bench/rating_load.py --raters 50 --images 20 --write-benchmarks

Drops and recreates the database named by --database-url, migrates it, builds a real and a synthetic
image set (64x64, 16-bit) in a temporary MEDIA_ROOT, opens one study assigned to every rater, starts
gunicorn and lets one thread per rater log in and rate every image (GET trial, GET image, POST answer)
until done. Then checks that every answer was stored exactly once and prints a Markdown table. Exits
non-zero on any error or on a mismatch between answers sent and ratings stored.
"""

import argparse
import http.cookiejar
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

from benchmarks_md import machine_description, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECTION = "## Rating load (bench/rating_load.py)"
IMAGE_SIZE = 64
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * 2  # 16-bit grayscale, raw little-endian
PASSWORD = "bench-rater-password-1"
KINDS = ("trial", "image", "answer")
LOGIN_KINDS = ("login_page", "login")
HTTP_TIMEOUT = 60


# ---- database and server --------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    """Drop and create the database named in `url`, connecting to the `postgres` maintenance db."""
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit(f"--database-url names no database: {url}")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_env(database_url: str, media_root: Path, static_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(media_root),
            "STATIC_ROOT": str(static_root),
            "DEBUG": "0",
            "SECRET_KEY": "bench-rating-load-not-secret-" + "x" * 40,
            "ALLOWED_HOSTS": "127.0.0.1",
            # Plain HTTP on localhost: secure-only cookies would never be sent back.
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(base + "/accounts/login/", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # graceful: workers finish their requests
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- data -----------------------------------------------------------------------------------------


def setup_data(n_raters: int, n_images: int) -> dict:
    """Raters, a real and a synthetic set, one opened study. Returns {username: assignment pk} and the study pk."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.db import connections

    from accounts.models import RATERS_GROUP
    from imagesets.models import ImageSet
    from tests.builders import make_imageset
    from turing import services
    from turing.models import Assignment

    n_real = n_images // 2
    n_fake = n_images - n_real
    # One hash for every rater: hashing 50 passwords one by one would only slow the setup down.
    password_hash = make_password(PASSWORD)
    User = get_user_model()
    group = Group.objects.get_or_create(name=RATERS_GROUP)[0]
    User.objects.bulk_create(
        [User(username=f"bench{i:03d}", password=password_hash) for i in range(n_raters)], batch_size=500
    )
    users = list(User.objects.filter(username__startswith="bench").order_by("pk"))
    group.user_set.add(*users)
    real = make_imageset(
        "bench-real", kind=ImageSet.Kind.REAL, n=n_real, size=IMAGE_SIZE, seed=1, split_of=lambda i: "test"
    )
    fake = make_imageset("bench-fake", kind=ImageSet.Kind.SYNTHETIC, n=n_fake, size=IMAGE_SIZE, seed=2)
    study = services.study_save(
        name="bench-study",
        real_imageset=real,
        sources=[services.SourceSpec(fake, "bench-gan")],
        raters=users,
        real_split="test",
        n_real=n_real,
        n_fake=n_fake,
        n_training=0,
        seed=7,
    )
    study = services.study_open(study=study)
    assignments = {a.rater.username: a.pk for a in Assignment.objects.filter(study=study).select_related("rater")}
    connections.close_all()
    return {"study": study.pk, "assignments": assignments}


def check_ratings(study_pk: int) -> dict:
    from django.db import connections
    from django.db.models import Count

    from turing.models import Assignment, Rating

    ratings = Rating.objects.filter(assignment__study_id=study_pk)
    stored = ratings.count()
    duplicate_images = ratings.values("assignment", "study_image").annotate(n=Count("id")).filter(n__gt=1).count()
    duplicate_positions = ratings.values("assignment", "position").annotate(n=Count("id")).filter(n__gt=1).count()
    unfinished = Assignment.objects.filter(study_id=study_pk, finished_at__isnull=True).count()
    connections.close_all()
    return {
        "stored": stored,
        "duplicates": duplicate_images + duplicate_positions,
        "unfinished": unfinished,
    }


# ---- load -----------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # surface the 302 itself (login answers with one)


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.answers_sent = 0

    def latency(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def answered(self) -> None:
        with self.lock:
            self.answers_sent += 1


class Rater:
    def __init__(self, base: str, username: str, assignment_pk: int, results: Results, rng: random.Random):
        self.base = base
        self.username = username
        self.pk = assignment_pk
        self.results = results
        self.rng = rng
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def _cookie(self, name: str) -> str:
        return next((c.value for c in self.jar if c.name == name), "")

    def request(self, kind: str, path: str, *, data: bytes | None = None, headers: dict | None = None, expect=200):
        """One timed request. Returns the body, or None after recording an error."""
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        start = time.perf_counter()
        try:
            with self.opener.open(req, timeout=HTTP_TIMEOUT) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except Exception as exc:  # connection reset, timeout, ...
            self.results.latency(kind, time.perf_counter() - start)
            self.results.error(f"{self.username} {kind} {path}: {type(exc).__name__}: {exc}")
            return None
        self.results.latency(kind, time.perf_counter() - start)
        if status != expect:
            snippet = body[:300].decode("utf-8", "replace")
            self.results.error(f"{self.username} {kind} {path}: HTTP {status} (expected {expect}): {snippet}")
            return None
        return body

    def login(self) -> bool:
        if self.request("login_page", "/accounts/login/") is None:
            return False
        form = urllib.parse.urlencode(
            {"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": self._cookie("csrftoken")}
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.request("login", "/accounts/login/", data=form, headers=headers, expect=302) is None:
            return False
        if not self._cookie("sessionid"):
            self.results.error(f"{self.username} login: no session cookie after the redirect")
            return False
        return True

    def rate_all(self, limit: int) -> None:
        for _ in range(limit + 1):
            body = self.request("trial", f"/turing/rate/{self.pk}/trial")
            if body is None:
                return
            state = json.loads(body)
            if state.get("done"):
                return
            if state.get("closed") or not state.get("token"):
                self.results.error(f"{self.username} trial: unexpected state {state}")
                return
            token = state["token"]
            pixels = self.request("image", f"/turing/img/{token}")
            if pixels is None:
                return
            if len(pixels) != IMAGE_BYTES:
                self.results.error(f"{self.username} image {token}: {len(pixels)} bytes, expected {IMAGE_BYTES}")
                return
            answer = json.dumps({"token": token, "call": self.rng.choice(["real", "generated"])}).encode()
            headers = {"Content-Type": "application/json", "X-CSRFToken": self._cookie("csrftoken")}
            body = self.request("answer", f"/turing/rate/{self.pk}/answer", data=answer, headers=headers)
            if body is None:
                return
            self.results.answered()
            after = json.loads(body)
            if after.get("answered") != state.get("answered", 0) + 1:
                self.results.error(f"{self.username} answer {token}: answered went {state['answered']} -> {after}")
                return
        self.results.error(f"{self.username}: still not done after {limit} answers")


def run_load(base: str, assignments: dict[str, int], n_images: int, seed: int) -> tuple[Results, float, float]:
    """Every rater logs in, then all start rating together. Returns results, login and rating wall times."""
    results = Results()
    raters = [
        Rater(base, username, pk, results, random.Random(f"{seed}:{username}"))
        for username, pk in sorted(assignments.items())
    ]
    barrier = threading.Barrier(len(raters) + 1)
    logged_in = threading.Barrier(len(raters) + 1)

    def work(rater: Rater) -> None:
        ok = False
        try:
            ok = rater.login()
        except Exception as exc:
            results.error(f"{rater.username} login: {type(exc).__name__}: {exc}")
        logged_in.wait()
        barrier.wait()
        if ok:
            try:
                rater.rate_all(n_images)
            except Exception as exc:
                results.error(f"{rater.username}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(r,), name=r.username, daemon=True) for r in raters]
    start = time.perf_counter()
    for t in threads:
        t.start()
    logged_in.wait()
    login_s = time.perf_counter() - start
    start = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    return results, login_s, time.perf_counter() - start


# ---- report ---------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def machine() -> str:
    return machine_description()


def postgres_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def report(args, results: Results, login_s: float, rate_s: float, check: dict, pg: str, command: str) -> str:
    n_requests = sum(len(results.latencies[k]) for k in KINDS)
    n_login = sum(len(results.latencies[k]) for k in LOGIN_KINDS)
    expected = args.raters * args.images
    lines = [
        SECTION,
        "",
        f"One study, {args.images} images ({IMAGE_SIZE}x{IMAGE_SIZE} 16-bit, {IMAGE_BYTES} bytes each), "
        f"{args.raters} raters rating concurrently (one thread each, own session) through gunicorn "
        f"({args.web_workers} workers x 4 threads, DEBUG=0) on PostgreSQL {pg}. Each trial is GET trial, "
        "GET image, POST answer; the load generator runs on the same machine.",
        "",
        f"- Machine: {machine()}",
        f"- Command: `{command}`",
        "",
        "| Measure | Value |",
        "| --- | --- |",
        f"| Rating requests (trial + image + answer) | {n_requests} |",
        f"| Rating phase duration | {rate_s:.2f} s |",
        f"| Throughput | {n_requests / rate_s:.1f} req/s, {results.answers_sent / rate_s:.1f} ratings/s |",
        f"| Login phase ({n_login} requests, not in the throughput) | {login_s:.2f} s |",
        f"| Errors | {len(results.errors)} |",
        f"| Ratings stored / answers sent / expected (raters x images) | "
        f"{check['stored']} / {results.answers_sent} / {expected} |",
        f"| Duplicate ratings / unfinished assignments | {check['duplicates']} / {check['unfinished']} |",
        "",
        "| Request | Count | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in (*KINDS, *LOGIN_KINDS):
        values = sorted(results.latencies[kind])
        cells = [f"{percentile(values, p) * 1000:.1f}" for p in (50, 95, 99)] + [
            f"{(values[-1] if values else float('nan')) * 1000:.1f}"
        ]
        lines.append(f"| {kind} | {len(values)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_benchmarks(section: str) -> Path:
    """Replace (or append) this script's section in BENCHMARKS.md."""
    return write_section(SECTION, section)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ratingbench")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--images", type=int, default=20, help="images per study, half real and half generated")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed for the raters' random answers")
    parser.add_argument("--write-benchmarks", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()
    if args.raters < 1 or args.images < 2:
        parser.error("need at least 1 rater and 2 images")

    python = Path(sys.executable)
    if python.is_relative_to(ROOT):
        python = python.relative_to(ROOT)
    command = shlex.join([str(python), *sys.argv])

    tmp = Path(tempfile.mkdtemp(prefix="rating-load-"))
    media_root, static_root = tmp / "media", tmp / "static"
    media_root.mkdir()
    static_root.mkdir()
    env = server_env(args.database_url, media_root, static_root)
    server = None
    server_log = tmp / "gunicorn.log"
    try:
        print(f"Recreating database {args.database_url} ...", flush=True)
        recreate_database(args.database_url)
        pg = postgres_version(args.database_url)
        print("Migrating ...", flush=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        print(f"Creating {args.raters} raters and a study of {args.images} images ...", flush=True)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "MEDIA_ROOT", "STATIC_ROOT", "DEBUG", "SECRET_KEY")})
        os.environ.update({k: env[k] for k in ("ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "LOG_LEVEL")})
        data = setup_data(args.raters, args.images)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--threads",
            "4",
            "--timeout",
            "120",
            "--graceful-timeout",
            "20",
        ]
        print(f"Starting gunicorn on {base} ...", flush=True)
        with server_log.open("wb") as log:
            server = subprocess.Popen(gunicorn, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_up(base, server)

        print(f"Running {args.raters} raters ...", flush=True)
        results, login_s, rate_s = run_load(base, data["assignments"], args.images, args.seed)
        check = check_ratings(data["study"])
        section = report(args, results, login_s, rate_s, check, pg, command)
        print()
        print(section)
        for message in results.errors[:20]:
            print("ERROR:", message)
        if len(results.errors) > 20:
            print(f"... and {len(results.errors) - 20} more errors")
        if args.write_benchmarks:
            print(f"Wrote {write_benchmarks(section).relative_to(ROOT)}")
        expected = args.raters * args.images
        ok = (
            not results.errors
            and check["stored"] == results.answers_sent == expected
            and check["duplicates"] == 0
            and check["unfinished"] == 0
        )
        if not ok:
            print("FAILED: errors, or ratings stored do not match answers sent", file=sys.stderr)
        return 0 if ok else 1
    finally:
        if server is not None:
            stop_server(server)
            log_text = server_log.read_text(errors="replace") if server_log.exists() else ""
            interesting = [line for line in log_text.splitlines() if "ERROR" in line or "Traceback" in line]
            if interesting:
                print("gunicorn log (errors):\n" + log_text[-4000:], file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
