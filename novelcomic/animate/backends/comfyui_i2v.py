"""Image-to-video on a ComfyUI server (``animate.backend: comfyui``), over novelcomic.remote.

The server runs the user's own image-to-video workflow, saved from ComfyUI in API format
(``workflow``: a JSON file in the project). Four inputs of it are bound per shot —
``image`` (the still, uploaded with ``/upload/image``), ``prompt``, ``negative``, ``seed`` and
``frames`` — as ``"<node id>.<input name>"`` in ``bindings``; unbound ones are found by the node
types ComfyUI ships (``LoadImage.image``; the first and second ``CLIPTextEncode.text``; a
``seed``/``noise_seed`` input; a ``length``/``num_frames``/``video_frames`` input). The clip is read
from ``output`` (a node id; default: the first node that saved a video or images): a video file
(``SaveVideo``, ``SaveWEBM``, ``SaveAnimatedWEBP``, VideoHelperSuite's ``VHS_VideoCombine`` "gifs")
is re-encoded to MP4, an image sequence (``SaveImage``) is encoded at ``fps``.

Options (``animate.options``): ``base_url`` (http://127.0.0.1:8188), ``workflow`` (required),
``bindings``, ``output``, ``fps`` (the workflow's frame rate, 16), ``frame_step`` (4: frames are
4k+1) and ``max_frames`` (81), ``timeout`` (seconds for one clip, 1800), ``api_key_env``.

This is a small binding layer of its own: the image backend's ComfyUI helpers
(``novelcomic/render/comfyui.py``) were not there yet when it was written.
"""

from __future__ import annotations

import copy
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

from novelcomic.animate.base import Capabilities, ClipRequest, ClipResult, FrameRule
from novelcomic.errors import BackendError, NovelcomicError

OPTIONS = "animate.options."
BINDINGS = ("image", "prompt", "negative", "seed", "frames")
FRAME_INPUTS = ("length", "num_frames", "video_frames", "frame_count", "frames")
VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".webp", ".mov", ".mkv")


