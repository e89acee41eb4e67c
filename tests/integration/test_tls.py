"""MQTT over TLS against a real mosquitto with certificates made here by openssl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensekit.broker import LocalBroker
from tests.mqtt_client import Subscriber


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return key, cert


@pytest.fixture
def tls_broker(tmp_path: Path):
    ca_key, ca_cert = make_ca(tmp_path, "test-ca")
    key, csr, cert = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.crt"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    extensions = tmp_path / "san.cnf"
    extensions.write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert))  # fmt: skip
    with LocalBroker(tls_files=(ca_cert, cert, key)) as broker:
        yield broker, ca_cert


def run_daemon(tmp_path: Path, url: str, ca_file: Path) -> subprocess.CompletedProcess[str]:
    video = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(30):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    config = tmp_path / "tls.yaml"
    config.write_text(
        f"site: lab\ndevice: tls-1\nmqtt:\n  url: {url}\n  tls:\n    ca_file: {ca_file}\n"
        f"cameras:\n  - source: {str(video)!r}\n    replay: fast\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "sensekit", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_windows_travel_over_tls(tmp_path: Path, tls_broker) -> None:
    broker, ca_cert = tls_broker
    assert broker.url.startswith("mqtts://")
    subscriber = Subscriber(broker.host, broker.port, ca_file=str(ca_cert))
    try:
        result = run_daemon(tmp_path, broker.url, ca_cert)
        assert result.returncode == 0, result.stderr
        subscriber.wait_for(
            lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
        )
        (window,) = subscriber.windows()
        assert window["faces"]["people"] == 0 and window["faces"]["frames"] == 30
    finally:
        subscriber.close()


def test_a_certificate_from_another_ca_is_refused_clearly(tmp_path: Path, tls_broker) -> None:
    broker, _ = tls_broker
    _, other_ca = make_ca(tmp_path, "other-ca")
    result = run_daemon(tmp_path, broker.url, other_ca)
    assert result.returncode == 5, result.stderr
    assert (
        "TLS with broker 127.0.0.1:" in result.stderr
        and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    )
    assert "Traceback" not in result.stderr
