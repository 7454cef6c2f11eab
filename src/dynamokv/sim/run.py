"""One simulated run from a seed, and the ``python -m dynamokv.sim`` command line.

Owns: ``run_seed`` (the phases: bootstrap, safety, heal and liveness, final reads, checks),
``RunResult``, ``main(argv) -> int`` (also behind ``dynamokv sim``).
May import: stdlib, ``dynamokv.sim.*``.

Phases (ARCHITECTURE R9):

1. bootstrap: the first node founds the cluster, the others join through seeds; the workload
   waits until every node's ring lists every node;
2. safety: clients run for ``workload_ms`` under the drawn faults (``sim.faults``); then no new
   operations start and those in flight finish or time out;
3. heal and liveness: every fault ends (every node up and running, no partitions, loss,
   duplication, reordering or storage faults) and the cluster runs fault-free until it has
   converged, within ``liveness_ms_max``: every node has the same ring and it lists exactly
   the nodes that are still members, all valid (joins done, leaves complete); no hints are
   left; every partition's replicas have built their Merkle trees and their roots are equal
   (``NodeCore.aae.roots()``); no node holds a partition it does not replicate;
4. final reads: every key read at R=N (retried until it succeeds), and the counter through
   the partition log; a short wait lets the read repairs land;
5. checks (``sim.checkers``).

Output: ``SEED`` and the options first, the trace if ``--verbose``, then a summary, the trace
digest and, on failure, the violations and a ``reproduce with:`` line. Exit code 0 or 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dynamokv.core.node import NodeCore
from dynamokv.core.ring import MemberStatus, Ring
from dynamokv.sim.checkers import (
    DiskLog,
    check_acknowledged_writes,
    check_convergence,
    check_counter,
    check_partitions,
    check_quorum_reads,
    check_stored_siblings,
)
from dynamokv.sim.faults import FaultPlan
from dynamokv.sim.history import History
from dynamokv.sim.options import BUGS, FAULT_KINDS, SimOptions, parse_faults
from dynamokv.sim.trace import Trace
from dynamokv.sim.workload import BUCKET, CAS_BUCKET, Workload
from dynamokv.sim.world import Simulator

REPAIR_WAIT_MS = 1_000  # after the final reads, for fire-and-forget read repairs to land
LIVENESS_POLL_MS = 100  # how often the liveness phase looks whether the cluster has converged


@dataclass(slots=True)
class RunResult:
    seed: int
    options: SimOptions
    digest: str = ""
    violations: dict[str, list[str]] = field(default_factory=dict)
    summary: str = ""
    trace_tail: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # faults and messages, for tests

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


def run_seed(options: SimOptions, echo: Callable[[str], None] | None = None) -> RunResult:
    """Run one simulation; ``echo`` receives every trace line as it happens (``--verbose``)."""
    trace = Trace(echo)
    log = DiskLog()
    sim = Simulator(options.seed, options, trace=trace, observer=log.observe)
    log.power_lost = sim.power_lost_nodes
    history = History()
    workload = Workload(sim, options, history)
    sim.sink = workload
    result = RunResult(options.seed, options)
    v = result.violations
    trace.add(0, "-", "options", options.describe())

    if not sim.bootstrap():
        v["liveness"] = [f"bootstrap: rings still incomplete after {options.bootstrap_ms_max} ms"]
    else:
        trace.add(sim.now_ms, "-", "phase", "safety")
        end = sim.now_ms + options.workload_ms
        workload.start(end)
        plan = FaultPlan(sim, options)
        plan.start(end)
        _run_workload(sim, workload, end, options.steps_max)
        sim.run_while(workload.busy, sim.now_ms + options.client_timeout_ms + 1_000)
        trace.add(sim.now_ms, "-", "phase", "heal")
        plan.stop()
        sim.heal()
        healed = sim.now_ms
        waiting = _await_convergence(sim, healed + options.liveness_ms_max)
        if waiting:
            v["liveness"] = [f"not converged {options.liveness_ms_max} ms after healing: {w}"
                             for w in waiting[:10]]
        else:
            trace.add(sim.now_ms, "-", "phase", f"converged {sim.now_ms - healed} ms after "
                      "healing")
            ring = _ring(sim)
            assert ring is not None
            disks = {node_id: node.disk for node_id, node in sim.nodes.items()}
            v["convergence"] = check_partitions(ring, options.n, disks, sim.node_ids())
        trace.add(sim.now_ms, "-", "phase", "final reads")
        workload.start_final_reads()
        sim.run_while(lambda: not workload.final_done(), sim.now_ms + 60_000)
        sim.run_until(sim.now_ms + REPAIR_WAIT_MS)
        for name, items in _check(sim, workload, history, log).items():
            v[name] = v.get(name, []) + items
    v["world"] = list(sim.violations)
    result.digest = trace.digest()
    result.summary = _summary(sim, history)
    result.trace_tail = list(trace.tail)
    result.errors = list(sim.errors)
    stats = sim.network.stats
    result.counts = {**sim.counts, "lost": stats.lost, "duplicated": stats.duplicated,
                     "blocked": stats.blocked, "delayed": stats.delayed,
                     "reordered": stats.reordered,
                     "storage": sum(n.disk.failed for n in sim.nodes.values()),
                     "skewed": sum(1 for n in sim.nodes if sim.clocks.offset_ms(n))}
    return result


def _ring(sim: Simulator) -> Ring | None:
    for node_id in sim.node_ids():
        core = sim.nodes[node_id].core
        if core is not None and core.ring is not None:
            return core.ring
    return None


def _unconverged(sim: Simulator) -> list[str]:
    """What still keeps the healed cluster from having converged (empty once it has)."""
    live = sim.node_ids()
    cores = {n: sim.nodes[n].core for n in live}
    down = [n for n, c in cores.items() if c is None]
    if down:
        return [f"{', '.join(down)} not running"]
    ring = _ring(sim)
    if ring is None:
        return ["no ring"]
    out: list[str] = []
    for node_id, core in cores.items():
        assert core is not None
        if core.ring != ring:
            theirs = core.ring.version if core.ring else 0
            out.append(f"rings differ: {node_id} has v{theirs}, {live[0]} v{ring.version}")
    members = {m.node_id: m.status for m in ring.members}
    if sorted(members) != sorted(live):
        out.append(f"ring members {sorted(members)} are not the running nodes {sorted(live)}")
    out += [f"{n} is still {s.value}" for n, s in members.items() if s is not MemberStatus.VALID]
    if ring.previous_owners:
        # The claimant settles an ownership change with one more ring version once every member
        # handed off: wait for it, or the rings may still differ when the final reads end.
        out.append(f"ownership change of ring v{ring.version} not settled yet")
    for node_id, core in cores.items():
        assert core is not None
        pending = core.hints.pending()
        if pending:
            out.append(f"{node_id} still holds hints {dict(sorted(pending.items()))}")
        for partition in core.store.nonempty_partitions():
            if node_id not in ring.preference_list(partition, sim.options.n):
                out.append(f"{node_id} still holds partition {partition} (not a replica)")
    out += _logs_unsettled(ring, cores, sim.options.n)
    roots = {n: c.aae.roots() for n, c in cores.items() if c is not None}
    for partition in range(ring.q):
        replicas = ring.preference_list(partition, sim.options.n)
        seen = {n: roots[n].get(partition) for n in replicas if n in roots}
        missing = [n for n, r in seen.items() if r is None]
        if missing:
            out.append(f"partition {partition}: no Merkle tree yet on {', '.join(missing)}")
        elif len(set(seen.values())) > 1:
            out.append(f"partition {partition}: Merkle roots differ "
                       + " ".join(f"{n}={r[:8] if r else '-'}" for n, r in seen.items()))
    return out


def _logs_unsettled(ring: Ring, cores: dict[str, NodeCore | None], n: int) -> list[str]:
    """Partition logs settle too: one leader per partition whose voters are the ring's
    preference list, and every voter applied all the leader committed."""
    out: list[str] = []
    for partition in range(ring.q):
        target = sorted(ring.preference_list(partition, n))
        groups = {nid: c.logs.groups.get(partition) for nid, c in cores.items() if c}
        leaders = [g for g in groups.values() if g is not None and g.is_leader()]
        if len(leaders) != 1:
            out.append(f"partition {partition}: {len(leaders)} log leaders")
            continue
        leader = leaders[0]
        if sorted(leader.members) != target:
            out.append(f"partition {partition}: log voters {sorted(leader.members)}, "
                       f"ring replicas {target}")
            continue
        stale = [nid for nid, g in groups.items() if g is not None and nid not in target]
        if stale:
            out.append(f"partition {partition}: {', '.join(sorted(stale))} still hold its log "
                       "(not replicas any more)")
            continue
        behind = [nid for nid in target
                  if groups.get(nid) is None or groups[nid].applied < leader.commit]  # type: ignore[union-attr]
        if behind:
            out.append(f"partition {partition}: {', '.join(behind)} not caught up with the log")
    return out


def _await_convergence(sim: Simulator, deadline: int) -> list[str]:
    """Run the healed cluster until it converged or ``deadline``; what is still pending."""
    while True:
        waiting = _unconverged(sim)
        if not waiting or sim.now_ms >= deadline:
            return waiting
        sim.run_until(min(deadline, sim.now_ms + LIVENESS_POLL_MS))


def _run_workload(sim: Simulator, workload: Workload, end: int, steps_max: int) -> None:
    if not steps_max:
        sim.run_until(end)
        return
    budget = sim.steps + steps_max
    while sim.steps < budget and sim.step():
        if sim.now_ms >= end:
            break
    workload.stop()


def _hints_held(sim: Simulator) -> int:
    return sum(sum(node.disk.hints().values()) for node in sim.nodes.values())


def _check(sim: Simulator, workload: Workload, history: History, log: DiskLog
           ) -> dict[str, list[str]]:
    o = sim.options
    disks = {node_id: node.disk for node_id, node in sim.nodes.items()}
    live = sim.node_ids()
    rings = [sim.nodes[n].core.ring for n in live  # type: ignore[union-attr]
             if sim.nodes[n].core is not None]
    liveness = [f"final read of {k} never succeeded" for k in workload.final_failed()]
    liveness += [f"{node_id} still holds hints {dict(disks[node_id].hints())} at the end"
                 for node_id in live if disks[node_id].hints()]
    ring = rings[0] if rings else None
    if ring is None or len(rings) != len(live) or any(r != ring for r in rings):
        liveness.append("rings differ at the end")
    out = {
        "lost-writes": check_acknowledged_writes(history, workload.final, log, BUCKET),
        "quorum-reads": check_quorum_reads(history, o, sim.power_loss_times,
                                           sim.membership_times),
        "disk-writes": log.violations(),
        "siblings": check_stored_siblings(disks.values()),
        "counter": check_counter(history, workload.final_counter, log, CAS_BUCKET),
        "liveness": liveness,
    }
    if ring is not None:
        out["convergence"] = check_convergence(ring, o.n, disks, workload.final, BUCKET)
    return out


def _summary(sim: Simulator, history: History) -> str:
    ops = " ".join(
        f"{kind}:" + "/".join(f"{s}={c}" for s, c in row.items() if c)
        for kind, row in history.counts().items()
    )
    s = sim.network.stats
    c = sim.counts
    return (f"ops {ops}\n"
            f"messages sent={s.sent} delivered={s.delivered} lost={s.lost} "
            f"duplicated={s.duplicated} reordered={s.reordered} delayed={s.delayed} "
            f"blocked={s.blocked} refused={s.refused} "
            f"client={s.client_messages}\n"
            f"faults crashes={c['crashes']} power_losses={c['power_losses']} "
            f"power_refused={c['power_refused']} unsynced_lost={c['unsynced_lost']} "
            f"restarts={c['restarts']} pauses={c['pauses']} "
            f"partitions={c['partitions']} clock_jumps={c['clock_jumps']} joins={c['joins']} "
            f"departures={c['departures']} "
            f"storage={sum(n.disk.failed for n in sim.nodes.values())}"
            f" lies={sum(n.disk.lied for n in sim.nodes.values())}\n"
            f"time virtual={sim.now_ms}ms events={sim.steps}")


# ---- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dynamokv.sim",
        description="Run a whole dynamokv cluster in one process, driven by one seed.",
    )
    p.add_argument("--seed", type=int, default=None,
                   help="the run's seed (default: a fresh one, printed first)")
    p.add_argument("--count", type=int, default=1,
                   help="run this many consecutive seeds from --seed (default 1)")
    p.add_argument("--duration-ms", type=int, default=None,
                   help="virtual length of the workload phase")
    p.add_argument("--steps", type=int, default=None,
                   help="end the workload phase after this many events")
    p.add_argument("--nodes", type=int, default=None, help="cluster size (default: drawn, 3-5)")
    p.add_argument("--faults", default=None, metavar="KINDS",
                   help="fault kinds, comma-separated: exactly these (crash,pause), none, all, "
                        "or changes to the drawn ones (+power,-loss); kinds: "
                        + ", ".join(FAULT_KINDS))
    p.add_argument("--cas-clients", type=int, default=None,
                   help="clients running conditional increments of one table item "
                        "(default: drawn, 0-2)")
    p.add_argument("--q", type=int, default=None,
                   help="partitions of the ring (default: drawn, 8, 16 or 32; production 64)")
    p.add_argument("--aae-interval-ms", type=int, default=None,
                   help="anti-entropy rotation interval (default: drawn, 50-300; production "
                        "2000)")
    p.add_argument("--liveness-ms", type=int, default=None,
                   help="how long the healed cluster may take to converge (default 60000)")
    p.add_argument("--bug", choices=BUGS, default=None,
                   help="inject a known bug on purpose (to see the checkers catch it)")
    p.add_argument("--verbose", action="store_true", help="print every trace line")
    p.add_argument("--check-determinism", action="store_true",
                   help="run each seed twice and compare the trace digests")
    return p


def _repro(args: argparse.Namespace, seed: int) -> str:
    parts = ["python -m dynamokv.sim", f"--seed {seed}"]
    if args.duration_ms is not None:
        parts.append(f"--duration-ms {args.duration_ms}")
    if args.steps is not None:
        parts.append(f"--steps {args.steps}")
    if args.nodes is not None:
        parts.append(f"--nodes {args.nodes}")
    if args.faults is not None:
        parts.append(f"--faults {args.faults}")
    if args.cas_clients is not None:
        parts.append(f"--cas-clients {args.cas_clients}")
    for flag, value in (("--q", args.q), ("--aae-interval-ms", args.aae_interval_ms),
                        ("--liveness-ms", args.liveness_ms)):
        if value is not None:
            parts.append(f"{flag} {value}")
    if args.bug:
        parts.append(f"--bug {args.bug}")
    return " ".join(parts) + " --verbose"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    first = args.seed if args.seed is not None else int.from_bytes(_fresh_bytes(), "big")
    failed = 0
    for seed in range(first, first + max(1, args.count)):
        if not _run_one(args, seed):
            failed += 1
    if args.count > 1:
        print(f"{args.count - failed} of {args.count} seeds passed")
    return 1 if failed else 0


def _run_one(args: argparse.Namespace, seed: int) -> bool:
    print(f"SEED {seed}", flush=True)
    try:
        options = SimOptions.from_seed(seed, workload_ms=args.duration_ms, steps_max=args.steps,
                                       nodes=args.nodes, bug=args.bug,
                                       cas_clients=args.cas_clients, q=args.q,
                                       aae_interval_ms=args.aae_interval_ms,
                                       liveness_ms_max=args.liveness_ms)
        if args.faults is not None:
            options = dataclasses.replace(options,
                                          faults=parse_faults(args.faults, options.faults))
        print(f"options {options.describe()}", flush=True)
        options.validate()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    result = run_seed(options, print if args.verbose else None)
    print(result.summary)
    print(f"digest {result.digest}")
    ok = result.ok
    if args.check_determinism:
        again = run_seed(options)
        same = again.digest == result.digest
        print(f"determinism {'ok' if same else 'FAILED'}: second digest {again.digest}")
        ok = ok and same
    for name, items in result.violations.items():
        for item in items:
            print(f"VIOLATION {name}: {item}")
    if result.errors:
        print(result.errors[0], end="")
    if not ok:
        if not args.verbose:
            print("last trace lines:")
            for line in result.trace_tail:
                print(f"  {line}")
        print(f"FAIL seed {seed}")
        print(f"reproduce with: {_repro(args, seed)}")
    else:
        print(f"OK seed {seed}")
    return ok


def _fresh_bytes() -> bytes:
    # The simulator's only nondeterminism: choosing a seed when none is given. It is printed
    # first, so the run can be replayed.
    return secrets.token_bytes(4)
