"""pipeline/beam_speedups.py: DoFn state and timer specs remembered per DoFn instance give Beam's
answers, for stateful and stateless DoFns, for ``beam.FlatMap`` wrappers, and in real pipelines;
remembered option views equal Beam's, share its option store and are made anew when flags change."""

from __future__ import annotations

import functools
import gc
import inspect
import types

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import (DebugOptions, DirectOptions, GoogleCloudOptions, PipelineOptions,
                                                  SetupOptions, StandardOptions, TypeOptions)
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import core, userstate
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
        assert PipelineOptions.view_as is beam_speedups._ORIGINAL_VIEW_AS
        assert core.get_function_args_defaults is beam_speedups._ORIGINAL_ARGS
        assert beam_speedups.remembered() == 0
    finally:
        beam_speedups.install()
    assert userstate.get_dofn_specs is beam_speedups.dofn_specs
    assert PipelineOptions.view_as is beam_speedups.view_as
    assert core.get_function_args_defaults is beam_speedups.function_args_defaults


# -- PipelineOptions.view_as -----------------------------------------------------------------------

VIEW_CLASSES = (StandardOptions, TypeOptions, DebugOptions, SetupOptions, GoogleCloudOptions, DirectOptions)


def _values(view) -> dict:
    return {name: getattr(view, name) for name in view._visible_option_list()}


def test_views_equal_beams_for_every_options_class():
    flags = ["--runner=DirectRunner", "--experiments=a", "--experiments=b", "--direct_num_workers=2",
             "--pipeline_type_check", "--project=p", "--no_such_flag=1"]
    ours, beams = PipelineOptions(flags), PipelineOptions(list(flags))
    for cls in VIEW_CLASSES:
        expected = beam_speedups._ORIGINAL_VIEW_AS(beams, cls)
        first, again = ours.view_as(cls), ours.view_as(cls)
        assert again is first  # remembered
        assert type(first) is cls and _values(first) == _values(expected)
    assert ours.get_all_options() == beams.get_all_options()
    assert ours._all_options == beams._all_options  # the same defaults stored as Beam stores them


def test_a_remembered_view_shares_the_option_store():
    """A value set through one view is seen by every view, the remembered one included, as with Beam's."""
    options = PipelineOptions(["--runner=DirectRunner"])
    standard = options.view_as(StandardOptions)
    options.view_as(StandardOptions).streaming = True
    assert standard.streaming is True and options.view_as(StandardOptions).streaming is True
    options.view_as(DebugOptions).add_experiment("x")
    assert "x" in options.view_as(DebugOptions).experiments
    assert options.view_as(StandardOptions).view_as(DebugOptions).experiments == ["x"]


def test_changed_flags_or_store_make_a_new_view():
    """Flags changed in place and a new option store: a new view, with the values Beam's own function
    gives in the same steps (a value already in the store wins over the new flag, as with Beam)."""
    def steps(view_as):
        flags = ["--runner=DirectRunner"]
        options = PipelineOptions(flags)
        first = view_as(options, StandardOptions)
        flags.append("--streaming")
        changed = view_as(options, StandardOptions)
        options._all_options = {}
        rebuilt = view_as(options, StandardOptions)
        return options, first, changed, rebuilt

    options, first, changed, rebuilt = steps(PipelineOptions.view_as)
    _, b_first, b_changed, b_rebuilt = steps(beam_speedups._ORIGINAL_VIEW_AS)
    assert changed is not first and rebuilt is not changed
    assert rebuilt._all_options is options._all_options
    assert [_values(v) for v in (first, changed, rebuilt)] == [_values(v) for v in (b_first, b_changed, b_rebuilt)]
    assert rebuilt.streaming is True  # parsed again from the changed flags into the new store
    assert options.view_as(StandardOptions) is rebuilt


def test_a_removed_default_is_stored_again():
    options = PipelineOptions([])
    options.view_as(TypeOptions)
    del options._all_options["pipeline_type_check"]
    assert options.view_as(TypeOptions).pipeline_type_check is True
    assert options._all_options["pipeline_type_check"] is True


def test_views_die_with_their_options():
    gc.collect()
    options = PipelineOptions([])
    options.view_as(StandardOptions)
    assert options in beam_speedups._VIEWS
    before = len(beam_speedups._VIEWS)
    del options
    gc.collect()
    assert len(beam_speedups._VIEWS) == before - 1


# -- core.get_function_args_defaults ---------------------------------------------------------------

def _decorated(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


class WithDefaults(beam.DoFn):
    def process(self, element, window=beam.DoFn.WindowParam, *rest, key=None):
        yield element

    @_decorated
    def finish_bundle(self, timestamp=beam.DoFn.TimestampParam):
        return None


def test_args_and_defaults_equal_beams_for_every_kind_of_callable():
    def plain(a, b=2, *args, c, **kwargs):
        return a
    dofn = WithDefaults()
    callables = [dofn.process, dofn.finish_bundle, WithDefaults.process, plain, lambda x, y=beam.DoFn.ElementParam: x,
                 functools.partial(plain, 1), len, str.strip, CountPerKey().process, beam.FlatMap(len).fn.process]
    for f in callables:
        expected = beam_speedups._ORIGINAL_ARGS(f)
        assert beam_speedups.function_args_defaults(f) == expected
        again = beam_speedups.function_args_defaults(f)  # remembered (functions and methods)
        assert again == expected and again[1] is not expected[1]
        assert [a is b for a, b in zip(again[1], expected[1])] == [True] * len(expected[1])  # the same sentinels
        function = getattr(f, "__func__", f)
        assert (function in beam_speedups._ARGS) == isinstance(function, types.FunctionType)
    assert core.get_function_arguments(dofn, "process") == (["element", "window", ], [beam.DoFn.WindowParam])


def test_callers_get_copies_and_a_changed_function_is_inspected_again():
    def fn(a, b=1):
        return a
    args, defaults = beam_speedups.function_args_defaults(fn)
    args.append("x"), defaults.clear()
    assert beam_speedups.function_args_defaults(fn) == (["a", "b"], [1])
    fn.__defaults__ = (5,)
    assert beam_speedups.function_args_defaults(fn) == (["a", "b"], [5])

    def other(c):
        return c
    fn.__code__ = other.__code__
    fn.__defaults__ = None
    assert beam_speedups.function_args_defaults(fn) == beam_speedups._ORIGINAL_ARGS(fn) == (["c"], [])
    fn.__signature__ = inspect.Signature([inspect.Parameter("z", inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    assert beam_speedups.function_args_defaults(fn) == (["z"], [])


def test_a_bound_method_and_its_function_are_answered_apart():
    dofn = WithDefaults()
    assert beam_speedups.function_args_defaults(WithDefaults.process)[0][0] == "self"
    assert beam_speedups.function_args_defaults(dofn.process)[0][0] == "element"
    assert beam_speedups.function_args_defaults(WithDefaults.process)[0][0] == "self"
