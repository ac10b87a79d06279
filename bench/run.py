"""`make bench`: push, pull and request rates of the registry and the CNCF reference registry,
measured alternately in one run, beside raw Azurite transfers of the same bytes.

    python -m bench.run [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench import measure
from bench.images import big_image, small_image
from bench.prereqs import MissingTool, ensure_tools
from bench.report import RAW, REFERENCE, REGISTRY, Metric, Results, Target, table, text_table, write
from bench.servers import PeakRss, ReferenceRegistry, Registry, Server, cpu_seconds
from scripts.azurite import ROOT, Azurite

MiB = 1024 * 1024


def _scratch() -> Path:
    # Pulls land in memory when /dev/shm exists, so the disk does not blur the comparison.
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
    return Path(tempfile.mkdtemp(prefix="bench-", dir=base))


def _in_turn(run: int, steps: list[tuple[str, Callable[[], None]]]) -> None:
    """Run each step once, the first one rotating between runs so no side always goes first."""
    first = run % len(steps)
    for _, step in steps[first:] + steps[:first]:
        step()


def one_run(run: int, results: Results, registry: Registry, reference: ReferenceRegistry, azurite: Azurite,
            big: int, load_seconds: float, work: Path) -> None:
    """One round of every measurement, the registry, the reference and raw Azurite in turn."""
    servers: list[Server] = [registry, reference]
    images = Path(tempfile.mkdtemp(prefix="bench-images-", dir=work))
    try:
        layer_digest, layer_size = big_image(images / "big", big)
        small_image(images / "small")
        layer_file = images / "big" / "blobs" / "sha256" / layer_digest.partition(":")[2]
        mib = layer_size / MiB
        size = f"{big // MiB} MiB"
        push_big = results.metric("push_big", f"push {size} layer (skopeo; raw: SDK blocks)", "MiB/s", True)
        push_cpu = results.metric("push_cpu", f"  CPU per push of {size}, server + storage", "s", False)
        push_own = results.metric("push_own", "  of which the registry process", "s", False)
        rss = results.metric("rss_big", f"peak RSS during push of {size}", "MiB", False)
        pull_big = results.metric("pull_big", f"pull {size} layer (skopeo)", "MiB/s", True)
        get_blob = results.metric("get_blob", f"GET {size} blob (curl; registry: via redirect)", "MiB/s", True)
        big_repo, small_repo = f"big{run}", f"small{run}"
        container = f"raw{uuid.uuid4().hex[:12]}"
        measure.create_container(azurite.connection_string, container)
        raw_url = measure.sas_url(azurite.blob_port, container, "layer")

        def push(server: Server) -> None:
            cpu, own = cpu_seconds(*server.pids), cpu_seconds(server.pid)
            with PeakRss(server.pid) as peak:
                seconds = measure.skopeo_push(images / "big", server.host, big_repo, server.creds)
            push_cpu.add(server.name, cpu_seconds(*server.pids) - cpu)
            if server is registry:
                push_own.add(server.name, cpu_seconds(server.pid) - own)
            push_big.add(server.name, mib / seconds)
            rss.add(server.name, peak.peak / MiB)

        def raw_push() -> None:
            cpu = cpu_seconds(registry.storage_pid)
            push_big.add(RAW, mib / measure.raw_upload(azurite.connection_string, container, "layer", layer_file))
            push_cpu.add(RAW, cpu_seconds(registry.storage_pid) - cpu)

        _in_turn(run, [*((s.name, partial(push, s)) for s in servers), (RAW, raw_push)])

        get_cpu = results.metric("get_cpu", f"  CPU per GET of {size}, server + storage", "s", False)

        def get(name: str, url: str, pids: tuple[int, ...], headers: dict[str, str] | None = None) -> None:
            cpu = cpu_seconds(*pids)
            seconds, got = measure.curl_get(url, headers)
            assert got == layer_size, f"{name} served {got} bytes of {layer_size}"
            get_blob.add(name, mib / seconds)
            get_cpu.add(name, cpu_seconds(*pids) - cpu)

        for _ in range(3):  # one GET takes about a second: repeat it to steady the median
            _in_turn(run, [
                *((s.name, partial(get, s.name, f"{s.url}/v2/{big_repo}/blobs/{layer_digest}", s.pids,
                                  s.headers(big_repo)))
                  for s in servers),
                (RAW, partial(get, RAW, raw_url, (registry.storage_pid,))),
            ])

        def pull(server: Server) -> None:
            pull_big.add(server.name, mib / measure.skopeo_pull(server.host, big_repo, work, server.creds))

        _in_turn(run, [(s.name, partial(pull, s)) for s in servers])

        push_small = results.metric("push_small", "push 50 small layers (skopeo)", "s", False)
        pull_small = results.metric("pull_small", "pull 50 small layers (skopeo)", "s", False)
        many = results.metric("pulls_20", "20 concurrent pulls of 50 layers", "s", False)
        ok = results.metric("pulls_20_ok", "  of which succeeded", "pulls", True)

        def small(server: Server) -> None:
            push_small.add(server.name, measure.skopeo_push(images / "small", server.host, small_repo, server.creds))
            pull_small.add(server.name, measure.skopeo_pull(server.host, small_repo, work, server.creds))
            seconds, succeeded = measure.concurrent_pulls(server.host, small_repo, work, creds=server.creds)
            many.add(server.name, seconds)
            ok.add(server.name, succeeded)

        _in_turn(run, [(s.name, partial(small, s)) for s in servers])

        for method in ("GET", "HEAD"):
            rate = results.metric(f"manifest_{method.lower()}", f"manifest {method} by tag, 16 connections",
                                  "req/s", True)
            cost = results.metric(f"manifest_{method.lower()}_cpu", f"  CPU per {method}, server + storage",
                                  "ms", False)

            def load(server: Server, method: str = method, rate: Metric = rate, cost: Metric = cost) -> None:
                cpu = cpu_seconds(*server.pids)
                started = time.perf_counter()
                per_second = measure.request_rate(f"{server.url}/v2/{small_repo}/manifests/latest", method,
                                                  load_seconds, headers=server.headers(small_repo))
                requests = per_second * (time.perf_counter() - started)
                rate.add(server.name, per_second)
                cost.add(server.name, (cpu_seconds(*server.pids) - cpu) / requests * 1000)

            _in_turn(run, [(s.name, partial(load, s)) for s in servers])
        print(f"  run {run + 1} done", flush=True)
    finally:
        shutil.rmtree(images, ignore_errors=True)


def once(results: Results, registry: Registry, big: int, work: Path) -> None:
    """Measured once: RSS against layer size, and a 1 GiB streamed push's commit against a 1 MiB one."""
    images = Path(tempfile.mkdtemp(prefix="bench-images-", dir=work))
    try:
        big_image(images / "quarter", big // 4)
        with PeakRss(registry.pid) as peak:
            measure.skopeo_push(images / "quarter", registry.host, "quarter", registry.creds)
        results.figures[f"registry peak RSS, push of {big // 4 // MiB} MiB (MiB)"] = peak.peak / MiB
    finally:
        shutil.rmtree(images, ignore_errors=True)
    streamed = 1024 * MiB if big >= 512 * MiB else big
    with PeakRss(registry.pid) as peak:
        patch, put = measure.streamed_push(registry.url, "streamed", streamed, registry.login)
    results.figures[f"registry peak RSS, streamed push of {streamed // MiB} MiB, one PATCH (MiB)"] = peak.peak / MiB
    results.figures[f"streamed push of {streamed // MiB} MiB: PATCH (MiB/s)"] = streamed / MiB / patch
    results.figures[f"streamed push of {streamed // MiB} MiB: final PUT (ms)"] = put * 1000
    small_puts = sorted(measure.streamed_push(registry.url, "streamed", MiB, registry.login)[1] for _ in range(5))
    results.figures["streamed push of 1 MiB: final PUT, median of 5 (ms)"] = small_puts[2] * 1000


def judge(results: Results, rss_limit_mib: float = 150) -> None:
    """Check the issue's targets against the medians."""
    m = results.metrics
    checks = [
        ("blob pull >= 0.9 x raw Azurite download", m["get_blob"].ratio(RAW), 0.9, "curl GET via the redirect"),
        ("push >= 0.7 x raw Azurite upload", m["push_big"].ratio(RAW), 0.7, "skopeo"),
        ("manifest GET >= 0.5 x reference", m["manifest_get"].ratio(REFERENCE), 0.5, "16 connections"),
        ("manifest HEAD >= 0.5 x reference", m["manifest_head"].ratio(REFERENCE), 0.5, "16 connections"),
    ]
    for goal, ratio, floor, how in checks:
        results.targets.append(Target(goal, ratio is not None and ratio >= floor, f"{how}: {ratio or 0:.2f}x"))
    pulls = m["pulls_20_ok"].samples.get(REGISTRY, [])
    results.targets.append(Target("20 concurrent pulls all succeed", bool(pulls) and min(pulls) == 20,
                                  f"fewest successes in a run: {min(pulls, default=0):.0f}/20"))
    peaks = m["rss_big"].samples.get(REGISTRY, [])
    results.targets.append(Target(f"peak RSS during the big push < {rss_limit_mib:.0f} MB",
                                  bool(peaks) and max(peaks) * MiB < rss_limit_mib * 1e6,
                                  f"highest: {max(peaks, default=0):.0f} MiB"))
    small = next((v for k, v in results.figures.items() if k.startswith("registry peak RSS, push of")), None)
    if small is not None and peaks:
        grew = max(peaks) - small
        results.targets.append(Target("peak RSS does not grow with layer size", grew < 16,
                                      f"{grew:+.0f} MiB from a quarter-size layer to the full one"))


def main() -> int:
    """Install what is missing, start everything, measure, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="rounds of alternating measurements (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes and short loads, for development")
    args = parser.parse_args()
    try:
        ensure_tools()
    except MissingTool as error:
        print(f"make bench: {error}", file=sys.stderr)
        return 2
    big = 64 * MiB if args.quick else 512 * MiB
    load_seconds = 2.0 if args.quick else 5.0
    runs = min(args.runs, 2) if args.quick else args.runs
    results = Results(runs=runs, quick=args.quick)
    work = _scratch()
    try:
        with Azurite() as azurite, Registry(azurite) as registry, ReferenceRegistry() as reference:
            print(f"registry on {registry.url} (Azurite blob port {azurite.blob_port}), "
                  f"reference registry on {reference.url}", flush=True)
            for run in range(runs):
                one_run(run, results, registry, reference, azurite, big, load_seconds, work)
            once(results, registry, big, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    judge(results)
    rows = table(results)
    print()
    print(text_table(rows))
    for label, value in results.figures.items():
        print(f"{label}: {value:,.1f}")
    for target in results.targets:
        print(f"{'met   ' if target.met else 'MISSED'} {target.goal} ({target.detail})")
    write(results, ROOT / "bench" / "results" / "latest.json", ROOT / "docs" / "benchmarks.md")
    print("\nwritten: bench/results/latest.json, docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
