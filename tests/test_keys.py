"""Idempotency keys: unique in a process, across threads, and across a fork."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from daisi_async._dialects.base import new_key


def test_keys_are_unique_and_short() -> None:
    keys = [new_key() for _ in range(10_000)]
    assert len(set(keys)) == len(keys)
    assert all(0 < len(k) <= 200 for k in keys)  # what the server accepts


def test_keys_made_by_many_threads_at_once_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        into.extend(new_key() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [k for into in made for k in into]
    assert len(set(keys)) == len(keys) == 40_000


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="fork")
def test_a_forked_child_never_makes_its_parents_keys() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next keys, to the parent
        os.close(read)
        os.write(write, "\n".join(new_key() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    os.waitpid(pid, 0)
    parent = [new_key() for _ in range(100)]
    assert len(child) == 100
    assert not set(child) & set(parent)
    assert {k.rsplit("-", 1)[0] for k in child}.isdisjoint(k.rsplit("-", 1)[0] for k in parent)
