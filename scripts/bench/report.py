#!/usr/bin/env python3
"""Turns the JSON lines of scripts/bench.sh into a Markdown table with the
ratios to the baselines and the targets of issue 7, prints it, and writes it
into BENCHMARKS.md between the markers of the store (the rest of the file,
the analysis, is kept as written)."""

import datetime
import json
import os
import platform
import sys

results_path, store, connections, duration = sys.argv[1:5]
# Which part of BENCHMARKS.md the table goes into (default: the store's).
section = sys.argv[5] if len(sys.argv) > 5 else store
rows = [json.loads(line) for line in open(results_path) if line.strip()]


def one(kind, **match):
    for r in rows:
        if r["kind"] == kind and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    return (f"{model}, {os.cpu_count()} cores, {mem_kib / 1024 / 1024:.0f} GiB RAM, "
            f"Linux {platform.release()}; load generator (wrk) on the same cores")


argon = one("argon2")
ms = lambda us: f"{us / 1000:.2f}"
lines = [
    f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
    f"{duration} s per scenario, {connections} connections, 2 wrk threads; store: {store}.",
    "",
    f"Baseline (b), argon2id verifications on all cores "
    f"(m={argon['memory_kib']} KiB, t={argon['iterations']}, p={argon['parallelism']}, "
    f"{argon['cores']} cores): **{argon['argon2_verifications_per_sec']:.1f}/s**.",
]

for subjects in sorted({r["subjects"] for r in rows if "subjects" in r}):
    scenarios = [r for r in rows if r["kind"] == "scenario" and r["subjects"] == subjects]
    baseline = next((r for r in scenarios if r["name"].startswith("baseline (a)")), None)
    startup = one("startup", subjects=subjects)
    writes = one("writes", subjects=subjects)
    lines += [
        "",
        f"### {store}, {subjects:,} subjects",
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | server peak RSS MB | server CPU % | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in scenarios:
        ratio = ""
        if r["name"].startswith("2 ") and baseline:
            ratio = f"{r['rps'] / baseline['rps']:.0%} of baseline (a)"
        if r["name"].startswith("5 ") and argon:
            ratio = f"{r['rps'] / argon['argon2_verifications_per_sec']:.0%} of baseline (b)"
        lines.append(
            f"| {r['name']} | {r['rps']:,.0f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | "
            f"{r['errors']} | {r['peak_rss_mb']:.1f} | {r['cpu_pct']:.0f} | {ratio} |")
    if startup:
        lines.append("")
        lines.append(f"Start-up to first answered request: {startup['ms']} ms.")
    if writes and writes["stored"] is None:
        lines.append(f"Writes: {writes['acknowledged']:,} acknowledged; the store did not answer "
                     f"the count of stored ones in time, so losses are not checked.")
    elif writes:
        lost = writes["acknowledged"] - writes["stored"]
        lines.append(f"Writes: {writes['acknowledged']:,} acknowledged, {writes['stored']:,} "
                     f"stored, {max(lost, 0)} lost.")

    export = one("csv_export", subjects=subjects)
    imported = one("csv_import", subjects=subjects)
    round_trip = one("csv_round_trip", subjects=subjects)
    if export:
        lines.append(f"CSV export of the whole list ({export['rows']:,} rows): {export['seconds']:.2f} s, "
                     f"server RSS +{export['rss_growth_mb']} MB.")
    if imported:
        lines.append(f"CSV import of {imported['rows']:,} rows: dry run {imported['dry_run_seconds']:.2f} s, "
                     f"import {imported['seconds']:.2f} s ({imported['imported']:,} imported).")
    if round_trip:
        same = "byte-identical" if round_trip["identical"] else "**different**"
        lines.append(f"CSV round trip ({round_trip['rows']:,} rows exported, imported into an empty store "
                     f"in {round_trip['import_seconds']:.1f} s, exported again): {same}.")

table = "\n".join(lines) + "\n"
print(table)

if not any(r["kind"] == "scenario" for r in rows):
    # BENCH_CSV_ONLY: the tables of a full run stay as they are.
    print("no wrk scenarios in this run (BENCH_CSV_ONLY): BENCHMARKS.md left as it is", file=sys.stderr)
    sys.exit(0)

start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
path = "BENCHMARKS.md"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
if start in text and end in text:
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    text = before + start + "\n" + table + end + after
else:
    text = text.rstrip("\n") + f"\n\n## Results: {section}\n\n{start}\n{table}{end}\n"
open(path, "w").write(text)
print(f"written to {path}", file=sys.stderr)
