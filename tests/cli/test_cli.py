"""The command line without a cluster: parsing, help, configuration errors, output, processes.

Client commands run against a fake client; ``cluster up/down`` run against stand-in node
processes (a sleeping Python whose argv looks like a node's), so no server is needed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dynamokv.cli import cluster, components, main, node_start, render
from dynamokv.core.claim import balance
from dynamokv.core.ring import Member, MemberStatus, Ring
from dynamokv.errors import ConfigError, NoNodeAvailable, QuorumNotMet
from dynamokv.runtime.config import NodeConfig

# -- help ----------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["node"],
    ["node", "start"],
    ["cluster"],
    ["cluster", "up"],
    ["cluster", "down"],
    ["get"],
    ["put"],
    ["delete"],
    ["ring"],
    ["status"],
    ["bucket"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "dynamokv")
def test_help_exits_0_and_shows_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main.main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out
    assert f"dynamokv {' '.join(command)}".strip() in out.split("example:", 1)[1]


def test_every_subcommand_has_a_one_line_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main.main(["--help"])
    out = capsys.readouterr().out
    for name in ("node", "cluster", "get", "put", "delete", "ring", "status", "bucket", "sim"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10


def test_sim_help_when_the_simulator_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(main, "_import", _missing)
    with pytest.raises(SystemExit) as info:
        main.main(["sim", "--help"])
    assert info.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_sim_missing_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(main, "_import", _missing)
    assert main.main(["sim", "--seed", "1"]) == 1
    assert "simulator" in capsys.readouterr().err


def test_sim_delegates_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class FakeSim:
        @staticmethod
        def main(argv: list[str]) -> int:
            seen.append(argv)
            return 3

    monkeypatch.setattr(main, "_import", lambda module, what: FakeSim)
    assert main.main(["sim", "--nodes", "5", "--unknown-to-us"]) == 3
    assert seen == [["--nodes", "5", "--unknown-to-us"]]


def _missing(module: str, what: str) -> Any:
    raise main.MissingComponent(f"{what} ({module}) is not available")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("group", ["node", "cluster"])
def test_group_without_subcommand_prints_its_help(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main([group]) == 2
    assert f"dynamokv {group}" in capsys.readouterr().err


def test_bad_choice_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main.main(["node", "start", "--id", "n1", "--listen", "127.0.0.1:7001",
                   "--data-dir", "d", "--engine", "rocksdb"])
    assert info.value.code == 2
    assert "rocksdb" in capsys.readouterr().err


# -- node start ----------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[NodeConfig]:
    configs: list[NodeConfig] = []

    def fake_run_server(config: NodeConfig) -> int:
        configs.append(config)
        return 0

    monkeypatch.setattr(node_start, "run_server", fake_run_server)
    return configs


NODE = ["node", "start", "--id", "n1", "--listen", "127.0.0.1:7001", "--data-dir", "d1"]


def test_node_start_builds_the_config(served: list[NodeConfig]) -> None:
    rc = main.main([*NODE, "--seeds", "127.0.0.1:7002, 127.0.0.1:7003,", "--engine", "sqlite",
                    "--sync", "fsync", "--metrics", "127.0.0.1:9101", "--http", "127.0.0.1:8001",
                    "--ring-size", "128", "--n", "5", "--r", "3", "--w", "4", "--no-uvloop"])
    assert rc == 0
    (c,) = served
    assert c.node_id == "n1"
    assert c.listen == "127.0.0.1:7001"
    assert c.data_dir == Path("d1")
    assert c.seeds == ("127.0.0.1:7002", "127.0.0.1:7003")
    assert (c.engine, c.engine_sync) == ("sqlite", "fsync")
    assert (c.metrics_listen, c.http_listen) == ("127.0.0.1:9101", "127.0.0.1:8001")
    assert c.ring_size == 128
    assert (c.quorum.n, c.quorum.r, c.quorum.w) == (5, 3, 4)
    assert c.use_uvloop is False


def test_node_start_defaults(served: list[NodeConfig]) -> None:
    assert main.main(NODE) == 0
    (c,) = served
    assert c.seeds == ()
    assert (c.engine, c.engine_sync, c.ring_size) == ("lmdb", "os", 64)
    assert (c.quorum.n, c.quorum.r, c.quorum.w) == (3, 2, 2)
    assert c.metrics_listen is None and c.http_listen is None


def test_node_start_returns_the_servers_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_start, "run_server", lambda config: 7)
    assert main.main(NODE) == 7


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--id", "a.b"], "must not contain"),
        (["--listen", "7001"], "must look like"),
        (["--seeds", "localhost"], "must look like"),
        (["--ring-size", "100"], "power of two"),
        (["--n", "3", "--r", "4"], "r=4"),
        (["--metrics", "nowhere"], "--metrics"),
        (["--http", "127.0.0.1:99999"], "--http"),
    ],
)
def test_node_start_config_errors_exit_2(
    extra: list[str], needle: str, served: list[NodeConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main([*NODE, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ConfigError: ")
    assert needle in err
    assert served == []


def test_node_start_when_the_server_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(components, "load", _missing)
    assert main.main(NODE) == 1
    assert "node server" in capsys.readouterr().err


# -- client commands -----------------------------------------------------------------------


@dataclass(frozen=True)
class FakeContext:
    raw: bytes

    def to_base64(self) -> str:
        return base64.urlsafe_b64encode(self.raw).decode()


@dataclass
class FakeGetResult:
    values: list[bytes]
    context: FakeContext
    found: bool


@dataclass
class FakeClient:
    nodes: list[str]
    routing: str
    timeout_s: float
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    result: FakeGetResult = field(
        default_factory=lambda: FakeGetResult([b"hello"], FakeContext(b"ctx1"), True)
    )
    ring_value: Ring | None = None
    status_value: dict[str, Any] = field(default_factory=dict)
    raises: BaseException | None = None
    closed: bool = False

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if self.raises is not None:
            raise self.raises

    def get(self, key: str | bytes, *, bucket: str = "default", r: int | None = None) -> Any:
        self._call("get", key, bucket, r)
        return self.result

    def put(self, key: str | bytes, value: str | bytes, context: Any = None, *,
            bucket: str = "default", w: int | None = None) -> Any:
        self._call("put", key, value, context, bucket, w)
        return FakeContext(b"ctx2")

    def delete(self, key: str | bytes, context: Any = None, *, bucket: str = "default",
               w: int | None = None) -> Any:
        self._call("delete", key, context, bucket, w)
        return FakeContext(b"ctx3")

    def ring(self) -> Ring:
        self._call("ring")
        assert self.ring_value is not None
        return self.ring_value

    def status(self) -> dict[str, Any]:
        self._call("status")
        return self.status_value

    def bucket_props(self, bucket: str, **props: Any) -> dict[str, Any]:
        self._call("bucket_props", bucket, props)
        return {"n": 3, "r": 2, "w": 2, "lww": False, **props}

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeClient]]:
    made: list[FakeClient] = []
    template = FakeClient([], "", 0.0)

    def make(nodes: list[str], routing: str, timeout_s: float) -> FakeClient:
        c = FakeClient(list(nodes), routing, timeout_s, result=template.result,
                       ring_value=template.ring_value, status_value=template.status_value,
                       raises=template.raises)
        made.append(c)
        return c

    monkeypatch.setattr(main, "make_client", make)
    monkeypatch.setattr(main, "context_from_base64", lambda text: ("decoded", text))
    monkeypatch.delenv(main.NODES_ENV, raising=False)
    made.append(template)  # index 0: set fields here before running a command
    yield made
    for c in made[1:]:
        assert c.closed


def test_get_prints_value_and_context(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["get", "greeting"]) == 0
    out = capsys.readouterr().out
    assert out == f"hello\ncontext: {FakeContext(b'ctx1').to_base64()}\n"
    client = fake[1]
    assert client.nodes == ["127.0.0.1:7001"]
    assert client.routing == "server"
    assert client.calls == [("get", "greeting", "default", None)]


def test_get_siblings_and_binary_values(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake[0].result = FakeGetResult([b"a", b"\xff\x00"], FakeContext(b"c"), True)
    assert main.main(["get", "k", "--bucket", "b", "--r", "3", "--routing", "partition"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 siblings"
    assert lines[1] == "[1] a"
    assert lines[2] == "[2] base64:" + base64.b64encode(b"\xff\x00").decode()
    assert lines[3].startswith("context: ")
    assert fake[1].calls == [("get", "k", "b", 3)]
    assert fake[1].routing == "partition"


def test_get_json(fake: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake[0].result = FakeGetResult([b"x", b"\x80"], FakeContext(b"c"), True)
    assert main.main(["get", "k", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["found"] is True
    assert doc["siblings"] == 2
    assert doc["values"] == [
        {"encoding": "utf-8", "value": "x"},
        {"encoding": "base64", "value": base64.b64encode(b"\x80").decode()},
    ]
    assert doc["context"] == FakeContext(b"c").to_base64()


def test_get_not_found(fake: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake[0].result = FakeGetResult([], FakeContext(b""), False)
    assert main.main(["get", "nope"]) == 0
    assert capsys.readouterr().out == "not found\n"


def test_nodes_from_flags_and_environment(
    fake: list[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main.main(["get", "k", "--node", "127.0.0.1:7002,127.0.0.1:7003",
                      "--node", "127.0.0.1:7004", "--timeout", "1.5"]) == 0
    assert fake[1].nodes == ["127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004"]
    assert fake[1].timeout_s == 1.5
    monkeypatch.setenv(main.NODES_ENV, "127.0.0.1:7101,127.0.0.1:7102")
    assert main.main(["get", "k"]) == 0
    assert fake[2].nodes == ["127.0.0.1:7101", "127.0.0.1:7102"]


def test_bad_node_address_exits_2(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["get", "k", "--node", "somewhere"]) == 2
    assert "error: ConfigError: " in capsys.readouterr().err
    assert len(fake) == 1  # no client was made


def test_put_prints_the_new_context(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["put", "greeting", "hello", "--context", "Y3R4", "--w", "3",
                      "--bucket", "b"]) == 0
    assert capsys.readouterr().out == f"context: {FakeContext(b'ctx2').to_base64()}\n"
    assert fake[1].calls == [("put", "greeting", "hello", ("decoded", "Y3R4"), "b", 3)]


def test_put_reads_stdin_bytes(
    fake: list[FakeClient], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Stdin:
        buffer = __import__("io").BytesIO(b"\x00\xffbin")

    monkeypatch.setattr(sys, "stdin", Stdin)
    assert main.main(["put", "k", "-", "--json"]) == 0
    assert fake[1].calls == [("put", "k", b"\x00\xffbin", None, "default", None)]
    assert json.loads(capsys.readouterr().out)["context"] == FakeContext(b"ctx2").to_base64()


def test_delete(fake: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["delete", "k", "--context", "abc"]) == 0
    assert fake[1].calls == [("delete", "k", ("decoded", "abc"), "default", None)]
    assert capsys.readouterr().out.startswith("context: ")


def test_bad_context_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(main, "make_client", lambda *a: pytest.fail("no client needed"))
    assert main.main(["put", "k", "v", "--context", "!!!not base64!!!"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: InvalidRequest: ")


def test_errors_show_code_message_and_details(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake[0].raises = QuorumNotMet("1 of 2 replicas answered", {"answered": ["n1"]})
    assert main.main(["put", "k", "v"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: QuorumNotMet: 1 of 2 replicas answered\n")
    assert '"answered"' in err and '"n1"' in err


def test_error_as_json(fake: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake[0].raises = QuorumNotMet("too few", {"needed": 2})
    assert main.main(["get", "k", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"] == {"code": "QuorumNotMet", "message": "too few",
                            "details": {"needed": 2}}


@pytest.mark.parametrize(
    "exc",
    [NoNodeAvailable("nothing answered", {"tried": {}}), ConnectionRefusedError(111, "refused")],
)
def test_unreachable_node_hints_at_cluster_up(
    exc: BaseException, fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake[0].raises = exc
    assert main.main(["get", "k"]) == 1
    err = capsys.readouterr().err
    assert "error: NoNodeAvailable: " in err
    assert "dynamokv cluster up" in err


def test_bucket_sends_only_given_props(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["bucket", "carts", "--n", "3", "--lww", "false"]) == 0
    assert fake[1].calls == [("bucket_props", "carts", {"n": 3, "lww": False})]
    assert "bucket carts" in capsys.readouterr().out
    assert main.main(["bucket", "users", "--json"]) == 0
    assert fake[2].calls == [("bucket_props", "users", {})]
    assert json.loads(capsys.readouterr().out)["props"]["r"] == 2


def test_bucket_rejects_a_bad_bool(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main.main(["bucket", "b", "--lww", "maybe"])
    assert info.value.code == 2


def make_ring(owners: str, q: int = 8, version: int = 3) -> Ring:
    ids = sorted(set(owners))
    members = tuple(Member(f"n{i}", f"127.0.0.1:{7000 + int(i)}") for i in ids)
    return Ring(q=q, owners=tuple(f"n{c}" for c in owners), members=members,
                version=version, claimant="n1")


def test_ring_table(fake: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake[0].ring_value = make_ring("12312312")
    assert main.main(["ring"]) == 0
    out = capsys.readouterr().out
    assert "ring version 3" in out
    for node in ("n1", "n2", "n3"):
        assert node in out
    assert "imbalance" in out
    # Wrapping windows (6,7,0) = n1,n2,n1 and (7,0,1) = n2,n1,n2 repeat an owner.
    assert "2 window(s)" in out


def test_ring_json(fake: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake[0].ring_value = make_ring("12341234")
    assert main.main(["ring", "--json", "--n", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 3
    assert doc["q"] == 8
    assert [n["partitions"] for n in doc["nodes"]] == [2, 2, 2, 2]
    assert doc["nodes"][0]["ranges"] == [[0, 0], [4, 4]]
    assert doc["imbalance"] == 0.0
    assert doc["violations"] == []
    assert doc["balanced"] is True


def test_status(fake: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake[0].status_value = {
        "node": "n2",
        "ring_version": 7,
        "members": [
            {"node": "n1", "address": "127.0.0.1:7001", "status": "valid", "up": True},
            {"node": "n2", "address": "127.0.0.1:7002", "status": "valid", "up": True},
            {"node": "n3", "address": "127.0.0.1:7003", "status": "valid", "up": False},
        ],
        "latency": {"latency_ms": {"get": {"p50": 1.0}}},
        "uptime_s": 12.5,
    }
    assert main.main(["status", "--one", "--node", "127.0.0.1:7002"]) == 0
    out = capsys.readouterr().out
    assert "node n2" in out and "ring version 7" in out
    assert "down" in out and "up" in out
    assert "uptime_s" in out
    assert main.main(["status", "--one", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["node_id"] == "n2"
    assert doc["ring_version"] == 7
    assert [(m["id"], m["up"]) for m in doc["members"]] == [
        ("n1", "up"), ("n2", "up"), ("n3", "down")
    ]
    assert doc["status"]["uptime_s"] == 12.5


def test_status_without_members_uses_the_ring(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake[0].status_value = {"node": "n1"}
    fake[0].ring_value = make_ring("12121212", version=4)
    assert main.main(["status", "--one", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ring_version"] == 4
    assert [(m["id"], m["up"]) for m in doc["members"]] == [("n1", "?"), ("n2", "?")]


# -- render --------------------------------------------------------------------------------


def test_decode_value() -> None:
    assert render.decode_value(b"caf\xc3\xa9") == ("utf-8", "café")
    assert render.decode_value(b"\xff") == ("base64", "/w==")
    assert render.decode_value("s") == ("utf-8", "s")


def test_jsonable_turns_bytes_into_base64() -> None:
    doc = render.jsonable({"b": b"\x00\x01", "t": (1, 2), "s": {3}, "p": Path("x"),
                           "e": MemberStatus.VALID, "c": FakeContext(b"z")})
    assert doc == {"b": "AAE=", "t": [1, 2], "s": [3], "p": "x", "e": "valid",
                   "c": FakeContext(b"z").to_base64()}
    assert json.loads(render.dumps({"v": b"hi"})) == {"v": "aGk="}


def test_partition_runs() -> None:
    assert render.partition_runs([7, 0, 1, 2, 5]) == [(0, 2), (5, 5), (7, 7)]
    assert render.runs_text([(0, 2), (5, 5)]) == "0-2, 5"
    assert render.runs_text([]) == "-"


def test_markup_in_values_is_printed_as_typed(
    fake: list[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake[0].status_value = {"node": "[bold]n1", "note": "[red]x[/red]"}
    fake[0].ring_value = make_ring("11111111")
    assert main.main(["status", "--one"]) == 0
    out = capsys.readouterr().out
    assert "[bold]n1" in out and "[red]x[/red]" in out


def test_ring_summary_counts_leaving_members() -> None:
    ring = make_ring("11111111").with_member(
        Member("n9", "127.0.0.1:7009", MemberStatus.LEAVING)
    )
    summary = render.ring_summary(ring, balance(ring, 3))
    assert [(n["id"], n["partitions"], n["status"]) for n in summary["nodes"]] == [
        ("n1", 8, "valid"), ("n9", 0, "leaving")
    ]


# -- cluster: planning ---------------------------------------------------------------------


def test_plan_ports_ids_seeds_and_argv(tmp_path: Path) -> None:
    specs = cluster.plan(nodes=3, data_dir=tmp_path, base_port=7101, engine="memory",
                         http_base_port=8101, metrics_base_port=9201, ring_size=32,
                         quorum=(3, None, 1), python="python3")
    assert [s.node_id for s in specs] == ["n1", "n2", "n3"]
    assert [s.address for s in specs] == ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]
    assert specs[2].http_address == "127.0.0.1:8103"
    assert specs[2].metrics_address == "127.0.0.1:9203"
    assert specs[1].data_dir == tmp_path.resolve() / "n2"
    assert specs[1].log_path == tmp_path.resolve() / "n2" / "node.log"
    first, second = specs[0].argv, specs[1].argv
    assert first[:5] == ("python3", "-m", "dynamokv", "node", "start")
    assert "--seeds" not in first
    assert second[second.index("--seeds") + 1] == "127.0.0.1:7101"
    assert second[second.index("--engine") + 1] == "memory"
    assert second[second.index("--ring-size") + 1] == "32"
    assert second[second.index("--n") + 1] == "3"
    assert "--r" not in second
    assert second[second.index("--w") + 1] == "1"


def test_plan_argv_parses_as_node_start(
    tmp_path: Path, served: list[NodeConfig]
) -> None:
    (spec,) = cluster.plan(nodes=1, data_dir=tmp_path, http_base_port=0)
    assert main.main(list(spec.argv[3:])) == 0
    (config,) = served
    assert config.node_id == "n1"
    assert config.http_listen is None
    assert config.metrics_listen == "127.0.0.1:9101"


def test_plan_rejects_overlapping_or_invalid_ports(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="overlap"):
        cluster.plan(nodes=5, data_dir=tmp_path, base_port=7001, http_base_port=7003)
    with pytest.raises(ConfigError, match="1024"):
        cluster.plan(nodes=3, data_dir=tmp_path, base_port=65534)
    with pytest.raises(ConfigError, match="between 1 and 64"):
        cluster.plan(nodes=0, data_dir=tmp_path)


def test_cluster_up_config_error_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["cluster", "up", "--data-dir", str(tmp_path), "--base-port", "7001",
                      "--http-base-port", "7002"]) == 2
    assert "error: ConfigError: " in capsys.readouterr().err


def test_child_env_can_import_this_dynamokv(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import dynamokv.cli.main as m; print(m.__file__)"],
        env=cluster.child_env(), cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert Path(out).resolve() == Path(main.__file__).resolve()


# -- cluster: processes --------------------------------------------------------------------

SLEEPER = (
    "import os, signal, sys, time\n"
    "if 'stubborn' in sys.argv: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('pretending', os.getpid(), flush=True)\n"
    "time.sleep(120)\n"
)


def fake_node_argv(node_id: str, *extra: str) -> tuple[str, ...]:
    # Looks like `python -m dynamokv node start --id nX` to runs_dynamokv; sleeps.
    return (sys.executable, "-c", SLEEPER, "dynamokv", "node", "start", "--id", node_id, *extra)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fake_specs(tmp_path: Path, count: int, *extra: str) -> list[cluster.NodeSpec]:
    specs = []
    for i in range(1, count + 1):
        d = tmp_path / f"n{i}"
        specs.append(cluster.NodeSpec(f"n{i}", f"127.0.0.1:{free_port()}", None, None, d,
                                      d / "node.log", fake_node_argv(f"n{i}", *extra)))
    return specs


def test_runs_dynamokv_checks_the_command_line() -> None:
    proc = subprocess.Popen(fake_node_argv("n1"))
    try:
        assert wait_for(lambda: cluster.runs_dynamokv(proc.pid, ["node", "start", "--id", "n1"]))
        assert not cluster.runs_dynamokv(proc.pid, ["node", "start", "--id", "n2"])
        assert not cluster.runs_dynamokv(proc.pid, ["cluster", "up"])
    finally:
        proc.kill()
        proc.wait()
    assert not cluster.runs_dynamokv(proc.pid, ["node", "start", "--id", "n1"])


def test_stop_pids_escalates_to_sigkill() -> None:
    polite = subprocess.Popen(fake_node_argv("n1"))
    stubborn = subprocess.Popen(fake_node_argv("n2", "stubborn"), stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout is not None
        stubborn.stdout.readline()  # its SIGTERM handler is installed
        t = time.monotonic()
        killed = cluster.stop_pids([polite.pid, stubborn.pid], grace_s=0.5)
        assert killed == [stubborn.pid]
        assert time.monotonic() - t < 5
        # stop_pids reaped both (they are our children), so only liveness can be checked.
        assert not cluster.pid_alive(polite.pid)
        assert not cluster.pid_alive(stubborn.pid)
    finally:
        for p in (polite, stubborn):
            if p.poll() is None:
                p.kill()
                p.wait()
        if stubborn.stdout is not None:
            stubborn.stdout.close()


def test_up_detached_then_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = fake_specs(tmp_path, 2)
    probed: list[str] = []

    def probe(address: str) -> str | None:
        probed.append(address)
        return None

    assert cluster.up(specs, tmp_path, probe=probe, ring_probe=lambda a: ["n1", "n2"],
                      detach=True) == 0
    doc = json.loads((tmp_path / "cluster.json").read_text())
    pids = [n["pid"] for n in doc["nodes"]]
    try:
        assert probed == [s.address for s in specs]
        assert doc["supervisor_pid"] is None
        assert [n["id"] for n in doc["nodes"]] == ["n1", "n2"]
        assert doc["nodes"][0]["argv"] == list(specs[0].argv)
        assert doc["nodes"][1]["log"] == str(specs[1].log_path)
        out = capsys.readouterr().out
        assert "dynamokv put --node" in out and "cluster down" in out
        assert all(cluster.pid_alive(p) for p in pids)
        assert wait_for(lambda: "pretending" in specs[0].log_path.read_text())
        # A second cluster on the same data dir is refused while this one runs.
        with pytest.raises(ConfigError, match="still running"):
            cluster.up(specs, tmp_path, probe=probe, detach=True)
        assert main.main(["cluster", "down", "--data-dir", str(tmp_path)]) == 0
        assert not any(cluster.pid_alive(p) for p in pids)
        assert "n1: pid" in capsys.readouterr().out
    finally:
        kill_all(pids)


def test_down_never_signals_a_reused_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        entry = fake_specs(tmp_path, 1)[0].manifest_entry(stranger.pid)
        cluster.write_manifest(tmp_path, [entry], supervisor_pid=stranger.pid)
        assert cluster.down(tmp_path) == 0
        assert "not running dynamokv; skipped" in capsys.readouterr().out
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_down_without_manifest_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["cluster", "down", "--data-dir", str(tmp_path)]) == 2
    assert "no cluster.json" in capsys.readouterr().err


def test_node_that_dies_at_start_points_at_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "n1"
    argv = (sys.executable, "-c", "import sys; print('boom: bad disk'); sys.exit(3)")
    spec = cluster.NodeSpec("n1", f"127.0.0.1:{free_port()}", None, None, d, d / "node.log", argv)
    with pytest.raises(cluster.ClusterError) as info:
        cluster.up([spec], tmp_path, probe=lambda a: "refused", detach=True, start_timeout_s=10)
    assert "exited with code 3" in info.value.message
    assert str(spec.log_path) in info.value.message
    assert "boom: bad disk" in info.value.details["tail"]
    assert not (tmp_path / "cluster.json").exists()


def test_node_that_never_answers_is_stopped(tmp_path: Path) -> None:
    specs = fake_specs(tmp_path, 1)
    with pytest.raises(cluster.ClusterError, match="did not answer") as info:
        cluster.up(specs, tmp_path, probe=lambda a: "refused", detach=True, start_timeout_s=0.5)
    assert str(specs[0].log_path) in info.value.message
    # The half-started node was stopped (it logged its pid, in case it got that far).
    for line in specs[0].log_path.read_text().splitlines():
        if line.startswith("pretending "):
            assert not cluster.pid_alive(int(line.split()[1]))


def test_busy_port_is_refused_before_starting(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        (spec,) = fake_specs(tmp_path, 1)
        spec = cluster.NodeSpec(spec.node_id, f"127.0.0.1:{port}", None, None, spec.data_dir,
                                spec.log_path, spec.argv)
        with pytest.raises(ConfigError, match="in use"):
            cluster.up([spec], tmp_path, probe=lambda a: None, detach=True)
    assert not spec.log_path.exists()


def test_supervisor_reports_dead_nodes_and_exits_when_all_are_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "n1"
    argv = (sys.executable, "-c", "import time; time.sleep(0.5)")
    spec = cluster.NodeSpec("n1", f"127.0.0.1:{free_port()}", None, None, d, d / "node.log", argv)
    assert cluster.up([spec], tmp_path, probe=lambda a: None, detach=False) == 1
    out = capsys.readouterr().out
    assert "node n1" in out and "exited with code 0" in out
    assert "every node has exited" in out


def wait_for(cond: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if cluster.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


@pytest.mark.parametrize(
    ("extra", "needle"), [(["--ring-size", "100"], "power of two"), (["--r", "5"], "r=5")]
)
def test_cluster_up_validates_node_config_before_starting(
    extra: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["cluster", "up", "--data-dir", str(tmp_path), *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "n1").exists()


def test_describe_exit() -> None:
    assert cluster.describe_exit(3) == "exited with code 3"
    assert cluster.describe_exit(-9) == "was killed by SIGKILL"


def test_node_limits_are_set_by_name_with_a_precise_error_otherwise() -> None:
    from dynamokv.cli.node_start import parse_limits

    limits = parse_limits(["connections_max=2048", "idle_timeout_ms=60000"])
    assert limits.connections_max == 2048 and limits.idle_timeout_ms == 60_000
    assert limits.frame_bytes_max == parse_limits([]).frame_bytes_max  # the rest: defaults
    for bad, says in (("nope=1", "NAME one of"), ("connections_max", "NAME=VALUE"),
                      ("connections_max=lots", "not an integer"),
                      ("connections_max=-1", ">= 0")):
        with pytest.raises(ConfigError, match=says):
            parse_limits([bad])
