"""Signed payloads: a tampered or unsigned payload is rejected and runs nothing."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from transparent_mp import serialize
from transparent_mp.process import Process, spawning

KEY = b"k" * 32


def touch(path: str) -> None:
    Path(path).write_text("ran")


def test_roundtrip_and_rejections():
    data = serialize.dumps({"a": [1, 2]}, KEY)
    assert serialize.loads(data, KEY) == {"a": [1, 2]}
    tampered = bytearray(data)
    tampered[-3] ^= 1
    with pytest.raises(serialize.PayloadRejected, match="signature does not match"):
        serialize.loads(bytes(tampered), KEY)
    with pytest.raises(serialize.PayloadRejected):
        serialize.loads(data, b"another key")
    with pytest.raises(serialize.PayloadRejected, match="too short"):
        serialize.loads(b"abc", KEY)


@pytest.mark.parametrize("how", ["tampered", "unsigned"])
def test_worker_rejects_bad_payload_and_runs_nothing(driver, capfd, tmp_path, how):
    marker = tmp_path / "marker"
    process = Process(target=touch, args=(str(marker),))
    with spawning(object()):
        if how == "tampered":
            payload = bytearray(driver.dumps(process))
            payload[-5] ^= 0x20
        else:
            payload = pickle.dumps(process)
    handle = driver.invoke("process", bytes(payload))
    assert handle.wait(60) == 1
    handle.close()
    assert "payload rejected" in capfd.readouterr().err
    assert not marker.exists()

    # the same process, correctly signed, does run: the check above is meaningful
    process.start()
    process.join()
    assert process.exitcode == 0 and marker.read_text() == "ran"
