"""Backends registered by name, the way project.yaml names them.

Every stage has one :class:`Registry`. Built-in backends are registered as lazy
``"module:attribute"`` strings so that naming a backend never imports torch or diffusers until it
is actually used. Third-party packages add backends through the ``novelcomic.backends``
entry-point group: the entry point is a callable that receives :data:`REGISTRIES` (a mapping of
stage name → Registry) and calls ``register`` on them, the same as the built-ins do.

Tests register fakes with :meth:`Registry.override`, a context manager that restores the previous
state, so no test leaks a backend into another.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from novelcomic.errors import NovelcomicError

ENTRY_POINT_GROUP = "novelcomic.backends"


class UnknownBackendError(NovelcomicError):
    pass


class Registry:
    """Name → backend factory for one stage."""

    def __init__(self, stage: str, where: str | None = None) -> None:
        self.stage = stage
        self.where = where or f"stages.{stage}"  # where project.yaml names it, for error messages
        self._factories: dict[str, Any] = {}

    def register(self, name: str, factory: Any = None) -> Any:
        """Register ``factory`` (a class, a callable, or a lazy ``"module:attr"`` string).

        Usable as a decorator: ``@planners.register("mine")``.
        """
        if factory is None:

            def deco(obj: Any) -> Any:
                self._factories[name] = obj
                return obj

            return deco
        self._factories[name] = factory
        return factory

    def names(self) -> list[str]:
        _load_entry_points()
        return sorted(self._factories)

    def factory(self, name: str, where: str | None = None) -> Callable[..., Any]:
        _load_entry_points()
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise UnknownBackendError(
                f"unknown {self.stage} backend {name!r} (known: {known})", field=f"{where or self.where}.backend"
            ) from None
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory

    def create(self, name: str, options: dict[str, Any] | None = None, where: str | None = None) -> Any:
        """Instantiate backend ``name`` with its options from project.yaml. ``where``: the
        project.yaml key that configures it, when not this registry's own (``stages.design`` for
        an image backend drawing the sheets), so that errors name the setting to fix."""
        where = where or self.where
        factory = self.factory(name, where)
        try:
            backend = factory(**(options or {}))
        except TypeError as exc:
            raise UnknownBackendError(f"bad options for {self.stage} backend {name!r}: {exc}", field=f"{where}.options") from exc
        except NovelcomicError as exc:
            if exc.field and where != self.where and exc.field.startswith(self.where + "."):
                exc.field = where + exc.field[len(self.where):]  # the option's own name, under the right key
                exc.args = (str(exc),)
            raise
        return backend

    @contextlib.contextmanager
    def override(self, name: str, factory: Any) -> Iterator[None]:
        """Register ``factory`` under ``name`` for the duration of a ``with`` block."""
        missing = object()
        previous = self._factories.get(name, missing)
        self._factories[name] = factory
        try:
            yield
        finally:
            if previous is missing:
                self._factories.pop(name, None)
            else:
                self._factories[name] = previous


planners = Registry("plan")
image_backends = Registry("render")
tts_backends = Registry("voice")
composers = Registry("compose")
llms = Registry("llm", where="llm")
effects = Registry("effect")
animators = Registry("animate", where="animate")

REGISTRIES: dict[str, Registry] = {
    "plan": planners,
    "design": image_backends,  # character sheets are drawn by an image backend too
    "render": image_backends,
    "voice": tts_backends,
    "compose": composers,
    "llm": llms,
    "effect": effects,
    "animate": animators,
}

_entry_points_loaded = False
_entry_points_lock = threading.Lock()
_loading_thread: int | None = None


def _load_entry_points() -> None:
    """Register the built-ins and every plugin, once per process. Thread-safe: Prefect runs
    shot tasks in threads, and a thread must never see a half-filled registry. The flag is set
    only once everything is registered. A plugin's register function may itself look a backend
    up: in the loading thread that sees what is registered so far instead of waiting on itself."""
    global _entry_points_loaded, _loading_thread
    if _entry_points_loaded or _loading_thread == threading.get_ident():
        return
    with _entry_points_lock:
        if _entry_points_loaded:
            return
        _loading_thread = threading.get_ident()
        try:
            from importlib.metadata import entry_points

            eps = list(entry_points(group=ENTRY_POINT_GROUP))
            if not any(ep.value.startswith("novelcomic.backends_builtin") for ep in eps):
                # Running from a source tree that was never pip-installed: no metadata, same built-ins.
                from novelcomic import backends_builtin

                backends_builtin.register(REGISTRIES)
            for ep in eps:
                ep.load()(REGISTRIES)
            _entry_points_loaded = True
        finally:
            _loading_thread = None
