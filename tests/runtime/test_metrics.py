"""NodeMetrics: Prometheus series, the recent-sample percentiles, and the /metrics endpoint."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from dynamokv.runtime.metrics import (
    LATENCY_BUCKETS_S,
    MINUTE_SAMPLES_MAX,
    MINUTES_KEPT,
    NodeMetrics,
    percentile,
    sibling_bucket,
)


def sample(m: NodeMetrics, name: str, **labels: str) -> float:
    value = m.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else float(value)


def test_request_histogram_by_op_and_outcome() -> None:
    m = NodeMetrics()
    m.observe_request("get", 0.0002, "ok")
    m.observe_request("get", 0.3, "ok")
    m.observe_request("put", 0.01, "QuorumNotMet")
    assert sample(m, "dynamokv_request_seconds_count", op="get", outcome="ok") == 2
    assert sample(m, "dynamokv_request_seconds_count", op="put", outcome="QuorumNotMet") == 1
    assert sample(m, "dynamokv_request_seconds_bucket", op="get", outcome="ok", le="0.00025") == 1
    assert sample(m, "dynamokv_request_seconds_bucket", op="get", outcome="ok", le="0.5") == 2


def test_buckets_span_a_tenth_of_a_millisecond_to_ten_seconds() -> None:
    assert LATENCY_BUCKETS_S[0] == pytest.approx(0.0001)
    assert LATENCY_BUCKETS_S[-1] == pytest.approx(10.0)
    assert list(LATENCY_BUCKETS_S) == sorted(LATENCY_BUCKETS_S)


def test_negative_duration_is_clamped() -> None:
    m = NodeMetrics()
    m.observe_request("get", -1.0, "ok")
    assert sample(m, "dynamokv_request_seconds_sum", op="get", outcome="ok") == 0.0
    assert m.percentiles("get")["p50"] == 0.0


def test_percentiles_are_exact_over_recent_samples() -> None:
    m = NodeMetrics()
    for i in range(1, 1001):
        m.observe_request("get", i / 1000, "ok")
    p = m.percentiles("get")
    assert set(p) == {"p50", "p99", "p999"}
    assert p["p50"] == pytest.approx(0.5)
    assert p["p99"] == pytest.approx(0.99)
    assert p["p999"] == pytest.approx(0.999)


def test_percentiles_of_unknown_op_are_zero() -> None:
    assert NodeMetrics().percentiles("scan") == {"p50": 0.0, "p99": 0.0, "p999": 0.0}


def test_reservoir_keeps_only_the_latest_samples() -> None:
    m = NodeMetrics(reservoir_size=100)
    for _ in range(1000):
        m.observe_request("put", 5.0, "ok")
    for _ in range(100):
        m.observe_request("put", 0.001, "ok")
    assert m.percentiles("put")["p999"] == pytest.approx(0.001)
    # The histogram keeps everything; only the reservoir forgets.
    assert sample(m, "dynamokv_request_seconds_count", op="put", outcome="ok") == 1100


def test_reservoir_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        NodeMetrics(reservoir_size=0)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([7.0], 0.999) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0


def test_siblings_divergence_counts() -> None:
    m = NodeMetrics()
    for count in (1, 1, 1, 2, 3, 4, 7, 0):
        m.observe_siblings(count)
    assert sample(m, "dynamokv_get_siblings_total", count="1") == 3
    assert sample(m, "dynamokv_get_siblings_total", count="2") == 1
    assert sample(m, "dynamokv_get_siblings_total", count="3") == 1
    assert sample(m, "dynamokv_get_siblings_total", count="4+") == 2
    assert sample(m, "dynamokv_get_found_total") == 7
    assert sample(m, "dynamokv_get_not_found_total") == 1
    with pytest.raises(ValueError):
        m.observe_siblings(-1)


def test_sibling_bucket_labels() -> None:
    assert [sibling_bucket(c) for c in (1, 2, 3, 4, 100)] == ["1", "2", "3", "4+", "4+"]
    with pytest.raises(ValueError):
        sibling_bucket(0)


def test_in_flight_gauge_returns_to_zero_even_on_error() -> None:
    m = NodeMetrics()
    with m.in_flight():
        assert sample(m, "dynamokv_in_flight_requests") == 1
        with m.in_flight():
            assert sample(m, "dynamokv_in_flight_requests") == 2
    with pytest.raises(RuntimeError), m.in_flight():
        raise RuntimeError("boom")
    assert sample(m, "dynamokv_in_flight_requests") == 0


def test_peers_bytes_and_errors() -> None:
    m = NodeMetrics()
    m.set_connected_peers(4)
    m.add_bytes_in(100)
    m.add_bytes_in(23)
    m.add_bytes_out(7)
    m.count_error("QuorumNotMet")
    m.count_error("QuorumNotMet")
    m.count_error("KeyTooLarge")
    assert sample(m, "dynamokv_connected_peers") == 4
    assert sample(m, "dynamokv_bytes_in_total") == 123
    assert sample(m, "dynamokv_bytes_out_total") == 7
    assert sample(m, "dynamokv_errors_total", code="QuorumNotMet") == 2
    assert sample(m, "dynamokv_errors_total", code="KeyTooLarge") == 1


def test_instances_have_their_own_registries() -> None:
    a, b = NodeMetrics(), NodeMetrics()  # would raise "Duplicated timeseries" on a shared one
    a.add_bytes_in(5)
    assert sample(b, "dynamokv_bytes_in_total") == 0


def test_snapshot_for_status() -> None:
    m = NodeMetrics()
    m.observe_request("get", 0.002, "ok")
    m.set_connected_peers(2)
    snap = m.snapshot()
    assert snap["latency_ms"]["get"] == {"samples": 1, "p50": 2.0, "p99": 2.0, "p999": 2.0}
    assert snap["connected_peers"] == 2
    assert snap["in_flight_requests"] == 0


def test_render_is_prometheus_text() -> None:
    m = NodeMetrics()
    m.observe_request("get", 0.001, "ok")
    m.observe_siblings(2)
    text = m.render().decode()
    assert "# TYPE dynamokv_request_seconds histogram" in text
    assert 'dynamokv_request_seconds_bucket{le="0.0001",op="get",outcome="ok"}' in text
    assert 'dynamokv_get_siblings_total{count="2"} 1.0' in text
    assert "dynamokv_get_found_total 1.0" in text


def test_http_endpoint_serves_metrics_and_stops() -> None:
    m = NodeMetrics()
    m.count_error("RequestTimeout")
    server = m.start_http("127.0.0.1", 0)
    try:
        assert server.port > 0
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            assert b'dynamokv_errors_total{code="RequestTimeout"} 1.0' in resp.read()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/other", timeout=5)
        assert info.value.code == 404
        info.value.close()
    finally:
        server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
        pass


def test_http_refusals_and_load_for_status_and_scrape() -> None:
    m = NodeMetrics()
    assert m.http_status() == {}  # a node without the HTTP API shows nothing
    m.set_http_load(3, 2048)
    m.count_http_refusal("buffer_full")
    m.count_http_refusal("buffer_full")
    m.count_http_refusal("idle_timeout")
    assert m.http_status() == {"http": {"connections": 3, "buffered_bytes": 2048, "refused": {
        "buffer_full": 2, "idle_timeout": 1}}}
    assert m.registry.get_sample_value(
        "dynamokv_http_refused_total", {"reason": "buffer_full"}) == 2
    assert m.registry.get_sample_value("dynamokv_http_buffered_bytes") == 2048


def test_background_figures_and_the_latest_error_reach_status() -> None:
    m = NodeMetrics()
    m.set_background({"table_sweep_passes": 3, "table_sweep_failed_passes": 1},
                     {"table_sweep": "Unavailable: partition 7 has no reachable leader"})
    status = m.background_status()
    assert status["background"]["table_sweep_failed_passes"] == 1
    assert status["background_errors"] == {
        "table_sweep": "Unavailable: partition 7 has no reachable leader"}
    m.set_background({"table_sweep_passes": 4}, {"table_sweep": None})  # the next pass worked
    assert "background_errors" not in m.background_status()
    assert m._sample("dynamokv_background", {"what": "table_sweep_passes"}) == 4


def test_latency_per_minute_over_the_last_minutes() -> None:
    m = NodeMetrics()
    clock = [600.0]  # minute 10
    m._clock = lambda: clock[0]
    for ms in (1, 2, 3, 100):
        m.observe_request("get", ms / 1000, "ok")
    clock[0] += 120  # two minutes later: minute 12
    m.observe_request("get", 0.005, "ok")
    m.observe_request("put", 0.007, "ok")
    doc = m.latency_minutes()
    rows = doc["ops"]["get"]
    assert doc["minutes"] == MINUTES_KEPT == len(rows)
    assert [r["minutes_ago"] for r in rows] == list(range(MINUTES_KEPT - 1, -1, -1))
    assert (rows[-3]["requests"], rows[-3]["p50"], rows[-3]["p99"]) == (4, 2.0, 100.0)
    assert rows[-2]["requests"] == 0  # a quiet minute is shown, not skipped
    assert (rows[-1]["requests"], rows[-1]["p99"]) == (1, 5.0)
    assert [r["requests"] for r in doc["ops"]["put"]][-1] == 1
    assert m.latency_minutes() == doc  # past minutes summed up once, then reused
    clock[0] += 60 * MINUTES_KEPT  # everything ages out of the window
    assert all(r["requests"] == 0 for r in m.latency_minutes()["ops"]["get"])


def test_a_minute_keeps_its_latest_samples_but_counts_them_all() -> None:
    m = NodeMetrics()
    m._clock = lambda: 0.0
    for _ in range(MINUTE_SAMPLES_MAX):
        m.observe_request("get", 1.0, "ok")
    for _ in range(MINUTE_SAMPLES_MAX):
        m.observe_request("get", 0.001, "ok")
    row = m.latency_minutes()["ops"]["get"][-1]
    assert (row["requests"], row["p99"]) == (2 * MINUTE_SAMPLES_MAX, 1.0)


def test_request_histogram_bounds_are_inclusive_and_slow_requests_land_in_inf() -> None:
    m = NodeMetrics()
    for seconds in (0.0001, 0.00011, 10.0, 42.0):
        m.observe_request("get", seconds, "ok")
    bucket = "dynamokv_request_seconds_bucket"
    assert sample(m, bucket, op="get", outcome="ok", le="0.0001") == 1
    assert sample(m, bucket, op="get", outcome="ok", le="0.00025") == 2
    assert sample(m, bucket, op="get", outcome="ok", le="10.0") == 3
    assert sample(m, bucket, op="get", outcome="ok", le="+Inf") == 4
    assert sample(m, "dynamokv_request_seconds_sum", op="get", outcome="ok") == pytest.approx(
        52.00021)


def test_status_sources_are_published_as_table_work_gauges() -> None:
    m = NodeMetrics()
    m.status_sources["table_drops"] = lambda: {"started": 2, "done": 1, "failed": 1,
                                               "last_error": "bucket b: UnavailableError"}
    m.status_sources["index_upkeep"] = lambda: {"given_up": 3}
    assert m.sources_status()["table_drops"]["last_error"] == "bucket b: UnavailableError"
    assert m._sample("dynamokv_table_work", {"source": "table_drops", "what": "failed"}) == 1
    assert m._sample("dynamokv_table_work", {"source": "index_upkeep", "what": "given_up"}) == 3
    assert b'dynamokv_table_work{source="table_drops",what="done"} 1.0' in m.render()
