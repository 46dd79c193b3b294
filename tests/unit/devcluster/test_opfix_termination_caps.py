"""The kubelet's termination-message caps, as both kubelet stand-ins apply them.

kubernetes pkg/kubelet/container/runtime.go: ``MaxContainerTerminationMessageLength``
(4096, the *last* bytes of the file: kuberuntime_container.go ``getTerminationMessage``
with pkg/util/tail ``ReadAtMost``) and ``MaxPodTerminationMessageLogLength`` (12288 for
all containers and init containers, the *first* bytes of each message:
pkg/kubelet/status/status_manager.go ``normalizeStatus``).
"""

from __future__ import annotations

import datetime

import pytest
from headwater import contract
from headwater_dev import podstatus
from headwater_dev.process_kubelet import final_status, termination_message

NOW = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC)


def numbered(size: int) -> str:
    """``size`` ASCII bytes whose every position is recognisable."""
    return "".join(f"{i:08d}" for i in range(size // 8 + 1))[:size]


def test_the_file_is_read_from_its_end() -> None:
    written = numbered(5000)
    read = podstatus.read_termination_file(written)
    assert read == written[-4096:]
    assert podstatus.read_termination_file("short") == "short"


@pytest.mark.parametrize(("containers", "share"),
                         [(1, 12288), (2, 6144), (3, 4096), (4, 3072), (5, 2457), (6, 2048)])
def test_each_container_gets_its_share_of_12_kib_from_the_start(containers: int,
                                                                 share: int) -> None:
    message = numbered(13000)
    assert podstatus.cap_for_pod(message, containers) == message[:share]
    assert contract.termination_message_cap(containers) == min(4096, share)


def test_both_caps_together_leave_the_start_of_the_last_4096_bytes() -> None:
    written = numbered(5000)
    status = podstatus.terminated(NOW, exit_code=0, reason="Completed",
                                  message=podstatus.read_termination_file(written),
                                  containers=4)
    message = status["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message == written[-4096:][:3072]


def test_a_cut_through_a_character_becomes_the_replacement_character() -> None:
    message = "é" * 2000  # 4000 bytes; 4 containers → 3072 bytes is a character boundary
    assert podstatus.cap_for_pod(message, 4) == "é" * 1536
    assert podstatus.cap_for_pod("a" + message, 4) == "a" + "é" * 1535 + "\ufffd"


def test_init_containers_count_and_ephemeral_ones_do_not() -> None:
    pod = {"spec": {"containers": [{"name": "flow"}, {"name": "proxy"}],
                    "initContainers": [{"name": "init"}],
                    "ephemeralContainers": [{"name": "debug"}]}}
    assert podstatus.container_count(pod) == 3


def test_the_process_kubelet_applies_both_caps() -> None:
    written = numbered(5000)
    message = termination_message(written, 0, "")
    assert message == written[-4096:]
    status = final_status(NOW, NOW, 0, message, container="flow", image="i", containers=6)
    assert status["containerStatuses"][0]["state"]["terminated"]["message"] == (
        written[-4096:][:2048])
