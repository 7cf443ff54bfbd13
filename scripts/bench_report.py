#!/usr/bin/env python3
"""Turns the raw output of scripts/bench.sh into docs/benchmarks/results.json,
two gnuplot charts and docs/benchmarks.md, and prints the targets table.

    scripts/bench_report.py --run-dir DIR --out docs/benchmarks --command "scripts/bench.sh" ...

DIR holds what bench.sh collected: runs.jsonl (one distdb-bench report per
line, with workload, threads and target), failover.jsonl, catchup.json,
soak.jsonl, started.txt, uptime-start.txt, uptime-end.txt. Standard library
only; gnuplot must be on PATH for the charts.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

WORKLOAD_TITLES = {"insert": "insert", "point-select": "point select", "mixed": "mixed (50% reads)"}

# Memory counts as flat when it grows by less than this share over the
# second half of the soak: a leak keeps growing, whereas memory that fills
# up to a bound early on then stays.
RSS_FLAT_GROWTH = 0.10


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_text(path, default=""):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return default


def machine_info(mariadb_version):
    cpu = "unknown"
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    try:
        revision = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                  check=False).stdout.strip()
    except OSError:
        revision = ""
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "mariadb": mariadb_version,
        "distdb_revision": revision or "unknown",
    }


# --- figures ------------------------------------------------------------------


def run_of(runs, workload, threads, target):
    for r in runs:
        if r["workload"] == workload and r["threads"] == threads and r["target"] == target:
            return r["result"]
    return None


def latency_ms(result, key, kind=None):
    """A latency percentile in ms: of all statements, or of reads / writes only."""
    lat = result[kind]["latency_us"] if kind else result["latency_us"]
    return lat[key] / 1000.0


def ratio(a, b):
    return a / b if b else None


def failover_figures(entry):
    """The time from the kill to the first write acknowledged after it, from
    the per-interval timeline: completions right at the kill can still be
    acknowledgements the old coordinator sent before it died, so the count
    starts from the first interval with no success at all, and ends at the end
    of the next interval with one (an upper bound, to one interval)."""
    result = entry["result"]
    timeline = result.get("timeline")
    figures = {"run": entry["run"], "killed_node": entry["killed_node"],
               "new_coordinator": entry["new_coordinator"], "errors": result.get("errors"),
               "errors_by_kind": {k: v["count"] for k, v in result.get("errors_by_kind", {}).items()},
               "first_write_after_kill_ms": None, "elected_after_kill_ms": elected_after_kill_ms(entry),
               "note": ""}
    if not timeline:
        figures["note"] = "no timeline (the load did not run)"
        return figures
    interval = timeline["interval_ms"]
    ok = timeline["ok"]
    first = (entry["kill_unix_ms"] - timeline["start_unix_ms"]) // interval
    if first < 0:
        figures["note"] = "the kill came before the load started"
        return figures
    quiet = next((i for i in range(first, min(first + 5, len(ok))) if ok[i] == 0), None)
    if quiet is None:
        figures["note"] = "writes went on through the kill"
        return figures
    back = next((i for i in range(quiet, len(ok)) if ok[i] > 0), None)
    if back is None:
        figures["note"] = "no write succeeded after the kill before the load ended"
        return figures
    end_ms = timeline["start_unix_ms"] + (back + 1) * interval
    figures["first_write_after_kill_ms"] = end_ms - entry["kill_unix_ms"]
    figures["resolution_ms"] = interval
    return figures


def elected_after_kill_ms(entry):
    """From the kill to the new coordinator's "This node is now the
    coordinator" log line, whose time stamp is the local time of day."""
    clock = entry.get("elected_clock") or ""
    try:
        h, m, sec = clock.split(":")
        elected = (int(h) * 3600 + int(m) * 60) * 1000 + round(float(sec) * 1000)
    except ValueError:
        return None
    kill = datetime.datetime.fromtimestamp(entry["kill_unix_ms"] / 1000.0)
    killed = ((kill.hour * 60 + kill.minute) * 60 + kill.second) * 1000 + kill.microsecond // 1000
    return (elected - killed) % 86400000


