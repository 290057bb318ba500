"""The Performance issue's benchmark: secinstall, pip and uv installing one hash-pinned
corpus of real wheels from a local HTTPS index, side by side; plus start-up, attestation
verification and the download lower bound. Results go to stdout and .bench/results.{md,json}.

Run `nox -s bench` (arguments after `--` come here), or `python benchmarks/bench.py` in an
environment with requirements/bench.txt and secinstall installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # tests.support.index: the test suite's local HTTPS index

from tests.support.index import JSON_TYPE, Exchange, LocalIndex, ca_bundle  # noqa: E402

CORPUS_IN = HERE / "corpus.in"
CORPUS = HERE / "corpus.txt"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "pep740"
ATTESTED = "pypi_attestations-0.0.30-py3-none-any.whl"
TOOLS = ("secinstall", "pip", "uv")
SCENARIOS = ("cold-pyc", "cold-nopyc", "warm-pyc", "warm-nopyc")
# PyPI's own answers, so that pip's HTTP cache and uv's cache behave as they do with PyPI.
FILE_CACHE_CONTROL = "max-age=365000000, immutable, public"
PAGE_CACHE_CONTROL = "max-age=600, public"

# The machine's pip/uv configuration (local find-links, CA bundle overrides) stays out.
_DROPPED = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "VIRTUAL_ENV", "PYTHONPATH")


def clean_env(keep_pythonpath: bool = False, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "SECINSTALL_")) and k not in _DROPPED}
    if keep_pythonpath and "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]  # a working tree under test (src/)
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(extra)
    return env


def uv_binary() -> str:
    found = shutil.which("uv", path=sysconfig.get_path("scripts")) or shutil.which("uv")
    if found is None:
        sys.exit("uv not found: install requirements/bench.txt (or run `nox -s bench`)")
    return found


# --- the corpus ----------------------------------------------------------------------------

def update_corpus() -> None:
    """Re-resolve corpus.in into corpus.txt, the way `nox -s lock` pins requirements/."""
    subprocess.run(  # noqa: S603
        [uv_binary(), "pip", "compile", "--quiet", "--no-config", "--index-url",
         "https://pypi.org/simple", "--system-certs", "--universal", "--python-version", "3.10",
         "--no-build", "--no-python-downloads", "--generate-hashes", "--custom-compile-command",
         "python benchmarks/bench.py --update-corpus", str(CORPUS_IN), "--output-file",
         str(CORPUS)], env=clean_env(), check=True)


def corpus_wheels(out: Path) -> list[Path]:
    """The corpus's wheels for this interpreter, downloaded once from PyPI (hash-checked)."""
    digest = hashlib.sha256(CORPUS.read_bytes()).hexdigest()[:16]
    where = out / "wheels" / f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}-{digest}"
    if not where.is_dir():
        part = where.with_name(where.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        print(f"downloading the corpus from PyPI into {where} (once)", file=sys.stderr)
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps",
             "--require-hashes", "-r", str(CORPUS), "--index-url", "https://pypi.org/simple",
             "-d", str(part)], env=clean_env(), check=True)
        part.rename(where)
    return sorted(where.glob("*.whl"))