class ComfyUII2V:
    name = "comfyui"
    capabilities = Capabilities(families=("comfyui",), prompt=True, negative_prompt=True, output="frames", remote=True)

    def __init__(self, workflow: str | None = None, base_url: str = "http://127.0.0.1:8188", bindings: dict[str, str] | None = None,
                 output: str | None = None, fps: float = 16, frame_step: int = 4, max_frames: int = 81,
                 timeout: float = 1800, api_key_env: str | None = None, workflow_dir: str | None = None) -> None:
        if not isinstance(workflow, str) or not workflow:
            raise NovelcomicError("workflow must name an image-to-video workflow saved from ComfyUI in API format (a .json file)",
                                  field=OPTIONS + "workflow")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise NovelcomicError(f"base_url {base_url!r} must be an http(s) URL", field=OPTIONS + "base_url")
        bindings = dict(bindings or {})
        for key, value in bindings.items():
            if key not in BINDINGS:
                raise NovelcomicError(f"bindings has {key!r}; known: {', '.join(BINDINGS)}", field=OPTIONS + "bindings")
            if not isinstance(value, str) or "." not in value:
                raise NovelcomicError(f"bindings.{key} {value!r} must look like '<node id>.<input name>'", field=OPTIONS + "bindings")
        for key, value, lo, hi in (("fps", fps, 1, 120), ("timeout", timeout, 1, 86400)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise NovelcomicError(f"{key} {value!r} must be a number from {lo} to {hi}", field=OPTIONS + key)
        for key, value, lo, hi in (("frame_step", frame_step, 1, 16), ("max_frames", max_frames, 1, 2000)):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise NovelcomicError(f"{key} {value!r} must be a whole number from {lo} to {hi}", field=OPTIONS + key)
        path = Path(workflow if workflow_dir is None else Path(workflow_dir) / workflow).expanduser()
        try:
            graph = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NovelcomicError(f"workflow {workflow} not found", field=OPTIONS + "workflow") from None
        except (OSError, ValueError) as exc:
            raise NovelcomicError(f"workflow {workflow} is not JSON: {exc}", field=OPTIONS + "workflow") from None
        if not isinstance(graph, dict) or not all(isinstance(n, dict) and "class_type" in n for n in graph.values()):
            raise NovelcomicError(f"workflow {workflow} is not in ComfyUI's API format (Save (API) in ComfyUI): "
                                  "an object of nodes with class_type and inputs", field=OPTIONS + "workflow")
        self.graph, self.base_url, self.output = graph, base_url, output
        self.bindings = {**find_bindings(graph), **bindings}
        for key in ("image",):
            if key not in self.bindings:
                raise NovelcomicError(f"workflow {workflow} has no LoadImage node: bind the still with bindings.image",
                                      field=OPTIONS + "bindings")
        for key, ref in self.bindings.items():
            node, _, _ = ref.partition(".")
            if node not in graph:
                raise NovelcomicError(f"bindings.{key}: workflow {workflow} has no node {node!r}", field=OPTIONS + "bindings")
        if output is not None and str(output) not in graph:
            raise NovelcomicError(f"output: workflow {workflow} has no node {output!r}", field=OPTIONS + "output")
        self.fps, self.rule = float(fps), FrameRule(frame_step, 1, max_frames)
        self.timeout, self.api_key_env = float(timeout), api_key_env

    def _client(self) -> Any:
        from novelcomic.remote import RemoteClient, RemoteConfig

        return RemoteClient(RemoteConfig(base_url=self.base_url, label="ComfyUI server", api_key_env=self.api_key_env,
                                         timeout=120, retries=3, concurrency=1))

    def bound_graph(self, request: ClipRequest, image_name: str) -> tuple[dict, int]:
        """The workflow with the shot's inputs set, and the frame count asked for."""
        frames = self.rule.frames_for(max(1, round(request.seconds * self.fps)))
        values = {"image": image_name, "prompt": request.prompt, "negative": request.negative_prompt,
                  "seed": request.seed, "frames": frames}
        graph = copy.deepcopy(self.graph)
        for key, ref in self.bindings.items():
            node, _, name = ref.partition(".")
            graph[node].setdefault("inputs", {})[name] = values[key]
        return graph, frames

    def animate(self, request: ClipRequest, out: Path) -> ClipResult:
        from novelcomic import procs
        from novelcomic.animate.video import reencode_clip, sequence_to_clip
        from novelcomic.remote import HTTPStatusError, Upload

        request.check()
        with self._client() as client:
            name = f"novelcomic-{request.chapter}-{request.shot_id}-{uuid.uuid4().hex[:8]}.png"
            up = client.post_multipart("/upload/image", data={"overwrite": "true"},
                                       files=[Upload("image", name, Path(request.image).read_bytes(), "image/png")])
            graph, asked = self.bound_graph(request, up.get("name", name) if isinstance(up, dict) else name)
            try:
                queued = client.post_json("/prompt", {"prompt": graph, "client_id": uuid.uuid4().hex})
            except HTTPStatusError as exc:
                raise BackendError(f"ComfyUI refused the workflow: {prompt_error(exc.body)}") from None
            pid = queued["prompt_id"]

            def done(history: Any) -> Any:
                procs.check_stop()
                entry = history.get(pid) if isinstance(history, dict) else None
                if not entry:
                    return None
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    raise BackendError(f"ComfyUI failed the clip: {history_error(status)}")
                return entry if status.get("completed", True) and entry.get("outputs") else None

            entry = client.poll(f"/history/{pid}", done, interval=1.0, timeout=self.timeout)
            files = output_files(entry["outputs"], self.output)
            with tempfile.TemporaryDirectory(prefix=".comfy-", dir=out.parent) as tmp:
                local = []
                for i, f in enumerate(files):
                    dest = Path(tmp) / f"{i:05d}{Path(f['filename']).suffix or '.png'}"
                    client.download("/view", dest=dest, params={"filename": f["filename"], "subfolder": f.get("subfolder", ""),
                                                                "type": f.get("type", "output")})
                    local.append(dest)
                if len(local) == 1 and local[0].suffix.lower() in VIDEO_SUFFIXES:
                    n, w, h = reencode_clip(local[0], out, self.fps)
                else:
                    n, w, h = sequence_to_clip(local, self.fps, out)
        return ClipResult(out, self.fps, n, w, h, request.seed, {"asked_frames": asked, "prompt_id": pid})


def find_bindings(graph: dict[str, Any]) -> dict[str, str]:
    """The bindings a workflow's stock nodes give without being named (see the module docstring)."""
    found: dict[str, str] = {}
    texts = []
    for nid, node in graph.items():
        cls, inputs = node.get("class_type", ""), node.get("inputs", {}) or {}
        if cls == "LoadImage" and "image" not in found:
            found["image"] = f"{nid}.image"
        if "TextEncode" in cls and isinstance(inputs.get("text"), str):
            texts.append(f"{nid}.text")
        for key in ("seed", "noise_seed"):
            if key in inputs and not isinstance(inputs[key], list) and "seed" not in found:
                found["seed"] = f"{nid}.{key}"
        for key in FRAME_INPUTS:
            if key in inputs and isinstance(inputs[key], int) and "frames" not in found:
                found["frames"] = f"{nid}.{key}"
    if texts:
        found["prompt"] = texts[0]
    if len(texts) > 1:
        found["negative"] = texts[1]
    return found


def output_files(outputs: dict[str, Any], node: str | None) -> list[dict]:
    """The files of the output node (``node``, else the first that saved a video or images)."""
    order = [str(node)] if node is not None else list(outputs)
    for nid in order:
        out = outputs.get(nid) or {}
        for key in ("videos", "gifs", "video", "images"):
            files = out.get(key)
            if files:
                return list(files)
    raise BackendError(f"the workflow saved no video or images{f' in node {node}' if node else ''} "
                       "(add a SaveVideo, SaveImage or VHS_VideoCombine node, or set animate.options.output)")


def prompt_error(body: str) -> str:
    """ComfyUI's 400 answer to /prompt on one line: the error and the first node error."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300]
    err = data.get("error") or {}
    parts = [f"{err.get('type', '')}: {err.get('message', '')}".strip(": ")]
    for nid, ne in (data.get("node_errors") or {}).items():
        for e in ne.get("errors", [])[:1]:
            info = e.get("extra_info") or {}
            parts.append(f"node {nid} ({ne.get('class_type', '')}) {info.get('input_name', '')}: {e.get('message', '')} "
                         f"{e.get('details', '')}".strip())
        break
    return "; ".join(p for p in parts if p)


def history_error(status: dict) -> str:
    for kind, msg in status.get("messages", []) or []:
        if kind == "execution_error":
            return f"node {msg.get('node_id')} ({msg.get('node_type')}): {msg.get('exception_message', '').strip()}"
    return "execution error"