def catchup_figures(c):
    if not c:
        return None
    seconds = c["catch_up_ms"] / 1000.0
    return dict(c, entries=c["to_seq"] - c["from_seq"], writes_per_s=c["writes"] / seconds if seconds else None,
                entries_per_s=(c["to_seq"] - c["from_seq"]) / seconds if seconds else None,
                cluster_writes_per_s_while_stopped=c["writes"] / (c["write_ms"] / 1000.0) if c["write_ms"] else None)


def xa_cost_figures(x):
    if not x or not x.get("transactions"):
        return None
    n = x["transactions"]
    plain, xa = x["plain_ms"] / n, x["xa_ms"] / n
    return dict(x, plain_ms_each=plain, xa_ms_each=xa, ratio=xa / plain if plain else None)


def soak_figures(samples):
    if not samples:
        return None
    nodes = {}
    for node in sorted(samples[0]["rss_kb"]):
        series = [s["rss_kb"][node] for s in samples if s["rss_kb"].get(node) is not None]
        if not series:
            continue
        half = series[len(series) // 2]
        nodes[node] = {"start_mib": series[0] / 1024, "half_mib": half / 1024, "end_mib": series[-1] / 1024,
                       "max_mib": max(series) / 1024, "growth": series[-1] / half - 1 if half else None}
    return {"duration_s": samples[-1]["t_s"], "samples": len(samples), "nodes": nodes}


# --- targets ------------------------------------------------------------------


def target_rows(runs, failovers, catchup, soak):
    """(what, measured text, target text, verdict) for each target of the issue."""
    rows = []

    def compare(what, measured, at_least, goal, shown, target_text):
        if measured is None:
            rows.append((what, "not measured", target_text, "—"))
            return
        ok = measured >= goal if at_least else measured <= goal
        rows.append((what, shown, target_text, "PASS" if ok else "MISS"))

    for workload, goal, name in (("insert", 0.35, "inserts/s"), ("point-select", 0.70, "point selects/s")):
        d, c = run_of(runs, workload, 16, "direct"), run_of(runs, workload, 16, "cluster")
        r = ratio(c["throughput_ops_s"], d["throughput_ops_s"]) if d and c else None
        compare(f"cluster {name} at 16 threads / direct", r, True, goal,
                r is not None and f"{r:.2f} ({c['throughput_ops_s']:.0f} / {d['throughput_ops_s']:.0f})",
                f"≥ {goal:.2f}")
    for workload, kind, goal, name in (("insert", "writes", 4.0, "write"), ("point-select", "reads", 1.5, "read")):
        d, c = run_of(runs, workload, 1, "direct"), run_of(runs, workload, 1, "cluster")
        r = ratio(latency_ms(c, "p50", kind), latency_ms(d, "p50", kind)) if d and c else None
        compare(f"single-thread {name} p50, cluster / direct", r, False, goal,
                r is not None and f"{r:.2f} ({latency_ms(c, 'p50', kind):.3f} / {latency_ms(d, 'p50', kind):.3f} ms)",
                f"≤ {goal:.1f}")
    times = [f["first_write_after_kill_ms"] for f in failovers]
    if failovers and None not in times:
        worst = max(times)
        compare("kill -9 of the coordinator → first write acknowledged (worst run)", worst / 1000.0, False, 1.5,
                f"{worst / 1000.0:.2f} s (runs: {', '.join(f'{t / 1000.0:.2f}' for t in times)})", "≤ 1.5 s")
    else:
        compare("kill -9 of the coordinator → first write acknowledged", None, False, 1.5, "", "≤ 1.5 s")
        if failovers:
            rows[-1] = (rows[-1][0], "no write after the kill in some run", rows[-1][2], "MISS")
    if catchup:
        compare(f"catch-up of a node {catchup['writes']:,} writes behind", catchup["writes_per_s"], True, 20000,
                f"{catchup['writes_per_s']:,.0f} writes/s ({catchup['catch_up_ms'] / 1000.0:.2f} s)",
                "≥ 20,000 writes/s")
    else:
        compare("catch-up of a node 100,000 writes behind", None, True, 20000, "", "≥ 20,000 writes/s")
    if soak and soak["nodes"]:
        growth = max(n["growth"] for n in soak["nodes"].values())
        ends = ", ".join(f"node {k} {n['start_mib']:.1f} → {n['end_mib']:.1f} MiB" for k, n in soak["nodes"].items())
        compare(f"node RSS over a {soak['duration_s'] / 60:.0f}-minute mixed load (largest growth in its second "
                "half)", growth, False, RSS_FLAT_GROWTH, f"{growth * 100:+.1f} % (start → end: {ends})",
                f"flat (≤ +{RSS_FLAT_GROWTH * 100:.0f} %)")
    else:
        compare("node RSS over a 10-minute run", None, False, 0, "", "flat")
        rows[-1] = (rows[-1][0], "not run (--soak not given)", rows[-1][2], "—")
    return rows


# --- charts -------------------------------------------------------------------


def gnuplot_terminal():
    probe = subprocess.run(["gnuplot", "-e", "set terminal pngcairo"], capture_output=True, text=True, check=False)
    if probe.returncode == 0 and not probe.stderr.strip():
        return "pngcairo size 1200,420 font ',10'"
    return "png size 1200,420"


def render_charts(runs, workloads, out_dir, work_dir):
    """throughput.png and p99.png: one panel per workload, direct beside
    cluster at each thread count. Returns the file names, or [] without gnuplot."""
    if not workloads:
        return []
    if not shutil.which("gnuplot"):
        print("bench_report: gnuplot not found, no charts", file=sys.stderr)
        return []
    for workload in workloads:
        with open(os.path.join(work_dir, f"{workload}.dat"), "w", encoding="utf-8") as f:
            f.write("# threads direct_ops cluster_ops direct_p99_ms cluster_p99_ms\n")
            for threads in sorted({r["threads"] for r in runs if r["workload"] == workload}):
                d, c = run_of(runs, workload, threads, "direct"), run_of(runs, workload, threads, "cluster")
                if d and c:
                    f.write(f"{threads} {d['throughput_ops_s']:.1f} {c['throughput_ops_s']:.1f} "
                            f"{latency_ms(d, 'p99'):.3f} {latency_ms(c, 'p99'):.3f}\n")
    charts = [("throughput.png", "ops/s (statements that succeeded)", 2, 3, "Throughput"),
              ("p99.png", "p99 latency, ms", 4, 5, "p99 latency")]
    script = [f"set terminal {gnuplot_terminal()}",
              "set style data histograms", "set style histogram clustered gap 1",
              "set style fill solid 0.85 border -1", "set boxwidth 0.9", "set grid ytics",
              "set key top left horizontal", "set yrange [0:*]", "set offsets 0, 0, graph 0.12, 0",
              "set xlabel 'threads'"]
    for name, ylabel, direct_col, cluster_col, title in charts:
        script += [f"set output '{os.path.join(out_dir, name)}'",
                   f"set multiplot layout 1,{len(workloads)} title '{title}: one MariaDB server (direct) "
                   f"beside the three-node cluster'",
                   f"set ylabel '{ylabel}'"]
        for workload in workloads:
            data = os.path.join(work_dir, f"{workload}.dat")
            script += [f"set title '{WORKLOAD_TITLES.get(workload, workload)}'",
                       f"plot '{data}' using {direct_col}:xtic(1) title 'direct' lc rgb '#4477aa', "
                       f"'' using {cluster_col} title 'cluster' lc rgb '#ee6677'"]
        script += ["unset multiplot", "set output"]
    plot_file = os.path.join(work_dir, "charts.gp")
    with open(plot_file, "w", encoding="utf-8") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["gnuplot", plot_file], check=True)
    return [name for name, *_ in charts]