def _core_metadata(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return zf.read(name)


class PyPILike:
    """Answers as PyPI gives them: its Cache-Control headers (pip's HTTP cache and uv's
    cache depend on them), and PEP 658 metadata next to each wheel (without it, uv
    downloads every wheel twice: once for its metadata, once to install it)."""

    def __init__(self, wheels: Sequence[Path]) -> None:
        self.metadata = {f"/files/{w.name}.metadata": _core_metadata(w) for w in wheels}

    def __call__(self, exchange: Exchange) -> None:
        path = urlsplit(exchange.handler.path).path
        status, headers, body = exchange.status, dict(exchange.headers), exchange.body
        if path in self.metadata:
            status, body = 200, self.metadata[path]
            headers["Content-Type"] = "application/octet-stream"
        elif headers.get("Content-Type") == JSON_TYPE and status == 200:
            page = json.loads(body)
            for entry in page.get("files", ()):
                data = self.metadata.get(f"/files/{entry['filename']}.metadata")
                if data is not None:
                    entry["core-metadata"] = {"sha256": hashlib.sha256(data).hexdigest()}
            body = json.dumps(page).encode()
        cache = FILE_CACHE_CONTROL if path.startswith("/files/") else PAGE_CACHE_CONTROL
        headers.update({"Cache-Control": cache, "Content-Length": str(len(body))})
        exchange.send_head(status, headers)
        if exchange.handler.command != "HEAD":
            exchange.write(body)


@contextmanager
def local_index(wheels: Sequence[Path], work: Path) -> Iterator[tuple[LocalIndex, Path]]:
    import trustme

    ca = trustme.CA()
    with LocalIndex(ca, work / "index") as index:
        for wheel in wheels:
            index.add(wheel)
        index.misbehave("", PyPILike(wheels), times=10**12)
        yield index, ca_bundle(ca, work)


# --- measuring -----------------------------------------------------------------------------

@dataclass
class Sample:
    seconds: float
    cpu: float  # user + system time of the process and its children
    extra: dict[str, Any]


def timed(cmd: Sequence[str], env: Mapping[str, str], cwd: Path) -> Sample:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,  # noqa: S603
                          check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(seconds, cpu, {})


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


@dataclass
class Context:
    work: Path
    index: LocalIndex
    ca: Path
    wheels: list[Path]

    @property
    def index_url(self) -> str:
        return self.index.url


def new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)],  # noqa: S603
                   check=True)
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_command(tool: str, ctx: Context, python: Path, cache: Path,
                    pyc: bool) -> tuple[list[str], dict[str, str]]:
    reqs = ["--require-hashes", "-r", str(CORPUS), "--index-url", ctx.index_url]
    if tool == "secinstall":
        cmd = [sys.executable, "-m", "secinstall", "install", "--python", str(python), *reqs,
               "--cert", str(ctx.ca), "--cache-dir", str(cache)]
        return cmd + ([] if pyc else ["--no-compile"]), clean_env(keep_pythonpath=True)
    if tool == "pip":
        cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", *reqs,
               "--cert", str(ctx.ca), "--cache-dir", str(cache)]
        return cmd + ([] if pyc else ["--no-compile"]), clean_env()
    cmd = [uv_binary(), "pip", "install", "--no-config", "--python", str(python), *reqs,
           "--cache-dir", str(cache)]
    # uv trusts the CA in SSL_CERT_FILE (its default roots are webpki's).
    return cmd + (["--compile-bytecode"] if pyc else []), clean_env(SSL_CERT_FILE=str(ctx.ca))


def installed(venv: Path) -> tuple[int, int, int]:
    """(distributions, .py files, .pyc files) in the environment's site-packages."""
    dists = py = pyc = 0
    for site in venv.glob("lib/python*/site-packages") if os.name != "nt" \
            else [venv / "Lib" / "site-packages"]:
        for _dirpath, dirnames, filenames in os.walk(site):
            dists += sum(d.endswith(".dist-info") for d in dirnames)
            py += sum(f.endswith(".py") for f in filenames)
            pyc += sum(f.endswith(".pyc") for f in filenames)
    return dists, py, pyc


def install_once(tool: str, ctx: Context, cache: Path, pyc: bool, n: int) -> Sample:
    venv = ctx.work / f"venv-{tool}-{n}"
    python = new_venv(venv)
    cmd, env = install_command(tool, ctx, python, cache, pyc)
    seen = len(ctx.index.requests)
    # The previous sample's files (deleted, or still being written back) are flushed to
    # disk first, so that this one doesn't pay for that work.
    os.sync()
    sample = timed(cmd, env, ctx.work)
    requests = ctx.index.requests[seen:]
    dists, py, pyc_files = installed(venv)
    # An install that left anything out, or compiled when told not to, doesn't count.
    if dists != len(ctx.wheels) or (pyc_files > 0) != pyc:
        sys.exit(f"{tool} installed {dists} of {len(ctx.wheels)} distributions with "
                 f"{pyc_files} .pyc files (pyc={pyc}): {' '.join(cmd)}")
    shutil.rmtree(venv)
    files = sum(p.startswith("/files/") and p.endswith(".whl") for p in requests)
    metadata = sum(p.endswith(".metadata") for p in requests)
    sample.extra = {"py": py, "pyc": pyc_files, "file_requests": files,
                    "metadata_requests": metadata,
                    "page_requests": len(requests) - files - metadata}
    return sample


