"""The ``openai`` image backend: any server that speaks OpenAI's Images API (gpt-image, DALL·E, and
the relays that serve Seedream, Qwen-Image, Flux… the same way), for sheets and shots.

- A shot with characters goes to ``POST {base_url}/images/edits`` as ``multipart/form-data``, its
  characters' reference images as repeated ``image[]`` parts (first reference of each character in
  shot order, then their further ones, at most ``max_references``), with ``model``, ``prompt``,
  ``size``, ``n=1`` and ``quality``.
- A shot without characters, and a character sheet, go to ``POST {base_url}/images/generations``
  as JSON.
- The answer's ``data[0]`` may carry ``b64_json`` or a ``url`` (downloaded; the key is only sent to
  the API's own host).
- A relay that answers with a task id instead (``{"id": …, "status": "pending"}``, also
  ``task_id``) is polled at ``async.poll`` (a path from the server's root or a full URL, with
  ``{id}``) until its ``status`` says it is done; the images are read from ``data`` (as above),
  ``results`` (URLs) or ``result``/``output``. EvoLink is one such relay: ``GET /v1/tasks/{id}``
  answers ``{"status": "pending"|"processing"|"completed"|"failed", "progress": 0-100,
  "results": ["https://…/image.jpg"]}``.
- 429 and 5xx are retried with backoff, honouring ``Retry-After`` (:mod:`novelcomic.remote`); a
  server that does not answer is remembered as down for the whole run (one line naming the URL).

The image comes back at the size asked (``size``: ``WxH``, or ``auto``: the size the model accepts
whose shape is nearest the frame's), then is center-cropped to the frame's shape and resized to it.

Reference files are the ones the render stage hands over: the project's own images and sheets,
already checked by the path policy (:mod:`novelcomic.paths`); nothing else is read or uploaded.
The key is read from the environment variable ``api_key_env`` names; a key in project.yaml is
refused.

Example ``project.yaml``::

    stages:
      render:
        backend: openai
        options:
          base_url: https://api.openai.com/v1
          model: gpt-image-1
          api_key_env: OPENAI_API_KEY
          quality: medium
          concurrency: 2
          price_per_image: 0.042
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic import remote
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.render.base import DependsOnModel, ImageCapabilities, ImageResult, SheetRequest, ShotRequest, check_size

if TYPE_CHECKING:
    from PIL.Image import Image

OPTIONS = "stages.render.options."
# Sizes each model family accepts (OpenAI's Images API reference); other models: option ``sizes``.
MODEL_SIZES: dict[str, tuple[str, ...]] = {
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
}
DEFAULT_SIZES = MODEL_SIZES["gpt-image"]
DONE = frozenset({"completed", "complete", "succeeded", "success", "successful", "done", "finished"})
FAILED = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled", "expired", "revoked"})
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


@dataclass(frozen=True)
class AsyncSpec:
    """``async: {poll: "/v1/tasks/{id}", interval: 2, timeout: 600}``."""

    poll: str
    interval: float = 2.0
    timeout: float = 600.0

    @staticmethod
    def parse(value: object) -> "AsyncSpec | None":
        field = OPTIONS + "async"
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("poll"), str) or "{id}" not in value["poll"]:
            raise NovelcomicError(f"async {value!r} must be {{poll: \"/v1/tasks/{{id}}\"}} (a path with {{id}})", field=field)
        unknown = sorted(set(value) - {"poll", "interval", "timeout"})
        if unknown:
            raise NovelcomicError(f"async has unknown key(s) {', '.join(unknown)} (known: poll, interval, timeout)", field=field)
        interval, timeout = value.get("interval", 2.0), value.get("timeout", 600.0)
        for key, v in (("interval", interval), ("timeout", timeout)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise NovelcomicError(f"{key} {v!r} must be a positive number of seconds", field=f"{field}.{key}")
        return AsyncSpec(value["poll"], float(interval), float(timeout))


@dataclass(frozen=True)
class ImageCall:
    """One request to the Images API, as sent (kept in the result's meta without the files)."""

    endpoint: str  # "images/edits" | "images/generations"
    prompt: str
    size: str
    references: tuple[Path, ...] = ()


def parse_size(value: str, field: str = OPTIONS + "size") -> tuple[int, int]:
    try:
        w, h = (int(p) for p in value.lower().split("x"))
    except (ValueError, AttributeError):
        raise NovelcomicError(f"size {value!r} must be WIDTHxHEIGHT (e.g. 1536x1024) or auto", field=field) from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise NovelcomicError(f"size {value!r} must be 16 to 8192 pixels a side", field=field)
    return w, h


def model_sizes(model: str) -> tuple[str, ...]:
    """The sizes ``model`` accepts, as far as known (gpt-image and DALL·E); others get gpt-image's."""
    low = model.lower()
    for prefix, sizes in MODEL_SIZES.items():
        if low.startswith(prefix):
            return sizes
    return DEFAULT_SIZES


def nearest_size(width: int, height: int, sizes: tuple[str, ...]) -> str:
    """The size whose shape is nearest ``width``×``height`` (log of the aspect ratio), larger first on a tie."""

    def score(size: str) -> tuple[float, int]:
        w, h = parse_size(size)
        return abs(math.log((w / h) / (width / height))), -(w * h)

    return min(sizes, key=score)


def fit_to_frame(image: "Image", width: int, height: int) -> "Image":
    """Center-crop ``image`` to the frame's shape, then resize it to ``width``×``height``."""
    from PIL import Image as PILImage

    image = image.convert("RGB")
    iw, ih = image.size
    target = width / height
    if abs(iw / ih - target) > 1e-3:
        if iw / ih > target:
            cw = round(ih * target)
            left = (iw - cw) // 2
            image = image.crop((left, 0, left + cw, ih))
        else:
            ch = round(iw / target)
            top = (ih - ch) // 2
            image = image.crop((0, top, iw, top + ch))
    if image.size != (width, height):
        image = image.resize((width, height), PILImage.LANCZOS)
    return image


class OpenAIImages:
    """Sheets and shots from an OpenAI-compatible Images API (``stages.render.backend: openai``).

    Options: ``base_url``, ``model``, ``api_key_env`` (``none`` for a server without a key),
    ``size`` (``auto`` or ``WxH``), ``sizes`` (what ``auto`` picks from, for models novelcomic does
    not know), ``quality``, ``response_format`` (sent only when set: gpt-image models refuse it),
    ``concurrency`` (requests in flight to this server, whole process), ``timeout`` (seconds per
    request), ``retries``, ``backoff``, ``max_references`` (default 4), ``price_per_image``
    (recorded with each image; ``novelcomic estimate`` multiplies it by the shots),
    ``prompt_language`` (``en``, or ``zh`` for models that read Chinese), ``async``.
    """

    name = "openai"
    # the references of a shot's characters as image[] parts of /images/edits, up to max_references
    capabilities = DependsOnModel(ImageCapabilities(references=4), lambda self: ImageCapabilities(references=self.max_references))
    # The render stage writes this backend a finished prompt (English tags; "kolors" = Chinese).
    prompt_family = "sdxl"

    def __init__(
        self,
        model: str | None = None,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        size: str = "auto",
        sizes: list[str] | None = None,
        quality: str | None = None,
        response_format: str | None = None,
        concurrency: int = 2,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 2.0,
        max_references: int = 4,
        price_per_image: float | None = None,
        prompt_language: str = "en",
        api_key: Any = None,
        **extra: Any,
    ) -> None:
        remote.refuse_inline_key(api_key, OPTIONS + "api_key")
        async_spec = extra.pop("async", None)
        if extra:
            raise NovelcomicError(f"unknown option(s) {', '.join(sorted(extra))} for the openai image backend",
                                  field=OPTIONS + sorted(extra)[0])
        if not model or not isinstance(model, str):
            raise NovelcomicError("the openai image backend needs a model (e.g. model: gpt-image-1)", field=OPTIONS + "model")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise NovelcomicError(f"base_url {base_url!r} must be an http(s) URL", field=OPTIONS + "base_url")
        for key, value, lo, hi in (("concurrency", concurrency, 1, 64), ("retries", retries, 0, 20),
                                   ("max_references", max_references, 1, 16)):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise NovelcomicError(f"{key} {value!r} must be a whole number from {lo} to {hi}", field=OPTIONS + key)
        for key, value in (("timeout", timeout), ("backoff", backoff)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (key == "timeout" and value == 0):
                raise NovelcomicError(f"{key} {value!r} must be a positive number of seconds", field=OPTIONS + key)
        if price_per_image is not None and (not isinstance(price_per_image, (int, float)) or isinstance(price_per_image, bool)
                                            or price_per_image < 0):
            raise NovelcomicError(f"price_per_image {price_per_image!r} must be a number ≥ 0", field=OPTIONS + "price_per_image")
        if size != "auto":
            parse_size(size)
        if sizes is not None:
            if not isinstance(sizes, list) or not sizes:
                raise NovelcomicError(f"sizes {sizes!r} must be a list of WIDTHxHEIGHT", field=OPTIONS + "sizes")
            for s in sizes:
                parse_size(s, OPTIONS + "sizes")
        for key, value in (("quality", quality), ("response_format", response_format)):
            if value is not None and not isinstance(value, str):
                raise NovelcomicError(f"{key} {value!r} must be a string", field=OPTIONS + key)
        if response_format not in (None, "b64_json", "url"):
            raise NovelcomicError(f"response_format {response_format!r} must be b64_json or url", field=OPTIONS + "response_format")
        if prompt_language not in ("en", "zh"):
            raise NovelcomicError(f"prompt_language {prompt_language!r} must be en or zh", field=OPTIONS + "prompt_language")
        key_env = remote.env_name(api_key_env, OPTIONS + "api_key_env")
        remote.require_key(key_env, OPTIONS + "api_key_env", f"the image server at {base_url}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = key_env
        self.size = size
        self.sizes = tuple(sizes) if sizes else model_sizes(model)
        self.quality = quality
        self.response_format = response_format
        self.max_references = max_references
        self.price_per_image = float(price_per_image) if price_per_image is not None else None
        self.prompt_family = "kolors" if prompt_language == "zh" else "sdxl"
        self.async_spec = AsyncSpec.parse(async_spec)
        self.client = remote.RemoteClient(remote.RemoteConfig(
            base_url=self.base_url, label="image server", api_key_env=key_env, timeout=float(timeout),
            retries=retries, backoff=float(backoff), concurrency=concurrency,
        ))
        self.calls: list[ImageCall] = []  # what this instance sent (tests, benchmarks)

    # ------------------------------------------------------------------ the protocol

    def design_character(self, request: SheetRequest) -> ImageResult:
        from novelcomic.render.prompts import request_period, sheet_prompt

        check_size(request.width, request.height)
        prompt = sheet_prompt(request.character, request.style, self.prompt_family, request_period(request), request.language)
        return self._draw(prompt.positive, request.width, request.height, request.seed, ())

    def render_shot(self, request: ShotRequest) -> ImageResult:
        from novelcomic.render.prompts import shot_prompt

        check_size(request.width, request.height)
        prompt = shot_prompt(request, self.prompt_family).positive
        refs = self.references(request)
        return self._draw(prompt, request.width, request.height, request.seed, refs)

    def references(self, request: ShotRequest) -> tuple[Path, ...]:
        """The reference images uploaded for a shot: each character's first (shot order), then
        their further ones, at most ``max_references``."""
        lists = [list(ref.reference_images) for ref in request.characters]
        out: list[Path] = []
        depth = 0
        while len(out) < self.max_references and any(depth < len(lst) for lst in lists):
            for lst in lists:
                if depth < len(lst) and len(out) < self.max_references and Path(lst[depth]) not in out:
                    out.append(Path(lst[depth]))
            depth += 1
        return tuple(out)

    def request_size(self, width: int, height: int) -> str:
        return self.size if self.size != "auto" else nearest_size(width, height, self.sizes)

    # ------------------------------------------------------------------ the call

    def _draw(self, prompt: str, width: int, height: int, seed: int, refs: tuple[Path, ...]) -> ImageResult:
        size = self.request_size(width, height)
        fields: dict[str, Any] = {"model": self.model, "prompt": prompt, "n": 1, "size": size}
        if self.quality:
            fields["quality"] = self.quality
        if self.response_format:
            fields["response_format"] = self.response_format
        if refs:
            call = ImageCall("images/edits", prompt, size, refs)
            files = [remote.Upload("image[]", p.name, _read_reference(p), _MIME.get(p.suffix.lower(), "image/png")) for p in refs]
            answer = self.client.post_multipart(call.endpoint, data={k: str(v) for k, v in fields.items()}, files=files)
        else:
            call = ImageCall("images/generations", prompt, size)
            answer = self.client.post_json(call.endpoint, fields)
        self.calls.append(call)
        url = self.client.url(call.endpoint)
        task = None
        if not _has_images(answer):
            task = _task_id(answer)
            if task is None or self.async_spec is None:
                hint = " (the server answered with a task id: set async: {poll: \"/v1/tasks/{id}\"})" if task else ""
                raise BackendError(f"image server at {url} sent no image{hint}: {remote.snippet(str(answer))}")
            answer = self._wait(task)
        image = self._decode(answer, url)
        meta: dict[str, Any] = {
            "backend": self.name, "model": self.model, "endpoint": call.endpoint, "size": size,
            "references": [p.name for p in refs], "lettered": False,
        }
        if task is not None:
            meta["task"] = task
        if self.price_per_image is not None:
            meta["cost"] = self.price_per_image
        return ImageResult(image=fit_to_frame(image, width, height), seed=seed, meta=meta)

    def _wait(self, task: str) -> Any:
        spec = self.async_spec
        assert spec is not None
        poll_url = self.client.root_url(spec.poll.replace("{id}", task))

        def done(answer: Any) -> Any:
            status = str(_find(answer, "status") or "").lower()
            if status in FAILED:
                reason = _find(answer, "error") or _find(answer, "fail_reason") or _find(answer, "message") or status
                if isinstance(reason, dict):
                    reason = reason.get("message") or reason
                raise BackendError(f"image server at {poll_url}: task {task} failed: {remote.snippet(str(reason))}")
            if (status in DONE or not status) and _has_images(answer):
                return answer
            return None

        return self.client.poll(poll_url, done, interval=spec.interval, timeout=spec.timeout, what=f"task {task}")

    def _decode(self, answer: Any, url: str) -> "Image":
        from PIL import Image as PILImage

        item = _first_image(answer)
        if item is None:
            raise BackendError(f"image server at {url} sent no image: {remote.snippet(str(answer))}")
        kind, value = item
        if kind == "b64":
            try:
                raw = base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=False)
            except (ValueError, TypeError):
                raise BackendError(f"image server at {url} sent b64_json that is not base64") from None
        else:
            raw = self.client.download(value)
        try:
            image = PILImage.open(io.BytesIO(raw))
            image.load()
        except Exception:  # noqa: BLE001 - Pillow raises many types for bad data
            raise BackendError(f"image server at {url} sent data that is not an image ({len(raw)} bytes)") from None
        return image


# --------------------------------------------------------------------------- answers


def _read_reference(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise NovelcomicError(f"cannot read reference image {path}: {exc.strerror or exc}") from None


def _find(answer: Any, key: str) -> Any:
    """``answer[key]``, or ``answer["data"][key]`` for relays that wrap their task in ``data``."""
    if not isinstance(answer, dict):
        return None
    if key in answer:
        return answer[key]
    inner = answer.get("data")
    return inner.get(key) if isinstance(inner, dict) else None


def _task_id(answer: Any) -> str | None:
    for key in ("task_id", "id", "taskId"):
        value = _find(answer, key)
        if isinstance(value, (str, int)) and str(value):
            return str(value)
    return None


def _first_image(answer: Any) -> tuple[str, str] | None:
    """("b64", data) or ("url", url) of the first image an answer carries, wherever the known
    shapes put it: ``data[0]``, ``results[0]``, ``result``/``output`` (a dict, list or URL)."""
    if not isinstance(answer, dict):
        return None
    candidates: list[Any] = []
    for key in ("data", "results", "result", "output", "images"):
        value = answer.get(key)
        if isinstance(value, list):
            candidates.extend(value[:1])
        elif isinstance(value, (dict, str)):
            candidates.append(value)
    for c in candidates:
        if isinstance(c, str) and c.startswith(("http://", "https://")):
            return "url", c
        if isinstance(c, dict):
            if isinstance(c.get("b64_json"), str) and c["b64_json"]:
                return "b64", c["b64_json"]
            for key in ("url", "image_url"):
                if isinstance(c.get(key), str) and c[key].startswith(("http://", "https://")):
                    return "url", c[key]
            nested = _first_image(c)
            if nested is not None:
                return nested
    return None


def _has_images(answer: Any) -> bool:
    return _first_image(answer) is not None


__all__ = ["AsyncSpec", "ImageCall", "MODEL_SIZES", "OpenAIImages", "fit_to_frame", "model_sizes", "nearest_size", "parse_size"]
