"""The ``comfyui`` image backend: the user's own ComfyUI server (local or rented) draws the
character sheets (design), the shots (render) and the inpaint/outpaint of edit-shot, through
workflows the user exported in API format.

The protocol is ComfyUI's own (``server.py``):

- ``POST /upload/image`` (multipart ``image``, ``overwrite``, ``type``) puts each reference image
  in the server's input folder, once: it is named by its content hash (``nc-<sha256>.png``), so a
  name already listed by ``/object_info`` (LoadImage's choices) or uploaded earlier in this process
  is reused, and ``overwrite`` can never replace another picture. The name the server answers is
  the one written into the workflow.
- ``POST /prompt`` ``{"prompt": graph, "client_id": id}`` queues the filled workflow; HTTP 400
  ``{"error", "node_errors"}`` becomes one line naming the node, its class and the input (an
  unknown class names the custom-node pack that provides it).
- ``/ws?clientId=id`` (opened before queueing) reports ``progress``, ``executing``,
  ``execution_success`` / ``execution_error`` / ``execution_interrupted``; when the socket cannot
  be opened or drops, ``/history/{prompt_id}`` is polled instead.
- the result: ``/history/{prompt_id}`` → ``outputs[output_node].images[0]`` → ``/view``.
- a stop signal (Ctrl-C, SIGTERM) or a timeout takes the project's prompt off the server:
  ``POST /queue {"delete": [id]}`` while it waits, ``POST /interrupt {"prompt_id": id}`` while it runs.

Every HTTP call goes through :mod:`novelcomic.remote` (timeouts, retries, the "server down"
breaker, one line naming the URL). Creating the backend checks its options and then the
workflows against the server's ``/object_info`` (classes present, bound inputs present, types
that fit), so ``validate`` and every run's preflight refuse a bad workflow before any work, with
``project.yaml:line: stages.render.options.bind.seed: …``.

Example ``project.yaml``::

    stages:
      render:
        backend: comfyui
        options:
          url: http://127.0.0.1:8188
          workflow: workflows/shot.json      # or a bundled template: sdxl-ipadapter, flux2-klein-refs, qwen-image-edit-refs
          bind: {prompt: "6.text", negative: "7.text", seed: "3.seed", width: ["5.width"], height: ["5.height"],
                 references: ["12.image", "13.image"], output: "9"}
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic import procs, remote
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.render import comfyui_graph as g
from novelcomic.render.base import DependsOnModel, ImageCapabilities, ImageResult, SheetRequest, ShotRequest, check_size

if TYPE_CHECKING:
    from PIL.Image import Image

    from novelcomic.render.comfyui_graph import Workflow

log = logging.getLogger("novelcomic.comfyui")
OPTIONS = g.OPTIONS
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}

# --------------------------------------------------------------------------- process-wide state, per server

_LOCK = threading.Lock()
_INFO: dict[str, dict[str, Any]] = {}  # server → its /object_info
_FILES: dict[str, set[str]] = {}  # server → files in its input folder (as listed, plus ours)
_UPLOADED: dict[str, dict[str, str]] = {}  # server → {our name → the name the server gave it}
_SLOTS: dict[str, threading.BoundedSemaphore] = {}  # server → prompts in flight


def forget_servers() -> None:
    """Forget what is known of every server (its nodes, its uploaded files): tests, long-lived processes."""
    with _LOCK:
        _INFO.clear()
        _FILES.clear()
        _UPLOADED.clear()
        _SLOTS.clear()


def _slot(key: str, n: int) -> threading.BoundedSemaphore:
    with _LOCK:
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(n)
        return _SLOTS[key]


@dataclass(frozen=True)
class Progress:
    """A ``progress`` message of the server for one prompt: ``value`` of ``max`` steps of ``node``."""

    prompt_id: str
    node: str | None
    value: int
    max: int


@dataclass(frozen=True)
class Call:
    """One workflow run, as sent (tests, benchmarks): which workflow, its prompt id, the reference
    names written into it, and the seconds from queueing to the image in hand."""

    workflow: str
    prompt_id: str
    references: tuple[str, ...]
    seconds: float
    via: str  # "ws" | "poll"


class _Timeout(Exception):
    pass


def _number(key: str, value: Any, lo: float, hi: float, whole: bool = False) -> None:
    ok = isinstance(value, int if whole else (int, float)) and not isinstance(value, bool) and lo <= value <= hi
    if not ok:
        kind = "a whole number" if whole else "a number"
        raise NovelcomicError(f"{key} {value!r} must be {kind} from {lo:g} to {hi:g}", field=OPTIONS + key)


class ComfyUIBackend:
    """Sheets, shots and edits from a ComfyUI server (``backend: comfyui`` under ``stages.render``
    or ``stages.design``).

    Options: ``url``; ``workflow`` (an API-format JSON inside the project, or a bundled template
    name), ``workflow_no_refs`` (for shots without reference images, and sheets),
    ``edit_workflow`` (inpaint/outpaint, with ``image`` and ``mask`` bindings); ``bind``,
    ``bind_no_refs``, ``edit_bind`` (each workflow's bindings; left out: the ``nc:`` node titles);
    ``auth_env`` (the environment variable holding a token, sent as ``auth_header``:
    ``auth_scheme`` token); ``timeout`` (seconds per image), ``concurrency`` (prompts in flight on
    this server, whole process), ``retries``, ``backoff``, ``poll_interval``; ``steps`` (written to
    the ``steps`` binding); ``megapixels`` (draw at about that many million pixels of the frame's
    shape, then fit to the frame: 1 suits SDXL, Flux and Qwen-Image; default: the frame's size); ``prompt_language`` (``en``, or ``zh`` for models that read Chinese);
    ``check_server`` (default true: check the workflows against ``/object_info`` on creation).
    """

    name = "comfyui"
    # as many references as the workflow has LoadImage slots; inpaint and outpaint with an edit_workflow
    capabilities = DependsOnModel(
        ImageCapabilities(references=1, inpaint=True, outpaint=True),
        lambda self: ImageCapabilities(references=len(self.workflow.bindings.references),
                                       inpaint=self.edit_workflow is not None, outpaint=self.edit_workflow is not None),
    )
    prompt_family = "sdxl"

    def __init__(
        self,
        url: str = "http://127.0.0.1:8188",
        workflow: str | None = None,
        workflow_no_refs: str | None = None,
        edit_workflow: str | None = None,
        bind: dict[str, Any] | None = None,
        bind_no_refs: dict[str, Any] | None = None,
        edit_bind: dict[str, Any] | None = None,
        auth_env: str | None = None,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        timeout: float = 600.0,
        concurrency: int = 1,
        retries: int = 3,
        backoff: float = 1.0,
        poll_interval: float = 0.5,
        steps: int | None = None,
        megapixels: float | None = None,
        prompt_language: str = "en",
        check_server: bool = True,
        api_key: Any = None,
        token: Any = None,
        **extra: Any,
    ) -> None:
        remote.refuse_inline_key(api_key, OPTIONS + "api_key")
        remote.refuse_inline_key(token, OPTIONS + "token")
        if extra:
            first = sorted(extra)[0]
            raise NovelcomicError(f"unknown option(s) {', '.join(sorted(extra))} for the comfyui image backend",
                                  field=OPTIONS + first)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise NovelcomicError(f"url {url!r} must be an http(s) URL (e.g. http://127.0.0.1:8188)", field=OPTIONS + "url")
        _number("timeout", timeout, 1, 86400)
        _number("concurrency", concurrency, 1, 64, whole=True)
        _number("retries", retries, 0, 20, whole=True)
        _number("backoff", backoff, 0, 600)
        _number("poll_interval", poll_interval, 0.01, 60)
        if steps is not None:
            _number("steps", steps, 1, 1000, whole=True)
        if megapixels is not None:
            _number("megapixels", megapixels, 0.01, 64)
        if prompt_language not in ("en", "zh"):
            raise NovelcomicError(f"prompt_language {prompt_language!r} must be en or zh", field=OPTIONS + "prompt_language")
        if not isinstance(check_server, bool):
            raise NovelcomicError(f"check_server {check_server!r} must be true or false", field=OPTIONS + "check_server")
        for key, value in (("auth_header", auth_header), ("auth_scheme", auth_scheme)):
            if not isinstance(value, str):
                raise NovelcomicError(f"{key} {value!r} must be a string", field=OPTIONS + key)
        key_env = remote.env_name(auth_env, OPTIONS + "auth_env")
        remote.require_key(key_env, OPTIONS + "auth_env", f"the ComfyUI server at {url}")
        if workflow is None:
            raise NovelcomicError(f"the comfyui backend needs a workflow: an API-format export inside the project "
                                  f"(e.g. workflows/shot.json) or a bundled template ({', '.join(g.BUNDLED)})",
                                  field=OPTIONS + "workflow")
        self.workflow = self._load("workflow", workflow, bind, "bind", ("prompt",))
        self.workflow_no_refs = (self._load("workflow_no_refs", workflow_no_refs, bind_no_refs, "bind_no_refs", ("prompt",))
                                 if workflow_no_refs is not None else None)
        self.edit_workflow = (self._load("edit_workflow", edit_workflow, edit_bind, "edit_bind", ("prompt", "image", "mask"))
                              if edit_workflow is not None else None)
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.concurrency = concurrency
        self.poll_interval = float(poll_interval)
        self.steps = steps
        self.megapixels = float(megapixels) if megapixels is not None else None
        self.prompt_family = "kolors" if prompt_language == "zh" else "sdxl"
        config = dict(base_url=self.url, label="ComfyUI server", api_key_env=key_env, auth_header=auth_header,
                      auth_scheme=auth_scheme)
        self.client = remote.RemoteClient(remote.RemoteConfig(
            **config, timeout=min(self.timeout, 120.0), retries=retries, backoff=float(backoff)))
        # taking a prompt off the server on a stop: at once, no retries
        self.quick = remote.RemoteClient(remote.RemoteConfig(**config, timeout=5.0, connect_timeout=3.0, retries=0))
        self.on_progress: Callable[[Progress], None] | None = None
        self.calls: list[Call] = []
        self.uploads = 0  # files this instance sent to /upload/image
        self.cancelled: list[str] = []  # prompt ids taken off the server
        if check_server:
            self.check()

    # ------------------------------------------------------------------ loading and checking

    def _load(self, option: str, value: Any, bind: Any, bind_field: str, needs: tuple[str, ...]) -> "Workflow":
        field = OPTIONS + option
        if not isinstance(value, str) or not value.strip():
            raise NovelcomicError(f"{option} {value!r} must be a workflow file or a bundled template name", field=field)
        if value in g.BUNDLED:
            text, source = g.bundled_text(value), f"bundled template {value}"
        else:
            if not value.lower().endswith(".json") and "/" not in value and "\\" not in value:
                raise NovelcomicError(f"{option} {value!r} is neither a .json file nor a bundled template "
                                      f"({', '.join(g.BUNDLED)})", field=field)
            text, source = g.read_text(self._path(value, field), value, field), value
        return g.load_workflow(option, value, bind, text, source, needs=needs, bind_field=bind_field)

    @staticmethod
    def _path(value: str, field: str) -> Path:
        # the pipeline resolved it in the project under the path policy (pipeline.stage_options)
        return Path(value).expanduser()

    @property
    def workflows(self) -> list["Workflow"]:
        return [w for w in (self.workflow, self.workflow_no_refs, self.edit_workflow) if w is not None]

    def object_info(self) -> dict[str, Any]:
        """The server's ``/object_info`` (fetched once per server and process)."""
        key = self.client.config.key
        with _LOCK:
            if key in _INFO:
                return _INFO[key]
        try:
            info = self.client.get_json("/object_info")
        except remote.RemoteError as exc:
            raise BackendError(exc.message, field=OPTIONS + "url") from None
        if not isinstance(info, dict):
            raise BackendError(f"ComfyUI server at {self.url}/object_info sent {type(info).__name__}, not the node list",
                               field=OPTIONS + "url")
        with _LOCK:
            _INFO[key] = info
            _FILES.setdefault(key, set()).update(g.uploaded_inputs(info))
        return info

    def check(self) -> None:
        """Refuse a workflow the server cannot run (see :func:`comfyui_graph.check_against`)."""
        info = self.object_info()
        for wf in self.workflows:
            g.check_against(wf, info, self.url)

    # ------------------------------------------------------------------ the protocol

    def render_shot(self, request: ShotRequest) -> ImageResult:
        from novelcomic.render.prompts import shot_prompt

        check_size(request.width, request.height)
        prompt = shot_prompt(request, self.prompt_family)
        refs = self.references(request)
        wf = self.workflow_no_refs if not refs and self.workflow_no_refs is not None else self.workflow
        return self._draw(wf, prompt.positive, prompt.negative, request.seed, request.width, request.height, refs,
                          f"shot {request.shot.id} of chapter {request.chapter}")

    def design_character(self, request: SheetRequest) -> ImageResult:
        from novelcomic.render.prompts import request_period, sheet_prompt

        check_size(request.width, request.height)
        prompt = sheet_prompt(request.character, request.style, self.prompt_family, request_period(request), request.language)
        wf = self.workflow_no_refs or self.workflow
        return self._draw(wf, prompt.positive, prompt.negative, request.seed, request.width, request.height, [],
                          f"the sheet of {request.character.id}")

    def references(self, request: ShotRequest) -> list[Path]:
        """The shot's reference images, as many as the workflow has slots: each character's first
        (shot order), then their further ones."""
        slots = len(self.workflow.bindings.references)
        lists = [list(ref.reference_images) for ref in request.characters]
        out: list[Path] = []
        depth = 0
        while len(out) < slots and any(depth < len(lst) for lst in lists):
            for lst in lists:
                if depth < len(lst) and len(out) < slots and Path(lst[depth]) not in out:
                    out.append(Path(lst[depth]))
            depth += 1
        return out

    # ------------------------------------------------------------------ editing

    def inpaint(self, image: "Image | str | Path", mask: "Image | str | Path", prompt: str, *,
                negative_prompt: str = "", seed: int = 0) -> ImageResult:
        """Redraw the white part of ``mask`` through ``edit_workflow``; pixels outside it are kept."""
        from PIL import Image as PILImage

        wf = self._edit("inpaint")
        img = _open_rgb(image)
        m = (PILImage.open(mask) if not isinstance(mask, PILImage.Image) else mask).convert("L")
        if m.size != img.size:
            raise NovelcomicError(f"mask size {m.size[0]}x{m.size[1]} differs from image size {img.size[0]}x{img.size[1]}")
        # the mask as ComfyUI's loaders read it: white in red (LoadImageMask, channel red) and
        # transparent where to repaint (LoadImage's MASK output is 1 - alpha)
        rgba = PILImage.merge("RGBA", (m, m, m, m.point(lambda v: 255 - v)))
        names = {"image": self.upload_bytes(_png(img), ".png"), "mask": self.upload_bytes(_png(rgba), ".png")}
        values = {"prompt": prompt, "negative": negative_prompt or "", "seed": int(seed), "width": img.size[0],
                  "height": img.size[1], "steps": self.steps, **names}
        out, prompt_id = self.run_graph(wf.fill(values), wf, "the inpaint", tuple(names.values()))
        if out.size != img.size:
            out = out.resize(img.size, PILImage.LANCZOS)
        result = PILImage.composite(out.convert("RGB"), img, m)
        meta = {"backend": self.name, "workflow": wf.source, "prompt_id": prompt_id, "mode": "inpaint", "lettered": False}
        return ImageResult(result, int(seed), meta=meta)

    def outpaint(self, image: "Image | str | Path", target_aspect: str, prompt: str, *,
                 negative_prompt: str = "", seed: int = 0) -> ImageResult:
        """Extend ``image`` to ``target_aspect`` ("16:9" or "9:16"), the new area drawn through
        ``edit_workflow`` as an inpaint; ``meta["source_box"]`` is where the original sits."""
        from PIL import Image as PILImage, ImageFilter

        from novelcomic.render.edit import ASPECTS

        self._edit("outpaint")
        if target_aspect not in ASPECTS:
            raise NovelcomicError(f"target aspect {target_aspect!r} must be one of {', '.join(ASPECTS)}")
        img = _open_rgb(image)
        w, h = img.size
        a, b = ASPECTS[target_aspect]
        if w * b < h * a:
            new_w, new_h = _round8(h * a / b), h
        else:
            new_w, new_h = w, _round8(w * b / a)
        if (new_w, new_h) == (w, h):
            raise NovelcomicError(f"image {w}x{h} already has the aspect {target_aspect}")
        left, top = (new_w - w) // 2, (new_h - h) // 2
        canvas = img.resize((new_w, new_h)).filter(ImageFilter.GaussianBlur(max(new_w, new_h) / 16))
        canvas.paste(img, (left, top))
        mask = PILImage.new("L", (new_w, new_h), 255)
        mask.paste(0, (left, top, left + w, top + h))
        result = self.inpaint(canvas, mask, prompt, negative_prompt=negative_prompt, seed=seed)
        result.meta.update(mode="outpaint", source_box=(left, top, left + w, top + h), target_aspect=target_aspect)
        return result

    def _edit(self, kind: str) -> "Workflow":
        if self.edit_workflow is None:
            raise NovelcomicError(f"the comfyui backend needs an edit_workflow to {kind} (an inpaint workflow with "
                                  f"image and mask bindings)", field=OPTIONS + "edit_workflow")
        return self.edit_workflow

    # ------------------------------------------------------------------ uploads

    def upload_file(self, path: Path) -> str:
        """Upload a reference image (once per content and server); returns the name to write into LoadImage."""
        path = Path(path)  # a reference the render stage handed over: it passed the path policy there
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise NovelcomicError(f"cannot read reference image {path}: {exc.strerror or exc}") from None
        return self.upload_bytes(data, path.suffix.lower() if path.suffix.lower() in _MIME else ".png")

    def upload_bytes(self, data: bytes, suffix: str = ".png") -> str:
        name = f"nc-{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        key = self.client.config.key
        with _LOCK:
            known = _UPLOADED.setdefault(key, {})
            if name in known:
                return known[name]
        if name in self._server_files():
            with _LOCK:
                _UPLOADED[key][name] = name
            return name
        answer = self.client.post_multipart(
            "/upload/image", data={"overwrite": "true", "type": "input"},
            files=[remote.Upload("image", name, data, _MIME.get(suffix, "image/png"))],
        )
        got = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(got, str) or not got:
            raise BackendError(f"ComfyUI server at {self.url}/upload/image answered without a file name: "
                               f"{remote.snippet(json.dumps(answer))}")
        sub = answer.get("subfolder") or ""
        value = f"{sub}/{got}" if sub else got
        with _LOCK:
            _UPLOADED[key][name] = value
            _FILES.setdefault(key, set()).add(value)
        self.uploads += 1
        return value

    def _server_files(self) -> set[str]:
        key = self.client.config.key
        with _LOCK:
            if key in _FILES:
                return _FILES[key]
        try:  # the backend was made with check_server: false — ask for LoadImage alone
            info = self.client.get_json("/object_info/LoadImage")
            files = g.uploaded_inputs(info) if isinstance(info, dict) else set()
        except remote.HTTPStatusError:
            files = set()
        with _LOCK:
            return _FILES.setdefault(key, files)

    # ------------------------------------------------------------------ one run

    def _draw(self, wf: "Workflow", positive: str, negative: str, seed: int, width: int, height: int,
              refs: list[Path], what: str) -> ImageResult:
        from novelcomic.render.openai_images import fit_to_frame

        names: list[str] = []
        slots = len(wf.bindings.references)
        if slots:
            names = [self.upload_file(p) for p in refs[:slots]]
            if not names:
                names = [self.upload_bytes(g.neutral_png(), ".png")]
            names += [names[0]] * (slots - len(names))
        draw_w, draw_h = self.draw_size(width, height)
        values = {"prompt": positive, "negative": negative, "seed": int(seed), "width": draw_w, "height": draw_h,
                  "steps": self.steps}
        image, prompt_id = self.run_graph(wf.fill(values, names), wf, what, tuple(names))
        meta = {"backend": self.name, "workflow": wf.source, "prompt_id": prompt_id, "references": names,
                "lettered": False}
        return ImageResult(fit_to_frame(image, width, height), int(seed), meta=meta)

    def draw_size(self, width: int, height: int) -> tuple[int, int]:
        """The size written to the width/height bindings: the frame's, or with ``megapixels`` that
        many million pixels of the frame's shape in multiples of 16 (the image is then fitted to the frame)."""
        if self.megapixels is None:
            return width, height
        scale = (self.megapixels * 1_000_000 / (width * height)) ** 0.5
        return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)

    def run_graph(self, graph: dict[str, Any], wf: "Workflow", what: str,
                  references: tuple[str, ...] = ()) -> tuple["Image", str]:
        """Queue ``graph``, follow it to the end, and return its output image and prompt id."""
        with _slot(self.client.config.key, self.concurrency):
            procs.check_stop()
            start = time.monotonic()
            client_id = uuid.uuid4().hex
            ws = self._open_ws(client_id)
            via = "ws" if ws is not None else "poll"
            try:
                prompt_id = self._queue(graph, client_id, wf, what)
                try:
                    entry, via = self._wait(ws, prompt_id, wf, what, start + self.timeout)
                except _Timeout:
                    self.cancel(prompt_id)
                    raise BackendError(f"ComfyUI server at {self.url} did not finish {what} within {self.timeout:g} s "
                                       f"(prompt {prompt_id} taken off the server; raise timeout in "
                                       f"stages.render.options)") from None
                except BaseException as exc:
                    if procs.is_stop(exc):
                        self.cancel(prompt_id)
                    raise
            finally:
                if ws is not None:
                    try:
                        ws.close()
                    except Exception:  # noqa: BLE001 - a socket already gone
                        pass
            image = self._output_image(entry, wf, prompt_id, what)
            self.calls.append(Call(wf.source, prompt_id, references, time.monotonic() - start, via))
            return image, prompt_id

    def _open_ws(self, client_id: str) -> Any:
        """The server's websocket for ``client_id``, or None (then /history is polled)."""
        try:
            from websockets.sync.client import connect
        except ImportError:
            return None
        ws_url = "ws" + self.url[len("http"):] + f"/ws?clientId={client_id}"
        headers = {}
        key = self.client.api_key()
        if key:
            c = self.client.config
            headers[c.auth_header] = f"{c.auth_scheme} {key}" if c.auth_scheme else key
        try:
            return connect(ws_url, additional_headers=headers, open_timeout=self.client.config.connect_timeout,
                           max_size=64 * 1024 * 1024, proxy=None)
        except Exception as exc:  # noqa: BLE001 - refused, no websocket support behind a proxy, …: poll instead
            log.debug("ComfyUI websocket %s not available (%s): polling /history", ws_url, exc)
            return None

    def _queue(self, graph: dict[str, Any], client_id: str, wf: "Workflow", what: str) -> str:
        reply = self.client.request("POST", "/prompt", json={"prompt": graph, "client_id": client_id}, check=False)
        body: Any
        try:
            body = json.loads(reply.content) if reply.content else {}
        except ValueError:
            body = None
        if reply.status in (401, 403) or (reply.status >= 400 and not isinstance(body, dict)):
            raise self.client.status_error(reply.status, reply.url, reply.text)
        if reply.status >= 400 or (isinstance(body, dict) and body.get("node_errors")):
            raise BackendError(f"ComfyUI server at {reply.url} refused {wf.source} for {what}: {g.describe_refusal(body, wf)}")
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        if not isinstance(prompt_id, str) or not prompt_id:
            raise BackendError(f"ComfyUI server at {reply.url} answered without a prompt_id: {remote.snippet(reply.text)}")
        return prompt_id

    def _wait(self, ws: Any, prompt_id: str, wf: "Workflow", what: str, deadline: float) -> tuple[dict[str, Any], str]:
        """Follow the prompt on the websocket, then read its history entry; poll /history when
        there is no socket or it drops. Returns (history entry, "ws" | "poll")."""
        via = "poll"
        if ws is not None and self._follow(ws, prompt_id, wf, what, deadline):
            via = "ws"
            # executing/None comes after the history is written; execution_success may come just before
            return self._poll_history(prompt_id, wf, what, deadline, min(0.05, self.poll_interval)), via
        return self._poll_history(prompt_id, wf, what, deadline, self.poll_interval), via

    def _follow(self, ws: Any, prompt_id: str, wf: "Workflow", what: str, deadline: float) -> bool:
        """Read websocket messages until the prompt ends (True) or the socket drops (False)."""
        while True:
            procs.check_stop()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout()
            try:
                message = ws.recv(timeout=min(0.25, remaining))
            except TimeoutError:
                continue
            except Exception as exc:  # noqa: BLE001 - ConnectionClosed, OSError: poll /history instead
                log.debug("ComfyUI websocket dropped (%s): polling /history/%s", exc, prompt_id)
                return False
            if not isinstance(message, str):  # binary previews
                continue
            try:
                data = json.loads(message)
            except ValueError:
                continue
            kind = data.get("type") if isinstance(data, dict) else None
            body = data.get("data") if isinstance(data, dict) and isinstance(data.get("data"), dict) else {}
            if body.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "progress":
                self._progress(Progress(prompt_id, body.get("node"), int(body.get("value") or 0), int(body.get("max") or 0)))
            elif kind == "executing" and body.get("node") is None and body.get("prompt_id") == prompt_id:
                return True
            elif kind == "execution_success" and body.get("prompt_id") == prompt_id:
                return True
            elif kind == "execution_error" and body.get("prompt_id") == prompt_id:
                raise BackendError(f"ComfyUI server at {self.url} failed {what} ({wf.source}): {g.describe_execution_error(body)}")
            elif kind == "execution_interrupted" and body.get("prompt_id") == prompt_id:
                raise BackendError(f"ComfyUI server at {self.url} interrupted {what} (prompt {prompt_id}: "
                                   f"someone pressed Cancel on the server?)")

    def _poll_history(self, prompt_id: str, wf: "Workflow", what: str, deadline: float, interval: float) -> dict[str, Any]:
        path = f"/history/{prompt_id}"
        while True:
            procs.check_stop()
            answer = self.client.get_json(path)
            entry = answer.get(prompt_id) if isinstance(answer, dict) else None
            if isinstance(entry, dict):
                status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
                if status.get("status_str") == "error":
                    raise BackendError(f"ComfyUI server at {self.url} failed {what} ({wf.source}): {_history_error(status)}")
                if status.get("completed") or status.get("status_str") == "success" or (not status and entry.get("outputs")):
                    return entry
            if time.monotonic() + interval > deadline:
                raise _Timeout()
            if procs.STOP.wait(interval):
                procs.check_stop()

    def _output_image(self, entry: dict[str, Any], wf: "Workflow", prompt_id: str, what: str) -> "Image":
        from PIL import Image as PILImage

        out = wf.bindings.output
        outputs = entry.get("outputs") if isinstance(entry.get("outputs"), dict) else {}
        images = (outputs.get(out) or {}).get("images") or []
        if not images or not isinstance(images[0], dict) or not images[0].get("filename"):
            has = ", ".join(k for k, v in outputs.items() if (v or {}).get("images")) or "none"
            raise BackendError(f"ComfyUI server at {self.url}: output node {out} ({wf.class_of(out)}) of {wf.source} made no "
                               f"image for {what} (prompt {prompt_id}; nodes with images: {has})")
        item = images[0]
        params = {"filename": item["filename"], "subfolder": item.get("subfolder", ""), "type": item.get("type", "output")}
        raw = self.client.download("/view", params=params)
        try:
            image = PILImage.open(io.BytesIO(raw))
            image.load()
        except Exception:  # noqa: BLE001 - Pillow raises many types for bad data
            raise BackendError(f"ComfyUI server at {self.url}/view sent data that is not an image ({len(raw)} bytes, "
                               f"{item['filename']})") from None
        return image.convert("RGB")

    def _progress(self, p: Progress) -> None:
        log.debug("ComfyUI prompt %s: node %s step %d/%d", p.prompt_id, p.node, p.value, p.max)
        if self.on_progress is not None:
            self.on_progress(p)

    # ------------------------------------------------------------------ stopping

    def cancel(self, prompt_id: str) -> None:
        """Take ``prompt_id`` off the server: delete it from the queue while it waits, interrupt it
        while it runs (only it: other users' prompts on the same server are left alone)."""
        try:
            queue = self.quick.get_json("/queue")
            running = {str(i[1]) for i in (queue.get("queue_running") or []) if isinstance(i, list) and len(i) > 1}
            pending = {str(i[1]) for i in (queue.get("queue_pending") or []) if isinstance(i, list) and len(i) > 1}
        except (remote.RemoteError, AttributeError):
            running, pending = {prompt_id}, set()
        try:
            if prompt_id in pending:
                self.quick.request("POST", "/queue", json={"delete": [prompt_id]})
            if prompt_id in running:
                self.quick.request("POST", "/interrupt", json={"prompt_id": prompt_id})
        except remote.RemoteError as exc:
            log.warning("could not take prompt %s off the ComfyUI server: %s", prompt_id, exc)
            return
        self.cancelled.append(prompt_id)


# --------------------------------------------------------------------------- helpers


def _history_error(status: dict[str, Any]) -> str:
    for item in status.get("messages") or []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
            if item[0] == "execution_error":
                return g.describe_execution_error(item[1])
            if item[0] == "execution_interrupted":
                return "the prompt was interrupted on the server"
    return "the prompt failed (no message in its history)"


def _open_rgb(image: "Image | str | Path") -> "Image":
    from PIL import Image as PILImage

    if isinstance(image, PILImage.Image):
        return image.convert("RGB")
    with PILImage.open(image) as im:
        return im.convert("RGB")


def _png(image: "Image") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _round8(value: float) -> int:
    return int(-(-value // 8) * 8)


__all__ = ["Call", "ComfyUIBackend", "Progress", "forget_servers"]