# --- the page -----------------------------------------------------------------

FAILOVER_METHOD = (
    "`distdb-bench` inserts with 4 threads spread over the three nodes and counts its completions per "
    "10 ms; 3 s in, the coordinator is killed with `kill -9`. The figure is the time from the kill to "
    "the first write acknowledged after it (by the new coordinator), to the end of the 10 ms interval "
    "it fell in. The threads on the killed node get connection errors until the load ends; the others "
    "see the writes in flight at the kill fail (`outcome_unknown`) and then go on. *Elected* is when the "
    "new coordinator's log says it took office (its clock, to the millisecond). The killed node is "
    "restarted and the cluster left to settle (every member back in the view, the highest id "
    "coordinator again) before the next run.")


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, spec=".1f"):
    return "—" if value is None else format(value, spec)


def workload_table(runs, workload):
    rows = []
    for threads in sorted({r["threads"] for r in runs if r["workload"] == workload}):
        d, c = run_of(runs, workload, threads, "direct"), run_of(runs, workload, threads, "cluster")
        if not (d and c):
            continue
        rows.append([threads, fmt(d["throughput_ops_s"], ",.0f"), fmt(c["throughput_ops_s"], ",.0f"),
                     fmt(ratio(c["throughput_ops_s"], d["throughput_ops_s"]), ".2f"),
                     fmt(latency_ms(d, "p50"), ".3f"), fmt(latency_ms(c, "p50"), ".3f"),
                     fmt(latency_ms(d, "p99"), ".3f"), fmt(latency_ms(c, "p99"), ".3f"),
                     f"{d['errors']} / {c['errors']}"])
    return md_table(["threads", "direct ops/s", "cluster ops/s", "cluster / direct", "direct p50 ms",
                     "cluster p50 ms", "direct p99 ms", "cluster p99 ms", "errors (direct / cluster)"], rows)


