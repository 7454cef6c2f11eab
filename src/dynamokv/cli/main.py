"""The ``dynamokv`` command: parse arguments, call the client or the server, print results.

Owns: the argument parser (every command's help has a purpose and an example), the dispatch to
handlers, exit codes (0 ok, 1 failed, 2 bad usage or configuration, 130 interrupted) and how
errors are shown.
May import: stdlib, ``dynamokv.errors``, ``dynamokv.client``, ``dynamokv.runtime.config``,
``dynamokv.core.ring``, ``dynamokv.core.claim``, ``dynamokv.cli.*``; lazily (so ``--help``
stays fast and a missing component fails only the commands that need it):
``dynamokv.runtime.server`` (storage engines, asyncio), ``dynamokv.sim.run`` and
``dynamokv.api.sigv4`` (to check a --credentials file before any node starts).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from dynamokv.cli import (
    client_tls,
    cluster,
    membership,
    node_start,
    operator_verbs,
    render,
)
from dynamokv.cli.arg_types import boolean as _bool
from dynamokv.cli.arg_types import port as _port
from dynamokv.cli.arg_types import positive_int as _positive_int
from dynamokv.cli.arg_types import seconds as _seconds
from dynamokv.cli.components import MissingComponent
from dynamokv.cli.components import load as _import
from dynamokv.client import Client, Context
from dynamokv.core.claim import balance
from dynamokv.core.ring import Ring
from dynamokv.errors import ConfigError, DynamoKVError, InvalidRequest, NoNodeAvailable
from dynamokv.runtime.config import NodeConfig, QuorumDefaults, parse_address

DEFAULT_NODE = "127.0.0.1:7001"
NODES_ENV = "DYNAMOKV_NODES"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

START_HINT = (
    "hint: no node answered. Start a local cluster with "
    "`dynamokv cluster up --nodes 3 --data-dir ./data`, or name a running node with "
    f"--node HOST:PORT or {NODES_ENV}=HOST:PORT,..."
)


class ClientLike(Protocol):
    """What the CLI uses of ``dynamokv.client.Client``."""

    def get(self, key: str | bytes, *, bucket: str = ..., r: int | None = ...) -> Any: ...

    def put(
        self, key: str | bytes, value: str | bytes, context: Any = ..., *, bucket: str = ...,
        w: int | None = ...,
    ) -> Any: ...

    def delete(
        self, key: str | bytes, context: Any = ..., *, bucket: str = ..., w: int | None = ...
    ) -> Any: ...

    def ring(self) -> Ring: ...

    def status(self) -> dict[str, Any]: ...

    def bucket_props(self, bucket: str, **props: Any) -> dict[str, Any]: ...

    def close(self) -> None: ...


def make_client(nodes: Sequence[str], routing: str, timeout_s: float) -> ClientLike:
    """The client for one command; tests replace this function."""
    return Client(list(nodes), routing=routing, timeout_s=timeout_s, tls=client_tls.context())


def context_from_base64(text: str) -> Context:
    try:
        return Context.from_base64(text)
    except DynamoKVError:
        raise
    except Exception as e:  # the decoder's own errors (binascii, msgpack) carry no code
        raise InvalidRequest(f"--context is not a context printed by dynamokv: {e}") from e


# -- parser --------------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace], int]


def _command(
    subparsers: Any,
    name: str,
    purpose: str,
    example: str,
    handler: Handler | None,
    *,
    details: str = "",
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """A subcommand whose help teaches: a one-line purpose, details, then an example."""
    description = purpose + ("\n\n" + textwrap.dedent(details).strip() if details else "")
    p: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=purpose,
        description=description,
        epilog="example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    # A group (node, cluster) named without a subcommand prints its own help.
    p.set_defaults(handler=handler, help_parser=p)
    return p


def _client_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("connection")
    g.add_argument(
        "--node", action="append", metavar="HOST:PORT", dest="nodes",
        help=f"a node to talk to; repeat or comma-separate for several "
        f"(default: ${NODES_ENV} or {DEFAULT_NODE})",
    )
    g.add_argument(
        "--routing", choices=("server", "partition"), default="server",
        help="server: any node coordinates (default); partition: the client sends each key to "
        "a node of its preference list, saving a hop",
    )
    g.add_argument(
        "--timeout", type=_seconds, default=5.0, metavar="SECONDS",
        help="give up on a request after this long (default 5)",
    )
    g.add_argument("--json", action="store_true", help="print JSON instead of text")
    client_tls.add_options(g)
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamokv",
        description="dynamokv: Amazon's Dynamo in Python. Run nodes and a local cluster, and "
        "read and write keys.",
        epilog=textwrap.dedent(
            """\
            example:
              dynamokv cluster up --nodes 3 --data-dir ./data
              dynamokv put greeting hello
              dynamokv get greeting

            Run `dynamokv COMMAND --help` for each command's options and an example."""
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    client = _client_options()

    # node
    node = _command(
        sub, "node", "Run one dynamokv node.", "dynamokv node start --id n1 "
        "--listen 127.0.0.1:7001 --data-dir ./data/n1", None,
    )
    node_sub = node.add_subparsers(dest="node_command", metavar="SUBCOMMAND")
    node_start.add_command(node_sub, _command, _quorum_options)

    # cluster
    cl = _command(
        sub, "cluster", "Start or stop a local cluster of node processes.",
        "dynamokv cluster up --nodes 3 --data-dir ./data", None,
    )
    cl_sub = cl.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND")
    membership.add_commands(cl_sub, _command, _client_options())
    up = _command(
        cl_sub, "up", "Start N local nodes, wait until they answer, and watch them.",
        """\
        dynamokv cluster up --nodes 3 --data-dir ./data
        dynamokv cluster up --nodes 5 --data-dir ./data --base-port 7101 --detach""",
        cmd_cluster_up,
        details="""\
        Node i is n{i}, listening on 127.0.0.1:(base-port + i - 1), keeping data and its
        node.log in DIR/n{i}; nodes after n1 join through n1. DIR/cluster.json records each
        node's pid, addresses, log and the command that starts it again. Ctrl-C stops every
        node; with --detach the nodes keep running until `dynamokv cluster down`.""",
    )
    up.add_argument("--nodes", type=_positive_int, default=3, help="how many nodes (default 3)")
    up.add_argument("--data-dir", required=True, type=Path, metavar="DIR",
                    help="parent directory of the nodes' data dirs and logs")
    up.add_argument("--base-port", type=_port, default=7001,
                    help="port of n1; node i gets base + i - 1 (default 7001)")
    up.add_argument("--engine", choices=("lmdb", "sqlite", "memory"), default="lmdb",
                    help="storage engine of every node (default lmdb)")
    up.add_argument("--sync", choices=("os", "fsync"), default="os",
                    help="durability of every node (default os)")
    up.add_argument("--http-base-port", type=_port, default=8001,
                    help="HTTP API port of n1, 0 for none (default 8001)")
    up.add_argument("--metrics-base-port", type=_port, default=9101,
                    help="metrics port of n1, 0 for none (default 9101)")
    up.add_argument("--ring-size", type=int, default=64, metavar="Q",
                    help="partitions on the ring, a power of two (default 64)")
    up.add_argument("--n", type=_positive_int, help="replicas per key (node default if unset)")
    up.add_argument("--r", type=_positive_int, help="read quorum (node default if unset)")
    up.add_argument("--w", type=_positive_int, help="write quorum (node default if unset)")
    up.add_argument("--start-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                    help="how long to wait for the nodes to answer (default 30)")
    up.add_argument("--detach", action="store_true",
                    help="return once the nodes answer, leaving them running")
    up.add_argument("--cluster-name", metavar="NAME",
                    help="the nodes' cluster name (default dynamokv); two local clusters "
                    "with different names never merge")
    up.add_argument("--credentials", type=Path, metavar="FILE",
                    help="access keys every node's DynamoDB API requires (see `dynamokv node "
                    "start --help`); default: any credentials are accepted")
    down = _command(
        cl_sub, "down", "Stop a cluster started with `cluster up --detach`.",
        "dynamokv cluster down --data-dir ./data", cmd_cluster_down,
        details="""\
        Reads DIR/cluster.json and stops each node (SIGTERM, then SIGKILL after 10 s), but
        only if its pid still runs that dynamokv node.""",
    )
    down.add_argument("--data-dir", required=True, type=Path, metavar="DIR",
                      help="the --data-dir given to `cluster up`")

    # key-value commands
    get = _command(
        sub, "get", "Read a key: every concurrent version (sibling) and their context.",
        """\
        dynamokv get greeting
        dynamokv get greeting --bucket users --r 3 --json""",
        cmd_get, parents=[client],
        details="""\
        Values print as UTF-8 when they decode, else as base64:... . Pass the printed context to
        the next put or delete of the key so it supersedes what you read (and merges
        siblings).""",
    )
    get.add_argument("key")
    get.add_argument("--bucket", default="default", help="bucket (default: default)")
    get.add_argument("--r", type=_positive_int, help="replies to wait for (default: bucket's R)")

    put = _command(
        sub, "put", "Write a value; prints the context of the new version.",
        """\
        dynamokv put greeting hello
        ctx=$(dynamokv get greeting --json | jq -r .context)
        dynamokv put greeting 'hello again' --context "$ctx"
        echo -n hi | dynamokv put greeting -""",
        cmd_put, parents=[client],
        details="""\
        Without --context the write is concurrent with whatever is stored, so a later get may
        return both as siblings. VALUE - reads the value's bytes from stdin.""",
    )
    put.add_argument("key")
    put.add_argument("value", help="the value, or - to read it from stdin")
    put.add_argument("--context", metavar="B64", help="context from an earlier get")
    put.add_argument("--bucket", default="default", help="bucket (default: default)")
    put.add_argument("--w", type=_positive_int, help="acks to wait for (default: bucket's W)")

    delete = _command(
        sub, "delete", "Delete a key (writes a tombstone); prints its context.",
        """\
        ctx=$(dynamokv get greeting --json | jq -r .context)
        dynamokv delete greeting --context "$ctx"
        """,
        cmd_delete, parents=[client],
        details="Without --context the delete only supersedes versions the node already merged.",
    )
    delete.add_argument("key")
    delete.add_argument("--context", metavar="B64", help="context from an earlier get")
    delete.add_argument("--bucket", default="default", help="bucket (default: default)")
    delete.add_argument("--w", type=_positive_int, help="acks to wait for (default: bucket's W)")

    operator_verbs.add_commands(sub, _command, client)
    ring = _command(
        sub, "ring", "Show who owns which partitions, and how evenly.",
        "dynamokv ring --node 127.0.0.1:7001", cmd_ring, parents=[client],
        details="""\
        Lists each node's partitions, its share, the imbalance ratio (largest partition count
        over the ideal Q/S), how many distinct replicas every key gets (N, unless fewer
        nodes own partitions), and windows of N consecutive partitions that repeat an owner
        (their preference lists skip the repeat, so replica counts are unaffected).""",
    )
    ring.add_argument("--n", type=_positive_int, default=QuorumDefaults().n,
                      help="N to check windows against (default %(default)s)")

    status = _command(
        sub, "status", "Show the cluster: who is up as seen by whom, hints, handoffs, "
        "anti-entropy.",
        "dynamokv status\ndynamokv status --json   # per node, with the Merkle root of each "
        "partition\ndynamokv status --one --node 127.0.0.1:7002", cmd_status, parents=[client],
        details="""\
        Asks every member for its own view. --one shows only the view of the node given with
        --node (its latency percentiles, storage engine and connections included).""",
    )
    status.add_argument("--one", action="store_true", help="only the view of one node")

    bucket = _command(
        sub, "bucket", "Show or change a bucket's properties (N, R, W, last-writer-wins).",
        """\
        dynamokv bucket users
        dynamokv bucket carts --n 3 --r 2 --w 2 --lww false""",
        cmd_bucket, parents=[client],
        details="Without options it prints the bucket's current properties.",
    )
    bucket.add_argument("name")
    _quorum_options(bucket, defaults=False)
    bucket.add_argument("--lww", type=_bool, metavar="true|false",
                        help="last-writer-wins: keep only the newest version, never siblings")
    bucket.add_argument("--buffer", type=_bool, metavar="true|false",
                        help="object buffer: replicas acknowledge writes from memory, only the "
                             "coordinator's copy is synced first (paper 6.1; off by default)")

    _command(
        sub, "sim", "Run the deterministic simulator (options: dynamokv sim --help).",
        "dynamokv sim --help", None,
        details="Everything after `sim` is passed to the simulator.",
    )
    _command(
        sub, "bench", "Run a benchmark of a dynamokv checkout (bench/NAME.py).",
        "dynamokv bench paper --quick", None,
        details="`dynamokv bench NAME ARGS...` runs `bench/NAME.py ARGS...` from the current "
                "directory, which must be a dynamokv checkout (bench/ is not installed).",
    )
    return parser


def _quorum_options(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    d = QuorumDefaults()
    for flag, default, what in (("--n", d.n, "replicas per key"), ("--r", d.r, "read quorum"),
                                ("--w", d.w, "write quorum")):
        p.add_argument(
            flag, type=_positive_int, default=default if defaults else None,
            help=f"{what}" + (f" (default {default})" if defaults else ""),
        )


# -- entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"]:
        # The simulator owns its options; argparse here would reject the ones it doesn't know.
        return _run_sim(args_list[1:])
    if args_list[:1] == ["bench"] and len(args_list) > 1 and not args_list[1].startswith("-"):
        return _run_bench(args_list[1], args_list[2:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        getattr(args, "help_parser", parser).print_help(sys.stderr)
        return EXIT_USAGE
    try:
        client_tls.configure(args)
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError as e:
        _print_error(e, args)
        return EXIT_USAGE
    except MissingComponent as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except DynamoKVError as e:
        _print_error(e, args)
        return EXIT_FAILED
    except OSError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED


def _print_error(e: DynamoKVError, args: argparse.Namespace) -> None:
    if getattr(args, "json", False):
        render.print_json({"error": {"code": e.code, "message": e.message, "details": e.details}})
    print(f"error: {e.code}: {e.message}", file=sys.stderr)
    details = {k: v for k, v in e.details.items() if k != "tail"}
    if details:
        print(f"  details: {render.dumps(details).replace(chr(10), chr(10) + '  ')}",
              file=sys.stderr)
    tail = e.details.get("tail")
    if tail:
        print("  last lines of the log:", file=sys.stderr)
        print(textwrap.indent(str(tail), "    | "), file=sys.stderr)
    if isinstance(e, NoNodeAvailable) and "cluster up" not in e.message:
        print(START_HINT, file=sys.stderr)


def _run_sim(argv: list[str]) -> int:
    try:
        mod = _import("dynamokv.sim.run", "the simulator")
    except MissingComponent as e:
        if any(a in ("-h", "--help") for a in argv):
            build_parser().parse_args(["sim", "--help"])  # exits 0 with our summary
        print(f"error: {e}; `dynamokv sim` needs it", file=sys.stderr)
        return EXIT_FAILED
    try:
        result = mod.main(argv)
    except SystemExit as e:  # an argparse-based simulator exits on --help or bad options
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_FAILED)
    return int(result or 0)


def _run_bench(name: str, argv: list[str]) -> int:
    """``bench/NAME.py`` of the checkout in the current directory, as a child process."""
    import subprocess

    if not name.replace("_", "").isalnum():
        print(f"error: {name!r} is not a benchmark name (e.g. paper)", file=sys.stderr)
        return EXIT_USAGE
    script = Path.cwd() / "bench" / f"{name}.py"
    if not script.is_file():
        print(f"error: no {script}: run `dynamokv bench {name}` from a dynamokv checkout "
              "(bench/ is not installed with the package)", file=sys.stderr)
        return EXIT_FAILED
    try:
        return subprocess.run([sys.executable, str(script), *argv], check=False).returncode
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# -- handlers ------------------------------------------------------------------------------


def cmd_cluster_up(args: argparse.Namespace) -> int:
    specs = cluster.plan(
        nodes=args.nodes,
        data_dir=args.data_dir,
        base_port=args.base_port,
        engine=args.engine,
        sync=args.sync,
        http_base_port=args.http_base_port,
        metrics_base_port=args.metrics_base_port,
        ring_size=args.ring_size,
        quorum=(args.n, args.r, args.w),
        cluster_name=args.cluster_name,
    )
    # Check what every node would reject before starting any: one clear error, not N logs.
    d = QuorumDefaults()
    NodeConfig(
        node_id=specs[0].node_id, listen=specs[0].address, data_dir=specs[0].data_dir,
        ring_size=args.ring_size,
        quorum=QuorumDefaults(n=args.n or d.n, r=args.r or d.r, w=args.w or d.w),
        **({"cluster_name": args.cluster_name} if args.cluster_name else {}),
    ).validate()
    if args.credentials is not None:
        from dynamokv.api.sigv4 import load_credentials

        load_credentials(args.credentials)
        keys = ("--credentials", str(args.credentials.resolve()))
        specs = [dataclasses.replace(spec, argv=spec.argv + keys) for spec in specs]
    return cluster.up(
        specs, args.data_dir, probe=probe_status, ring_probe=probe_ring_members,
        detach=args.detach, start_timeout_s=args.start_timeout,
    )


def cmd_cluster_down(args: argparse.Namespace) -> int:
    return cluster.down(args.data_dir)


def probe_status(address: str) -> str | None:
    """None if the node at ``address`` answers ``status()``, else a short reason."""
    try:
        client = make_client([address], "server", 1.0)
    except MissingComponent:
        raise
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    try:
        client.status()
        return None
    except Exception as e:  # refused, timed out, still starting: all mean "not yet"
        return f"{type(e).__name__}: {e}"
    finally:
        client.close()


def probe_ring_members(address: str) -> list[str] | None:
    try:
        client = make_client([address], "server", 1.0)
    except Exception:
        return None
    try:
        return list(client.ring().node_ids())
    except Exception:
        return None
    finally:
        client.close()


def _nodes(args: argparse.Namespace) -> list[str]:
    raw = args.nodes or [os.environ.get(NODES_ENV) or DEFAULT_NODE]
    nodes = [n.strip() for item in raw for n in item.split(",") if n.strip()]
    if not nodes:
        raise ConfigError(f"no node given: use --node HOST:PORT or set {NODES_ENV}")
    for n in nodes:
        parse_address(n)
    return nodes


def _with_client(args: argparse.Namespace, body: Callable[[ClientLike], int]) -> int:
    nodes = _nodes(args)
    try:
        client = make_client(nodes, args.routing, args.timeout)
        try:
            return body(client)
        finally:
            client.close()
    except ConnectionError as e:
        # Should the client let a refused connection through, it still means "no node answered".
        raise NoNodeAvailable(f"cannot reach {', '.join(nodes)}: {e}", {"nodes": nodes}) from e


def _read_value(text: str) -> str | bytes:
    # "-" reads raw bytes so binary values survive; anything else is taken as typed (utf-8).
    return sys.stdin.buffer.read() if text == "-" else text


def cmd_get(args: argparse.Namespace) -> int:
    def body(client: ClientLike) -> int:
        result = client.get(args.key, bucket=args.bucket, r=args.r)
        if args.json:
            render.print_json(render.get_result_dict(args.key, args.bucket, result))
        else:
            print(render.get_result_text(result))
        return EXIT_OK

    return _with_client(args, body)


def cmd_put(args: argparse.Namespace) -> int:
    context = context_from_base64(args.context) if args.context else None
    value = _read_value(args.value)

    def body(client: ClientLike) -> int:
        new = client.put(args.key, value, context, bucket=args.bucket, w=args.w)
        _print_context(args, new)
        return EXIT_OK

    return _with_client(args, body)


def cmd_delete(args: argparse.Namespace) -> int:
    context = context_from_base64(args.context) if args.context else None

    def body(client: ClientLike) -> int:
        new = client.delete(args.key, context, bucket=args.bucket, w=args.w)
        _print_context(args, new)
        return EXIT_OK

    return _with_client(args, body)


def _print_context(args: argparse.Namespace, context: Any) -> None:
    text = render.context_text(context)
    if args.json:
        render.print_json({"bucket": args.bucket, "key": args.key, "context": text})
    else:
        print(f"context: {text}")


def cmd_ring(args: argparse.Namespace) -> int:
    def body(client: ClientLike) -> int:
        ring = client.ring()
        summary = render.ring_summary(ring, balance(ring, args.n))
        if args.json:
            render.print_json(summary)
        else:
            console = render.make_console()
            for item in render.ring_renderables(summary):
                console.print(item)
        return EXIT_OK

    return _with_client(args, body)


def cmd_status(args: argparse.Namespace) -> int:
    if not args.one:
        return membership.cmd_cluster_status(args)

    def body(client: ClientLike) -> int:
        status = client.status()
        ring: Ring | None = None
        if "members" not in status:
            try:
                ring = client.ring()
            except DynamoKVError:
                ring = None  # the status alone is still worth showing
        summary = render.status_summary(status, ring)
        if args.json:
            render.print_json(summary)
        else:
            console = render.make_console()
            for item in render.status_renderables(summary):
                console.print(item)
        return EXIT_OK

    return _with_client(args, body)


def cmd_bucket(args: argparse.Namespace) -> int:
    props = {k: getattr(args, k) for k in ("n", "r", "w", "lww", "buffer")
             if getattr(args, k) is not None}

    def body(client: ClientLike) -> int:
        result = client.bucket_props(args.name, **props)
        if args.json:
            render.print_json({"bucket": args.name, "props": result})
        else:
            render.make_console().print(render.mapping_table(result, title=f"bucket {args.name}"))
        return EXIT_OK

    return _with_client(args, body)


__all__ = ["build_parser", "main"]