def bench_installs(ctx: Context, tools: Sequence[str], repeat: int) -> dict[str, Any]:
    results: dict[str, dict[str, list[Sample]]] = {t: {s: [] for s in SCENARIOS} for t in tools}
    warm = {t: ctx.work / f"cache-warm-{t}" for t in tools}
    for t in tools:  # fill each warm cache with one untimed install
        install_once(t, ctx, warm[t], pyc=False, n=0)
    count = 0
    for rep in range(repeat):
        order = list(tools[rep % len(tools):]) + list(tools[:rep % len(tools)])
        for scenario in SCENARIOS:
            for t in order:
                count += 1
                cold = scenario.startswith("cold")
                cache = ctx.work / f"cache-cold-{t}-{count}" if cold else warm[t]
                sample = install_once(t, ctx, cache, pyc=scenario.endswith("-pyc"), n=count)
                if cold:
                    shutil.rmtree(cache, ignore_errors=True)
                results[t][scenario].append(sample)
                print(f"  [{rep + 1}/{repeat}] {scenario:10} {t:10} {sample.seconds:7.2f} s "
                      f"(cpu {sample.cpu:.2f} s)", file=sys.stderr)
    return {t: {s: {"seconds": summary([x.seconds for x in v]),
                    "cpu": summary([x.cpu for x in v]),
                    "samples": [asdict(x) for x in v]}
                for s, v in by.items()} for t, by in results.items()}