def floor_table(runs, workload, floor):
    """Runs of target `floor` beside direct and cluster for `workload`: a
    markdown table, or None when the floor was not measured."""
    rows = []
    for threads in sorted({r["threads"] for r in runs if r["workload"] == workload}):
        d, f, c = (run_of(runs, workload, threads, t) for t in ("direct", floor, "cluster"))
        if not (d and f and c):
            continue
        rows.append([threads, fmt(d["throughput_ops_s"], ",.0f"), fmt(f["throughput_ops_s"], ",.0f"),
                     fmt(c["throughput_ops_s"], ",.0f"),
                     fmt(ratio(f["throughput_ops_s"], d["throughput_ops_s"]), ".2f"),
                     fmt(ratio(c["throughput_ops_s"], d["throughput_ops_s"]), ".2f"),
                     fmt(latency_ms(d, "p50"), ".3f"), fmt(latency_ms(f, "p50"), ".3f"),
                     fmt(latency_ms(c, "p50"), ".3f"),
                     fmt(ratio(latency_ms(f, "p50"), latency_ms(d, "p50")), ".2f") + " ×",
                     f"{f['errors']}"])
    if not rows:
        return None
    header = ["threads", "direct ops/s", f"{floor} ops/s", "cluster ops/s", f"{floor} / direct",
              "cluster / direct", "direct p50 ms", f"{floor} p50 ms", "cluster p50 ms",
              f"{floor} p50 / direct", f"{floor} errors"]
    return md_table(header, rows)


def floor_lines(runs):
    """The two-phase target beside direct and cluster, for inserts."""
    table = floor_table(runs, "insert", "two-phase")
    if table is None:
        return None
    text = ("*two-phase* is `distdb-bench --target two-phase` on the same three servers: the benchmark itself "
            "runs two-phase commit, with no distdb process in between. For each write it sends `XA START`, "
            "the `INSERT`, `XA END` and `XA PREPARE` to every server at once, in one request each, waits for "
            "every vote, then sends `XA COMMIT` to every server at once and counts the write done when a "
            "majority has committed. These are the requests a distdb member gets for a write, without the "
            "client hop, the messages between nodes, the log bookkeeping and the threads. What this floor "
            "costs is what no middleware replicating by two-phase commit could go below on this machine: "
            "its single-thread p50 over the direct one bounds the write-latency ratio, and its throughput "
            "shows what three servers doing every write as an XA transaction take on two cores. distdb "
            "can beat it on throughput only by putting several clients' writes into one transaction (it does: "
            "a log entry holds every write that waited for the previous round).")
    return [text, "", table, ""]


def relay_lines(runs):
    """The relay beside direct and cluster, for point selects."""
    table = floor_table(runs, "point-select", "relay")
    if table is None:
        return None
    text = ("*relay* is the direct load (`distdb-bench --target direct`, the same point selects) sent through "
            "`distdb-bench-relay`, which copies bytes between the client and the server and does nothing "
            "else: one thread, one epoll set, no parsing (a relay with a process per connection, `socat`, "
            "did worse). Any middleware puts at least this between a client and its "
            "database: a process that receives each request, passes it on, and passes the answer back. Its "
            "throughput over direct is what the read-throughput ratio of any middleware process is bounded "
            "by on this machine, where the relay, the server and the load generator share two cores. distdb "
            "does more than copy: it parses the request, classifies the statement, runs it through Connector/C "
            "and encodes the rows as JSON.")
    return [text, "", table, ""]


