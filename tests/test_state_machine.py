"""A model-based test: any sequence of set/delete/batch/reopen/compact on two stores that
share one sidecar behaves like one dict, in memory and on disk."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kithooks import StateError, StateStore
from kithooks.state import sidecar

pytestmark = pytest.mark.slow

KEYS = st.sampled_from(["a", "b", "<&>", "ключ", "k\n2", ""])
VALUES = st.text(max_size=300)  # long values make the journal compact often (see __init__)
BAD_VALUES = st.sampled_from([None, 1, b"x", "\ud800", ["list"]])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, VALUES),
        st.tuples(st.just("delete"), KEYS, st.none()),
        st.tuples(st.just("bad"), KEYS, BAD_VALUES),
    ),
    max_size=6,
)


class Boom(Exception):
    pass


class StoreAgainstDict(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.saved_threshold = sidecar.COMPACT_AT_LEAST
        sidecar.COMPACT_AT_LEAST = 512  # compact every few writes
        self.dir = Path(tempfile.mkdtemp(prefix="state-machine-"))
        self.path = self.dir / "s.ext-state.json"
        self.stores = [StateStore(self.path), StateStore(self.path)]
        self.model: dict[str, str] = {}

    def teardown(self) -> None:
        sidecar.COMPACT_AT_LEAST = self.saved_threshold
        for store in self.stores:
            store.backend.close()
        shutil.rmtree(self.dir)

    def _apply(self, store: StateStore, op: str, key: str, value: object) -> None:
        if op == "set":
            store.set(key, value)  # type: ignore[arg-type]
            self.model[key] = value  # type: ignore[assignment]
        elif op == "delete":
            store.delete(key)
            self.model.pop(key, None)
        else:
            with pytest.raises(StateError):
                store.set(key, value)  # type: ignore[arg-type]

    @rule(which=st.integers(0, 1), key=KEYS, value=VALUES)
    def set(self, which, key, value):
        self._apply(self.stores[which], "set", key, value)

    @rule(which=st.integers(0, 1), key=KEYS)
    def delete(self, which, key):
        self._apply(self.stores[which], "delete", key, None)

    @rule(which=st.integers(0, 1), key=KEYS, value=BAD_VALUES)
    def refused(self, which, key, value):
        self._apply(self.stores[which], "bad", key, value)

    @rule(which=st.integers(0, 1), ops=OPS, raises=st.booleans())
    def batch(self, which, ops, raises):
        store = self.stores[which]
        try:
            with store.batch():
                for op in ops:
                    self._apply(store, *op)
                if raises:
                    raise Boom
        except Boom:
            pass

    @rule(which=st.integers(0, 1))
    def reopen(self, which):
        self.stores[which].backend.close()
        self.stores[which] = StateStore(self.path)

    @rule(which=st.integers(0, 1))
    def compact(self, which):
        self.stores[which].compact()

    @rule(which=st.integers(0, 1))
    def close(self, which):
        self.stores[which].close()
        # the sidecar alone now holds the whole state, for programs that read only it
        on_disk = json.loads(self.path.read_bytes()) if self.path.exists() else {}
        assert on_disk == self.model

    @invariant()
    def both_stores_equal_the_model(self):
        for store in self.stores:
            assert store.snapshot() == self.model

    @invariant()
    def disk_equals_the_model(self):
        assert StateStore(self.path).snapshot() == self.model


StoreAgainstDict.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None
)
test_store_against_dict = StoreAgainstDict.TestCase
