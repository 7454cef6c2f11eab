"""The node configuration file: every key, relative paths, precise errors, flags override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamokv.cli import node_options
from dynamokv.cli.main import build_parser
from dynamokv.core.settings import Limits
from dynamokv.errors import ConfigError
from dynamokv.runtime import config_file

FULL = """\
id = "n1"
cluster_name = "prod-eu"
listen = "0.0.0.0:7001"
advertise = "10.0.0.11:7001"
seeds = ["10.0.0.11:7001", "10.0.0.12:7001"]
data_dir = "data/n1"
engine = "sqlite"
sync = "fsync"
http = "0.0.0.0:8001"
metrics = "0.0.0.0:9101"
ring_size = 128
n = 3
r = 2
w = 2
aae_interval = 5
staged_join = true
uvloop = false
credentials = "credentials.toml"
table_sweep_interval = 30
admission_control = false
http_max_connections = 500
http_max_connections_per_client = 50
http_max_buffered_mb = 64
http_idle_timeout = 30.5
http_compress_min_bytes = 0

[tls]
cert = "certs/n1.pem"
key = "certs/n1.key"
ca = "certs/ca.pem"
verify_hostname = true

[limits]
value_bytes_max = 400000
connect_timeout_ms = 2000
"""


def _start_args(*argv: str):  # type: ignore[no-untyped-def]
    return node_options.resolve(build_parser().parse_args(["node", "start", *argv]))


def test_every_key_reaches_its_option(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(FULL)
    args = _start_args("--config", str(path))
    assert (args.node_id, args.cluster_name, args.listen, args.advertise) == (
        "n1", "prod-eu", "0.0.0.0:7001", "10.0.0.11:7001")
    assert args.seeds == "10.0.0.11:7001,10.0.0.12:7001"
    assert args.data_dir == tmp_path / "data" / "n1"  # relative to the file, not the cwd
    assert (args.engine, args.sync, args.ring_size, args.aae_interval) == (
        "sqlite", "fsync", 128, 5.0)
    assert args.staged_join is True and args.no_uvloop is True
    assert args.credentials == tmp_path / "credentials.toml"
    assert (args.table_sweep_interval, args.no_admission_control) == (30.0, True)
    assert (args.http_max_connections, args.http_max_connections_per_client,
            args.http_max_buffered_mb, args.http_idle_timeout,
            args.http_compress_min_bytes) == (500, 50, 64, 30.5, 0)
    tls = node_options.tls_files(args)
    assert tls is not None and tls.ca == tmp_path / "certs" / "ca.pem" and tls.verify_hostname
    assert args.limits.value_bytes_max == 400000 and args.limits.connect_timeout_ms == 2000
    assert args.limits.key_bytes_max == Limits().key_bytes_max  # untouched: the default


def test_every_flag_of_node_start_has_a_key_but_the_fault_injection_ones() -> None:
    start = build_parser()._subparsers._group_actions[0].choices["node"]  # type: ignore[union-attr]
    start = start._subparsers._group_actions[0].choices["start"]
    keys = {dest for dest, _ in config_file.KEYS.values()} | {
        dest for table in config_file.TABLES.values() for dest, _ in table.values()}
    flags = {a.dest for a in start._actions} - {"help", "config", "limit_flags",
                                                "wall_clock_offset_ms", "inject_replica_delay"}
    assert flags - keys == set()


def test_flags_override_the_file_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('id = "n1"\nlisten = "127.0.0.1:7001"\ndata_dir = "d"\nengine = "sqlite"\n')
    args = _start_args("--config", str(path), "--engine", "memory", "--id", "n7")
    assert (args.node_id, args.engine) == ("n7", "memory")
    assert (args.sync, args.ring_size, args.cluster_name) == ("os", 64, "dynamokv")
    assert node_options.tls_files(args) is None


def test_without_a_file_the_required_flags_are_still_required() -> None:
    with pytest.raises(ConfigError, match="--listen is required"):
        _start_args("--id", "n1", "--data-dir", "d")


@pytest.mark.parametrize(("text", "match"), [
    ('engine = "rocks"', "engine must be 'lmdb' or 'sqlite' or 'memory', not 'rocks'"),
    ("ring_size = \"64\"", "ring_size must be a whole number"),
    ('listne = "x"', "unknown key 'listne'; known: .*listen"),
    ("[tls]\ncrt = 'a'", "unknown key 'tls.crt'"),
    ("[limits]\nvalue_bytes_max = 0", "limits.value_bytes_max must be a whole number"),
    ("seeds = [1, 2]", "seeds must be a list of"),
    ("id = ", "is not valid TOML"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=match) as info:
        config_file.load(path)
    assert str(path) in info.value.message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        config_file.load(tmp_path / "nope.toml")


def test_half_a_tls_setup_is_refused(tmp_path: Path) -> None:
    args = _start_args("--id", "n1", "--listen", "127.0.0.1:7001", "--data-dir", "d",
                       "--tls-cert", "c.pem")
    with pytest.raises(ConfigError, match=r"missing: --tls-key .* --tls-ca"):
        node_options.tls_files(args)


def test_cluster_up_gives_every_node_the_cluster_name(tmp_path: Path) -> None:
    from dynamokv.cli import cluster

    specs = cluster.plan(nodes=2, data_dir=tmp_path, cluster_name="beta")
    for spec in specs:
        args = node_options.resolve(build_parser().parse_args(list(spec.argv[3:])))
        assert args.cluster_name == "beta"
    default = cluster.plan(nodes=1, data_dir=tmp_path)[0]
    assert "--cluster-name" not in default.argv