def spread_lines(runs):
    """Point selects spread over the three servers, directly and through
    three relays, beside direct on one server and the cluster."""
    rows = []
    for threads in sorted({r["threads"] for r in runs if r["workload"] == "point-select"}):
        d, d3, r3, c = (run_of(runs, "point-select", threads, t) for t in ("direct", "direct-3", "relay-3", "cluster"))
        if not (d and d3 and r3 and c):
            continue
        base = d["throughput_ops_s"]
        rows.append([threads, fmt(base, ",.0f"), fmt(d3["throughput_ops_s"], ",.0f"),
                     fmt(r3["throughput_ops_s"], ",.0f"), fmt(c["throughput_ops_s"], ",.0f"),
                     fmt(ratio(d3["throughput_ops_s"], base), ".2f"), fmt(ratio(r3["throughput_ops_s"], base), ".2f"),
                     fmt(ratio(c["throughput_ops_s"], base), ".2f"),
                     fmt(ratio(c["throughput_ops_s"], r3["throughput_ops_s"]), ".2f"),
                     f"{d3['errors']} / {r3['errors']}"])
    if not rows:
        return None
    header = ["threads", "direct ops/s", "direct-3 ops/s", "relay-3 ops/s", "cluster ops/s", "direct-3 / direct",
              "relay-3 / direct", "cluster / direct", "cluster / relay-3", "errors (direct-3 / relay-3)"]
    text = ("The cluster's threads spread over its three nodes, so its reads land on three MariaDB servers, "
            "which here share the machine's two cores with everything else. *direct-3* is the direct load "
            "spread the same way, with nothing in between (`distdb-bench --target direct --db` with the three "
            "servers: thread i on server i mod 3, each with its own copy of the table); *relay-3* is that load "
            "through three relays, one per server. direct-3 over direct is what spreading the reads costs "
            "MariaDB itself on one machine; relay-3 over direct bounds what any middleware that serves reads "
            "where they arrive could reach here; cluster over relay-3 is what distdb's own work costs on top "
            "of that.")
    return [text, "", md_table(header, rows), ""]


def section(title, lines, missing="Not run."):
    """A "## title" section of the page: its lines, or `missing` when the
    measurement did not take place."""
    return [f"## {title}", ""] + (lines or [missing, ""])


def failover_lines(failovers):
    if not failovers:
        return None
    rows = []
    for f in failovers:
        elected, first = f["elected_after_kill_ms"], f["first_write_after_kill_ms"]
        errors = ", ".join(f"{k} {v}" for k, v in sorted(f["errors_by_kind"].items()))
        rows.append([f["run"], f"node {f['killed_node']}", f"node {f['new_coordinator']}",
                     "—" if elected is None else f"{elected} ms", f["note"] if first is None else f"{first} ms",
                     errors or "none"])
    header = ["run", "killed", "new coordinator", "elected after the kill", "first write after the kill",
              "errors by kind"]
    return [FAILOVER_METHOD, "", md_table(header, rows), ""]


def catchup_lines(c):
    if not c:
        return None
    method = (f"Node {c['node']} is stopped (`SIGSTOP`); {c['writes']:,} single-row `INSERT`s are then sent "
              "to the coordinator by 16 `distdb-cli` processes at once, one statement per request "
              "(each one a replicated write; the coordinator may put concurrent writes into one log entry, "
              f"so they made {c['entries']:,} log entries). They took {c['write_ms'] / 1000.0:.1f} s "
              f"({fmt(c['cluster_writes_per_s_while_stopped'], ',.0f')} writes/s on two nodes). The node is "
              "then continued (`SIGCONT`) and timed until its applied position (`:status`, polled every "
              "50 ms) equals the coordinator's.")
    header = ["writes behind", "log entries behind", "caught up in", "writes/s", "entries/s",
              "rows on the node after"]
    row = [f"{c['writes']:,}", f"{c['entries']:,}", f"{c['catch_up_ms'] / 1000.0:.2f} s",
           fmt(c["writes_per_s"], ",.0f"), fmt(c["entries_per_s"], ",.0f"), f"{c['rows_on_node']:,}"]
    return [method, "", md_table(header, [row]), ""]


