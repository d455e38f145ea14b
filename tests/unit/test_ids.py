"""Random ids look and parse exactly like uuid4() text, and never repeat."""

from __future__ import annotations

import os
import uuid

import pytest

from clarion.ids import canonical_guid, new_id

pytestmark = pytest.mark.unit


def test_new_ids_are_version_4_uuids_in_canonical_form() -> None:
    ids = [new_id() for _ in range(10_000)]  # crosses several 4 KiB blocks
    assert len(set(ids)) == len(ids)
    for text in ids[:2000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    new_id()  # the parent has a block in hand
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != new_id()


def test_canonical_guid() -> None:
    assert canonical_guid("6F9619FF-8B86-D011-B42D-00C04FC964FF") == \
        "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert canonical_guid("{6F9619FF-8B86-D011-B42D-00C04FC964FF}") is None
    assert canonical_guid("6f9619ff8b86d011b42d00c04fc964ff") is None
    assert canonical_guid("not-a-guid") is None


def test_time_ordered_ids_are_version_7_and_sort_by_time() -> None:
    from clarion.ids import time_ordered_ids

    early = time_ordered_ids(500, 1_700_000_000_000)
    late = time_ordered_ids(500, 1_700_000_000_001)
    assert len(set(early + late)) == 1000
    assert max(early) < min(late)
    for text in early[:100]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert parsed.int >> 80 == 1_700_000_000_000