def bench_startup(repeat: int) -> dict[str, Any]:
    commands = {
        "secinstall --version": [sys.executable, "-m", "secinstall", "--version"],
        "secinstall --help": [sys.executable, "-m", "secinstall", "--help"],
        "secinstall install --help": [sys.executable, "-m", "secinstall", "install", "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "pip --version": [sys.executable, "-m", "pip", "--version"],
        "uv --version": [uv_binary(), "--version"],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    env = clean_env(keep_pythonpath=True)
    for _ in range(repeat):
        for name, cmd in commands.items():
            times[name].append(timed(cmd, env, ROOT).seconds)
    return {k: summary(v) for k, v in times.items()}


_ATTESTATION_PROBE = r"""
import hashlib, json, sys, time
start = time.perf_counter()
from secinstall.verify.attestations import load_provenance, verify_file
wheel, provenance, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
name = wheel.rsplit("/", 1)[-1]
data = open(provenance, "rb").read()
loaded = load_provenance(data, source=provenance)
verify_file(name, digest, loaded)
cold = time.perf_counter() - start
count = sum(len(b.attestations) for b in loaded.bundles)
load, verify = [], []
for _ in range(repeat):
    t0 = time.perf_counter()
    loaded = load_provenance(data, source=provenance)
    t1 = time.perf_counter()
    verify_file(name, digest, loaded)
    load.append(t1 - t0)
    verify.append((time.perf_counter() - t1) / count)
print(json.dumps({"cold": cold, "attestations": count, "load": load, "verify": verify}))
"""


def bench_attestation(fixtures: Path, repeat: int) -> dict[str, Any] | None:
    wheel = fixtures / ATTESTED
    if not (wheel.is_file() and Path(f"{wheel}.provenance").is_file()):
        print(f"skipping attestations: no {wheel}(.provenance)", file=sys.stderr)
        return None
    cold, load, verify = [], [], []
    for _ in range(max(1, repeat)):
        out = subprocess.run(  # noqa: S603
            [sys.executable, "-c", _ATTESTATION_PROBE, str(wheel), f"{wheel}.provenance", "10"],
            env=clean_env(keep_pythonpath=True), capture_output=True, text=True, check=True)
        data = json.loads(out.stdout)
        cold.append(data["cold"])
        load += data["load"]
        verify += data["verify"]
    return {"cold_first_call": summary(cold), "load_provenance": summary(load),
            "verify_per_attestation": summary(verify), "file": ATTESTED}


_LOWER_BOUND_PROBE = r"""
import hashlib, json, ssl, sys, time
from concurrent.futures import ThreadPoolExecutor
import urllib3
urls = json.loads(sys.stdin.read())
pool = urllib3.PoolManager(maxsize=8, ssl_context=ssl.create_default_context(cafile=sys.argv[1]))
def get(url):
    digest, size = hashlib.sha256(), 0
    resp = pool.request("GET", url, preload_content=False)
    for chunk in resp.stream(256 * 1024):
        digest.update(chunk)
        size += len(chunk)
    resp.release_conn()
    return size
start = time.perf_counter()
with ThreadPoolExecutor(8) as ex:
    total = sum(ex.map(get, urls))
print(json.dumps({"seconds": time.perf_counter() - start, "bytes": total}))
"""


def bench_lower_bound(ctx: Context, urls: Sequence[str], repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(  # noqa: S603
            [sys.executable, "-c", _LOWER_BOUND_PROBE, str(ctx.ca)], input=json.dumps(urls),
            env=clean_env(), capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    return {"seconds": summary([r["seconds"] for r in runs]), "bytes": runs[0]["bytes"]}


_FRAGMENT_PROBE = r"""
import hashlib, json, sys, tempfile, time, zipfile
from pathlib import Path
from secinstall.fragment import FragmentBuilder
from secinstall.models import FetchedFile, IndexFile, Plan, PlannedDist, VerifiedDist
from secinstall.pipeline import Outcome
from secinstall.target import resolve_target
from secinstall.unpack import Unpacked
from secinstall.verify.wheel import check_wheel
from packaging.utils import canonicalize_name, parse_wheel_filename

base, repeat, wheels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
target = resolve_target()
trees = Path(tempfile.mkdtemp())
inputs = []
for i, path in enumerate(map(Path, wheels)):
    name, version, _, _ = parse_wheel_filename(path.name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    file = IndexFile(filename=path.name, url=f"{base}/files/{path.name}",
                     hashes={"sha256": digest}, origin=base + "/simple/")
    planned = PlannedDist(name=canonicalize_name(name), version=str(version), file=file,
                          pinned={"sha256": frozenset({digest})}, requested=True)
    fetched = FetchedFile(dist=planned, path=path, hashes={"sha256": digest},
                          size=path.stat().st_size, from_cache=True)
    info = check_wheel(fetched, ())
    root = trees / str(i)
    with zipfile.ZipFile(path) as zf:  # the dist-info is all a fragment reads
        zf.extractall(root, [n for n in zf.namelist() if n.startswith(info.dist_info_dir + "/")])
    inputs.append((VerifiedDist(fetched=fetched, hash_sources=("index", "user"),
                                attestation_note="no provenance"),
                   Unpacked(fetched=fetched, info=info, root=root, bytecode={})))
verified = [v for v, _ in inputs]
outcome = Outcome(target=target, plan=Plan(items=tuple(v.dist for v in verified),
                                           resolver="pinned"), verified=verified)
runs = []
for _ in range(repeat):
    start = time.perf_counter()
    builder = FragmentBuilder()
    for v, tree in inputs:
        builder.verified(v, tree)
    builder.send(outcome, indexes=[base + "/simple/"], weakened=[])
    assert builder.result() is not None, "the fragment's process failed"
    runs.append(time.perf_counter() - start)
print(json.dumps({"seconds": runs}))
"""


def bench_fragment(ctx: Context, repeat: int) -> dict[str, Any]:
    """The SBOM fragment of the corpus alone: its process started, every wheel's part made
    and the document written, as a warm install does, with every input at hand at once.
    However fast the rest of an install, it ends no sooner than this."""
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _FRAGMENT_PROBE, ctx.index.base_url,
         str(repeat), *map(str, ctx.wheels)],
        env=clean_env(keep_pythonpath=True), capture_output=True, text=True, check=True)
    return {"seconds": summary(json.loads(out.stdout)["seconds"])}


def profile(ctx: Context, out: Path, clock: str) -> None:
    """One cold and one warm secinstall install, profiled (.bench/profile-*.prof, .txt)."""
    import io
    import pstats

    cache = ctx.work / "cache-profile"
    for name in ("cold", "warm"):
        venv = ctx.work / f"venv-profile-{name}"
        python = new_venv(venv)
        cmd, env = install_command("secinstall", ctx, python, cache, pyc=True)
        prof = out / f"profile-{name}-{clock}.prof"
        cmd = [sys.executable, str(HERE / "profile_install.py"), str(prof), clock, *cmd[3:]]
        sample = timed(cmd, env, ctx.work)
        shutil.rmtree(venv)
        text = io.StringIO()
        stats = pstats.Stats(str(prof), stream=text)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        report = (f"# secinstall {name} install, profiled ({clock} clock): "
                  f"{sample.seconds:.2f} s\n{text.getvalue()}")
        prof.with_suffix(".txt").write_text(report, encoding="utf-8")
        print(report)
    shutil.rmtree(cache, ignore_errors=True)


# --- reporting -----------------------------------------------------------------------------

def _fmt(s: Mapping[str, float] | None, unit: str = "s") -> str:
    if s is None:
        return "n/a"
    scale, digits = (1000.0, 1) if unit == "ms" else (1.0, 2)
    return (f"{s['median'] * scale:.{digits}f} {unit} "
            f"({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f})")


def _requests(result: Mapping[str, Any]) -> str:
    extra = result["samples"][-1]["extra"]
    return f"{extra['page_requests']}+{extra['metadata_requests']}+{extra['file_requests']}"


def _load(load: Sequence[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in load)


def targets(res: Mapping[str, Any]) -> list[tuple[str, float | None, str, bool | None]]:
    """The issue's targets: (what, measured, goal, met)."""
    inst = res["installs"]

    def med(tool: str, scenario: str) -> float | None:
        if tool not in inst:
            return None
        return float(inst[tool][scenario]["seconds"]["median"])

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b

    rows: list[tuple[str, float | None, str, bool | None]] = []
    for what, scenario, other, limit in (
            ("cold, with .pyc: secinstall / pip", "cold-pyc", "pip", 0.4),
            ("cold, without .pyc: secinstall / uv", "cold-nopyc", "uv", 1.5),
            ("warm, with .pyc: secinstall / uv", "warm-pyc", "uv", 2.0),
            ("warm, without .pyc: secinstall / uv", "warm-nopyc", "uv", 2.0)):
        r = ratio(med("secinstall", scenario), med(other, scenario))
        rows.append((what, r, f"≤ {limit}x", None if r is None else r <= limit))
    for what, key, limit_ms in (("`secinstall --version`", "secinstall --version", 100),
                                ("`secinstall --help`", "secinstall --help", 200)):
        v = res["startup"][key]["median"] if res.get("startup") else None
        rows.append((what, v, f"< {limit_ms} ms", None if v is None else v * 1000 < limit_ms))
    att = res.get("attestation")
    # Per file, on one core, the interpreter warm: reading its provenance and verifying
    # its attestation (the fixture has one). Overlapped with downloads by the pipeline.
    v = (att["load_provenance"]["median"] + att["verify_per_attestation"]["median"]
         if att else None)
    rows.append(("attestation verification per file", v, "< 10 ms",
                 None if v is None else v * 1000 < 10))
    return rows


def markdown(res: Mapping[str, Any]) -> str:
    meta = res["meta"]
    lines = [f"# secinstall benchmark, {meta['date']}", "",
             f"{meta['wheels']} wheels ({meta['megabytes']:.1f} MB) from "
             f"`benchmarks/corpus.txt`, local HTTPS index; Python {meta['python']} on "
             f"{meta['platform']}, {meta['cpus']} CPUs; {meta['repeat']} repetitions, "
             "median (min-max) wall time; each install into a fresh venv.",
             f"Tools: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.",
             f"Load average (1, 5, 15 min) before: {_load(meta['load_before'])}, after: "
             f"{_load(meta['load_after'])}.", ""]
    if max(meta["load_before"][0], meta["load_after"][0]) > (meta["cpus"] or 1):
        lines += ["**The machine was busy with other work (load above its CPU count): wall "
                  "times are inflated and noisy; compare ratios, and CPU seconds.**", ""]
    inst = res["installs"]
    tools = list(inst)
    lines += ["| install | " + " | ".join(tools) + " | secinstall / pip | secinstall / uv |",
              "|---" * (len(tools) + 3) + "|"]
    for scenario in SCENARIOS:
        cells = [_fmt(inst[t][scenario]["seconds"]) for t in tools]
        ratios = []
        for other in ("pip", "uv"):
            if "secinstall" in inst and other in inst:
                a = inst["secinstall"][scenario]["seconds"]["median"]
                ratios.append(f"{a / inst[other][scenario]['seconds']['median']:.2f}x")
            else:
                ratios.append("n/a")
        lines.append(f"| {scenario} | " + " | ".join(cells + ratios) + " |")
    lines += ["", "CPU seconds (user+system, median): " + "; ".join(
        f"{t} " + ", ".join(f"{s} {inst[t][s]['cpu']['median']:.1f}" for s in SCENARIOS)
        for t in tools),
        "", "Index requests per install (pages + PEP 658 metadata + wheels): " + "; ".join(
        f"{t} " + ", ".join(f"{s} {_requests(inst[t][s])}" for s in SCENARIOS)
        for t in tools), ""]
    lines += ["| measure | median (min-max) |", "|---|---|"]
    for name, s in (res.get("startup") or {}).items():
        lines.append(f"| `{name}` | {_fmt(s, 'ms')} |")
    att = res.get("attestation")
    if att:
        lines.append(f"| attestation: `verify_file` per attestation, warm | "
                     f"{_fmt(att['verify_per_attestation'], 'ms')} |")
        lines.append(f"| attestation: `load_provenance`, warm | "
                     f"{_fmt(att['load_provenance'], 'ms')} |")
        lines.append(f"| attestation: first call in a new process (imports, trust root, "
                     f"load, verify) | {_fmt(att['cold_first_call'], 'ms')} |")
    frag = res.get("fragment")
    if frag:
        lines.append(f"| SBOM fragment alone: its process, every part and the document, "
                     f"inputs at hand | {_fmt(frag['seconds'])} |")
    lb = res.get("lower_bound")
    if lb:
        lines.append(f"| lower bound: download + sha256 of every file (8 threads) | "
                     f"{_fmt(lb['seconds'])} |")
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for what, value, goal, met in targets(res):
        shown = "n/a" if value is None else (f"{value * 1000:.3g} ms" if "ms" in goal
                                             else f"{value:.2f}x")
        lines.append(f"| {what} | {shown} | {goal} | "
                     f"{'n/a' if met is None else 'yes' if met else 'NO'} |")
    uv_warm = inst.get("uv", {}).get("warm-nopyc")
    if frag and uv_warm:
        # The floor of a warm install: its record is written before it commits.
        lines += ["", f"The SBOM fragment alone takes "
                  f"{frag['seconds']['median'] / uv_warm['seconds']['median']:.1f}x uv's "
                  "whole warm install without .pyc."]
    return "\n".join(lines) + "\n"


def versions(tools: Sequence[str]) -> dict[str, str]:
    from importlib.metadata import version

    found = {}
    for t in tools:
        if t == "uv":
            out = subprocess.run([uv_binary(), "--version"], capture_output=True,  # noqa: S603
                                 text=True, check=True).stdout.split()
            found[t] = out[1] if len(out) > 1 else "?"
        else:
            import importlib

            found[t] = str(getattr(importlib.import_module(t), "__version__", None)
                           or version(t))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each install")
    parser.add_argument("--startup-repeat", type=int, default=15,
                        help="repetitions of each start-up command")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="comma-separated subset of secinstall,pip,uv")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench", help="results and caches")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES,
                        help="directory with the PEP 740 fixture wheel and its provenance")
    parser.add_argument("--profile", nargs="?", const="wall", choices=("wall", "cpu"),
                        help="instead, profile one cold and one warm secinstall install "
                             "(cProfile, every thread; clock: wall (default) or cpu)")
    parser.add_argument("--update-corpus", action="store_true",
                        help="re-resolve corpus.in into corpus.txt from PyPI, then stop")
    args = parser.parse_args(argv)
    if args.update_corpus:
        update_corpus()
        return 0
    tools = [t for t in args.tools.split(",") if t]
    if unknown := set(tools) - set(TOOLS):
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    wheels = corpus_wheels(out)
    work = out / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    started = time.perf_counter()
    try:
        with local_index(wheels, work) as (index, ca):
            ctx = Context(work=work, index=index, ca=ca, wheels=wheels)
            if args.profile:
                profile(ctx, out, args.profile)
                return 0
            urls = [f"{index.base_url}/files/{w.name}" for w in wheels]
            res: dict[str, Any] = {"meta": {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "python": platform.python_version(), "platform": sysconfig.get_platform(),
                "cpus": os.cpu_count(), "load_before": os.getloadavg(),
                "repeat": args.repeat, "wheels": len(wheels),
                "megabytes": sum(w.stat().st_size for w in wheels) / 1e6,
                "versions": versions(tools)}}
            print("start-up", file=sys.stderr)
            res["startup"] = bench_startup(args.startup_repeat)
            print("attestation verification", file=sys.stderr)
            res["attestation"] = bench_attestation(args.fixtures, min(args.repeat, 3))
            print("lower bound", file=sys.stderr)
            res["lower_bound"] = bench_lower_bound(ctx, urls, args.repeat)
            print("SBOM fragment", file=sys.stderr)
            res["fragment"] = bench_fragment(ctx, max(5, args.repeat))
            print("installs", file=sys.stderr)
            res["installs"] = bench_installs(ctx, tools, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["meta"]["bench_seconds"] = time.perf_counter() - started
    res["meta"]["load_after"] = os.getloadavg()
    res["targets"] = [{"what": w, "measured": v, "goal": g, "met": m}
                      for w, v, g, m in targets(res)]
    text = markdown(res)
    (out / "results.md").write_text(text, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(text)
    print(f"({res['meta']['bench_seconds']:.0f} s; written to {out}/results.md and "
          "results.json)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