def xa_cost_lines(x, runs):
    if not x:
        return None
    direct = run_of(runs, "insert", 1, "direct")
    direct_p50 = latency_ms(direct, "p50", "writes") if direct else None
    text = (f"The same single-row `INSERT`, {x['transactions']:,} times, through the `mariadb` client on one "
            "connection to the direct run's server: as autocommit statements, and as XA transactions "
            "(`XA START`, `INSERT`, `XA END`, `XA PREPARE`, `XA COMMIT`, each its own round trip), which is "
            "what every member runs for a replicated write (distdb sends `XA START`, the statements, the "
            "bookkeeping, `XA END` and `XA PREPARE` in one request, saving three of those round trips). No "
            "distdb process is involved: this is the database's own price of a prepared, durable vote and a "
            "separate commit, paid before any message between nodes.")
    header = ["autocommit INSERT", "XA transaction of one INSERT", "ratio"]
    row = [f"{x['plain_ms_each']:.3f} ms", f"{x['xa_ms_each']:.3f} ms", fmt(x["ratio"], ".2f") + " ×"]
    lines = [text, "", md_table(header, [row]), ""]
    if direct_p50:
        lines += [f"Against the single-thread direct insert p50 of this run ({direct_p50:.3f} ms), the XA "
                  f"sequence alone is {x['xa_ms_each'] / direct_p50:.2f} ×, before the coordinator's two "
                  "exchanges with the members (prepare and vote, decide and acknowledgement).", ""]
    return lines


def memory_lines(soak):
    if not soak:
        return None
    method = (f"A mixed load (4 threads, 50% reads) for {soak['duration_s'] / 60:.1f} minutes; each node's "
              "resident memory (`VmRSS`) sampled at the start and every 30 s. Growth is over the second half "
              "of the run, from the sample half-way to the end: a leak keeps growing, whereas memory that fills "
              "up to a bound early on then stays.")
    header = ["node", "start MiB", "half-way MiB", "end MiB", "max MiB", "growth in the second half"]
    keys = ("start_mib", "half_mib", "end_mib", "max_mib")
    rows = [[node] + [f"{n[k]:.1f}" for k in keys] + [f"{n['growth'] * 100:+.1f} %"]
            for node, n in soak["nodes"].items()]
    return [method, "", md_table(header, rows), ""]


