"""pipeline/beam_speedups.py: DoFn state and timer specs remembered per DoFn instance give Beam's
answers, for stateful and stateless DoFns, for ``beam.FlatMap`` wrappers, and in real pipelines."""

from __future__ import annotations

import gc

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from conftest import make_test_pipeline
from pipeline import beam_speedups
from pipeline import runner  # noqa: F401  (installs the speed-up, as every run does)

COUNT = ReadModifyWriteStateSpec("count", VarIntCoder())
TIMER = TimerSpec("flush", TimeDomain.WATERMARK)


class CountPerKey(beam.DoFn):
    def process(self, element, count=beam.DoFn.StateParam(COUNT)):
        key, _ = element
        seen = (count.read() or 0) + 1
        count.write(seen)
        yield key, seen


class WithTimer(beam.DoFn):
    def process(self, element, timer=beam.DoFn.TimerParam(TIMER)):
        yield element

    @on_timer(TIMER)
    def flush(self):
        yield "flushed"


class Plain(beam.DoFn):
    def process(self, element):
        yield element


def _wrapped(fn) -> beam.DoFn:
    return beam.FlatMap(fn).fn


def test_installed_by_the_runner_module():
    assert userstate.get_dofn_specs is beam_speedups.dofn_specs


def test_same_answers_as_beam_for_every_kind_of_dofn():
    stateful_map = _wrapped(lambda kv, count=beam.DoFn.StateParam(COUNT): kv)
    plain_map = _wrapped(lambda kv: kv)
    for dofn in (CountPerKey(), WithTimer(), Plain(), stateful_map, plain_map):
        expected = beam_speedups._ORIGINAL(dofn)
        assert beam_speedups.dofn_specs(dofn) == expected
        assert beam_speedups.dofn_specs(dofn) == expected  # the remembered answer
        assert userstate.is_stateful_dofn(dofn) == bool(expected[0] or expected[1])
    assert userstate.is_stateful_dofn(CountPerKey()) and userstate.is_stateful_dofn(WithTimer())
    assert beam_speedups.dofn_specs(CountPerKey())[0] == {COUNT}
    assert beam_speedups.dofn_specs(WithTimer())[1] == {TIMER}
    assert not userstate.is_stateful_dofn(Plain())


def test_remembered_per_instance_not_per_class():
    """Every instance has its own entry (a wrapper's answer may depend on what it wraps)."""
    before = beam_speedups.remembered()
    a, b = _wrapped(lambda kv: kv), _wrapped(lambda kv: [kv])
    assert type(a) is type(b)
    beam_speedups.dofn_specs(a), beam_speedups.dofn_specs(b), beam_speedups.dofn_specs(a)
    assert beam_speedups.remembered() == before + 2


def test_callers_get_copies_and_entries_die_with_their_dofn():
    dofn = CountPerKey()
    states, _ = beam_speedups.dofn_specs(dofn)
    states.clear()
    assert beam_speedups.dofn_specs(dofn)[0] == {COUNT}
    before = beam_speedups.remembered()
    del dofn, states
    gc.collect()
    assert beam_speedups.remembered() == before - 1


def test_stateful_pipeline_still_keeps_state():
    """A real stateful ParDo on the local runner: the state is there, so the counts go up per key."""
    with make_test_pipeline() as p:
        counts = (p | beam.Create([("a", 1), ("b", 1), ("a", 1), ("a", 1)]) | beam.ParDo(CountPerKey())
                  | beam.combiners.Top.PerKey(1) | beam.MapTuple(lambda key, top: (key, top[0])))
        assert_that(counts, equal_to([("a", 3), ("b", 1)]))


def test_uninstall_restores_beam():
    try:
        beam_speedups.uninstall()
        assert userstate.get_dofn_specs is beam_speedups._ORIGINAL
        assert beam_speedups.remembered() == 0
    finally:
        beam_speedups.install()
    assert userstate.get_dofn_specs is beam_speedups.dofn_specs
