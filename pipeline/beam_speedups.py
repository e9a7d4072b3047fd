"""Three measured workarounds for Beam's graph cost: DoFn specs, option views and method signatures
found once.

Beam asks ``apache_beam.transforms.userstate.get_dofn_specs(dofn)`` whether a DoFn uses state or
timers about eight times per ParDo and graph (when the ParDo is made, when the graph is
translated, when each bundle processor is built), and every call inspects the signature of every
method of the DoFn (``dir(dofn)`` and ``inspect.signature`` on each: ~32 signatures a call). The
batch graph has ~42 ParDos: 332 calls and 10,600 signatures per graph, ~0.4 s of the ~1.7 s of
CPU a chunk costs before its first article (profile fast, 50 files, a second run in the same
process, three interleaved rounds: 1.68-1.70 s -> 1.26-1.36 s).

:func:`install` replaces that function with one that remembers its answer per DoFn *instance*
(not per class: a ``beam.FlatMap`` wrapper's specs come from the function it wraps) for as long as the
instance lives, and hands out copies of the sets. Beam's own callers all go through the module
attribute, so they all see it.

Beam also calls ``PipelineOptions.view_as(cls)`` ~317 times per graph (every ``apply`` asks for the
type-check and standard options), and every call builds an argparse parser with all of ``cls``'s
options and parses the run's flags again: 0.4-0.9 ms a call, 0.2-0.3 s of every chunk's start-up.
:func:`install` also makes ``view_as`` hand out the view it made before for the same options object
and class, while that object's flags and option store are the ones the view was made from. A view
holds no state of its own (its attributes live in the option store it shares with every view, see
Beam's ``view_as``), so the same view object behaves as a new one would.

And each bundle processor's DoFn operations ask ``core.get_function_args_defaults`` for the
arguments of every DoFn method they may call (~2,000 ``inspect.signature`` calls per graph, 0.2 s of
a 50-file run); :func:`install` makes it remember the answer per Python function (a bound method by
its function: ``self`` is never among the answers), checked against the function's code, defaults,
``__wrapped__`` and ``__signature__`` on every call, so a changed function is inspected again.

Idempotent; :func:`uninstall` restores Beam's functions.
"""

from __future__ import annotations

import types
import weakref
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import core, userstate

_ORIGINAL = userstate.get_dofn_specs
_SPECS: dict[int, tuple[weakref.ref, frozenset, frozenset]] = {}
_ORIGINAL_VIEW_AS = PipelineOptions.view_as
# options object -> {view class: (view, the flags it was parsed from, as a tuple; its option names)}
_VIEWS: "weakref.WeakKeyDictionary[PipelineOptions, dict]" = weakref.WeakKeyDictionary()
_ORIGINAL_ARGS = core.get_function_args_defaults
# function -> (what its answer depends on, (args, defaults) as a plain function, as a bound method)
_ARGS: "weakref.WeakKeyDictionary[types.FunctionType, list]" = weakref.WeakKeyDictionary()


def dofn_specs(dofn: Any) -> tuple[set, set]:
    """``userstate.get_dofn_specs(dofn)``, computed once per live DoFn instance."""
    key = id(dofn)
    known = _SPECS.get(key)
    if known is not None and known[0]() is dofn:
        return set(known[1]), set(known[2])
    states, timers = _ORIGINAL(dofn)
    try:
        ref = weakref.ref(dofn, lambda _, key=key: _SPECS.pop(key, None))
    except TypeError:  # not weak-referenceable: not remembered
        return states, timers
    _SPECS[key] = (ref, frozenset(states), frozenset(timers))
    return set(states), set(timers)


def _flags_key(flags: Any) -> Any:
    return tuple(flags) if isinstance(flags, (list, tuple)) else flags


def view_as(options: PipelineOptions, cls: type) -> PipelineOptions:
    """``PipelineOptions.view_as``, made once per options object and class.

    The remembered view is handed out again only while ``options`` has the same flags (equal and the
    same list) and the same option store as when the view was made; otherwise Beam's function makes a
    new one. Like Beam's, each call first stores the defaults of ``cls``'s options the store lacks."""
    views = _VIEWS.get(options)
    if views is None:
        views = _VIEWS[options] = {}
    flags, store = options._flags, options._all_options
    known = views.get(cls)
    if known is not None:
        view, flags_seen, names = known
        if view._all_options is store and view._flags is flags and flags_seen == _flags_key(flags):
            for name in names:
                if name not in store:
                    store[name] = getattr(view._visible_options, name)
            return view
    view = _ORIGINAL_VIEW_AS(options, cls)
    views[cls] = (view, _flags_key(flags), tuple(view._visible_option_list()))
    return view


def _depends_on(function: types.FunctionType) -> tuple:
    return (function.__code__, function.__defaults__, function.__kwdefaults__,
            function.__dict__.get("__wrapped__"), function.__dict__.get("__signature__"))


def function_args_defaults(f: Any) -> tuple[list[str], list[Any]]:
    """``core.get_function_args_defaults(f)``, inspected once per Python function (and once more for
    its bound methods); other callables are inspected on every call, as by Beam."""
    if isinstance(f, types.MethodType) and isinstance(f.__func__, types.FunctionType):
        function, slot = f.__func__, 2
    elif isinstance(f, types.FunctionType):
        function, slot = f, 1
    else:
        return _ORIGINAL_ARGS(f)
    depends = _depends_on(function)
    known = _ARGS.get(function)
    if known is None or any(a is not b for a, b in zip(known[0], depends)):
        known = _ARGS[function] = [depends, None, None]
    if known[slot] is None:
        args, defaults = _ORIGINAL_ARGS(f)
        known[slot] = (tuple(args), tuple(defaults))
    args, defaults = known[slot]
    return list(args), list(defaults)


def install() -> None:
    userstate.get_dofn_specs = dofn_specs
    PipelineOptions.view_as = view_as
    core.get_function_args_defaults = function_args_defaults


def uninstall() -> None:
    userstate.get_dofn_specs = _ORIGINAL
    PipelineOptions.view_as = _ORIGINAL_VIEW_AS
    core.get_function_args_defaults = _ORIGINAL_ARGS
    _SPECS.clear()
    _VIEWS.clear()
    _ARGS.clear()


def remembered() -> int:
    """How many DoFn instances have their specs remembered (for tests)."""
    return len(_SPECS)