def write_page(path, results, charts, chart_dir):
    m, s = results["machine"], results["settings"]
    out = ["# Benchmarks", "",
           "Generated by `scripts/bench.sh` (with `scripts/bench_report.py`); do not edit by hand, run it again. "
           "Everything runs on one machine: three MariaDB servers, three `distdb-node` processes (each on its "
           "own server, default timeouts) and `distdb-bench`. *direct* is `distdb-bench --target direct` "
           "against one of the servers, *cluster* is `--target cluster` with its threads spread over the "
           "three nodes (thread i on node i mod 3; writes reaching a node that is not the coordinator are "
           "forwarded to it; reads are served by the node that receives them). The same statements run on "
           "both. The targets of issue 6 are ratios, so they are what to look at; absolute figures depend on "
           "the machine, which here is shared by the cluster's six server processes and the load generator. "
           "What the figures mean, the profiles behind them and what is left: [performance.md](performance.md).",
           ""]
    if s["quick"]:
        out += ["> **Quick mode** (`--quick`): a few seconds per measurement, fewer catch-up writes; "
                "the figures only show that the script works.", ""]
    out += ["## The run", "",
            f"- Command: `{results['command']}`",
            f"- Date: {results['started']}",
            f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB memory, Linux {m['kernel']}",
            f"- MariaDB: {m['mariadb']}, default settings but for a 64 MiB buffer pool "
            f"(`scripts/mariadb-sandbox.sh`); data directories on {results['data_filesystem']}",
            f"- distdb: {m['distdb_revision']}",
            f"- Each measurement: {s['warmup']:g} s warmup, then {s['seconds']:g} s measured; "
            "latencies of the statements that succeeded",
            "- Load on the machine (`uptime`), which other work shares:",
            f"  - at the start: `{results['uptime_start']}`",
            f"  - at the end: `{results['uptime_end']}`", "",
            "## Targets", "",
            md_table(["target", "measured", "goal", ""], results["targets"]), "",
            "Throughput ratios are of statements that succeeded per second; the single-thread figures are "
            "the p50 of the writes of the insert workload and of the reads of the point-select one. The "
            "cluster's single thread is on node 1, which is not the coordinator, so its writes include the "
            "hop that forwards them.", ""]
    out += ["## Throughput and latency", ""]
    for name in charts:
        out += [f"![{name[:-4]}]({chart_dir}/{name})", ""]
    for workload in s["workloads"]:
        out += [f"### {WORKLOAD_TITLES.get(workload, workload)}", "", workload_table(results["runs"], workload), ""]
    out += section("What two-phase commit costs the database", xa_cost_lines(results.get("xa_cost"), results["runs"]),
                   "Not measured in this run (it runs with the insert workload).")
    out += section("The floor: two-phase commit with no middleware", floor_lines(results["runs"]),
                   "Not measured in this run (it runs with the insert workload).")
    out += section("The floor under a read: a relay that only copies bytes", relay_lines(results["runs"]),
                   "Not measured in this run (it runs with the point-select workload).")
    out += section("Reads spread over three servers", spread_lines(results["runs"]),
                   "Not measured in this run (it runs with the point-select workload).")
    out += section("Failover", failover_lines(results["failover"]))
    out += section("Catch-up", catchup_lines(results["catchup"]))
    out += section("Memory", memory_lines(results["soak"]),
                   "Not run in this run (`scripts/bench.sh --soak 10` runs it: a mixed load for 10 minutes, "
                   "sampling each node's RSS every 30 s).")
    out += ["The raw figures, every `distdb-bench` report included, are in "
            f"[`{chart_dir}/results.json`]({chart_dir}/results.json).", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--out", required=True, help="directory of results.json and the charts; the page is OUT.md")
    ap.add_argument("--command", default="scripts/bench.sh")
    ap.add_argument("--mariadb-version", default="unknown")
    ap.add_argument("--quick", default="false")
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--warmup", type=float, default=0)
    ap.add_argument("--soak-minutes", type=float, default=0)
    args = ap.parse_args()

    rd = args.run_dir
    runs = read_jsonl(os.path.join(rd, "runs.jsonl"))
    workloads = list(dict.fromkeys(r["workload"] for r in runs))
    failovers = [failover_figures(e) for e in read_jsonl(os.path.join(rd, "failover.jsonl"))]
    catchup_raw = read_jsonl(os.path.join(rd, "catchup.json"))
    catchup = catchup_figures(catchup_raw[0] if catchup_raw else None)
    xa_raw = read_jsonl(os.path.join(rd, "xa-cost.json"))
    xa_cost = xa_cost_figures(xa_raw[0] if xa_raw else None)
    soak_samples = read_jsonl(os.path.join(rd, "soak.jsonl"))
    soak = soak_figures(soak_samples)
    results = {
        "command": args.command,
        "started": read_text(os.path.join(rd, "started.txt"),
                             datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        "machine": machine_info(args.mariadb_version),
        "data_filesystem": read_text(os.path.join(rd, "filesystem.txt"), "unknown"),
        "uptime_start": read_text(os.path.join(rd, "uptime-start.txt")),
        "uptime_end": read_text(os.path.join(rd, "uptime-end.txt")),
        "settings": {"quick": args.quick == "true", "seconds": args.seconds, "warmup": args.warmup,
                     "soak_minutes": args.soak_minutes, "workloads": workloads},
        "targets": target_rows(runs, failovers, catchup, soak),
        "runs": runs,
        "failover": failovers,
        "failover_raw": read_jsonl(os.path.join(rd, "failover.jsonl")),
        "catchup": catchup,
        "xa_cost": xa_cost,
        "soak": soak,
        "soak_samples": soak_samples,
    }

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    charts = render_charts(runs, workloads, args.out, rd)
    page = args.out.rstrip("/") + ".md"
    chart_dir = os.path.relpath(args.out, os.path.dirname(os.path.abspath(page)) or ".")
    write_page(page, results, charts, chart_dir)

    print(md_table(["target", "measured", "goal", ""], results["targets"]))
    print(f"bench_report: wrote {page}, {args.out}/results.json" +
          "".join(f", {args.out}/{c}" for c in charts))


if __name__ == "__main__":
    main()
