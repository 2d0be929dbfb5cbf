"""A small ComfyUI server on 127.0.0.1 that follows ComfyUI's published protocol (server.py,
execution.py): ``/prompt`` (validation against its node list: HTTP 400 with ``error`` and
``node_errors``), ``/ws?clientId=`` (status, execution_start, executing, progress, executed,
execution_success, execution_error, execution_interrupted — a real websocket), ``/history``,
``/view``, ``/upload/image``, ``/object_info`` (and ``/object_info/{class}``), ``/interrupt``,
``/queue``.

It "executes" a graph trivially: the output image is ``width``×``height`` (from an
EmptyLatentImage/EmptyImage node) filled with :func:`colour` of the seed and the prompt text, with
the image of every LoadImage node pasted as a 16×16 tile at x = 16·i (i: the node's rank by id).
With a LoadImageMask node (an edit workflow), the LoadImage image is the base and its masked part
is filled with the colour. Tests decode the result to check what reached which node.

In a test: ``ComfyStub().start()`` (a thread), or as a process that can be killed:
``python -m tests.comfy_server --port P [--delay S] [--die-after N] [--token T]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

TILE = 16


def colour(seed: int, text: str) -> tuple[int, int, int]:
    """The fill colour of an image drawn for ``seed`` and prompt ``text``."""
    c = zlib.crc32(text.encode())
    return (int(seed) % 200 + 20, c % 200 + 20, (c >> 8) % 200 + 20)


def _int(**o: Any) -> list:
    return ["INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, **o}]


def object_info(files: list[str]) -> dict[str, Any]:
    """A node list in /object_info's shape (real classes, real input names)."""
    def node(required: dict, optional: dict | None = None, output: tuple = ("IMAGE",), output_node: bool = False,
             category: str = "test") -> dict:
        return {"input": {"required": required, **({"optional": optional} if optional else {})}, "output": list(output),
                "output_is_list": [False] * len(output), "output_name": list(output), "output_node": output_node,
                "category": category, "display_name": "", "description": "", "python_module": "nodes"}

    return {
        "LoadImage": node({"image": [sorted(files), {"image_upload": True}]}, output=("IMAGE", "MASK")),
        "LoadImageMask": node({"image": [sorted(files), {"image_upload": True}],
                               "channel": [["alpha", "red", "green", "blue"]]}, output=("MASK",)),
        "CheckpointLoaderSimple": node({"ckpt_name": [["toy.safetensors"]]}, output=("MODEL", "CLIP", "VAE")),
        "CLIPTextEncode": node({"text": ["STRING", {"multiline": True}], "clip": ["CLIP"]}, output=("CONDITIONING",)),
        "EmptyLatentImage": node({"width": _int(min=16, max=16384), "height": _int(min=16, max=16384),
                                  "batch_size": _int(min=1, max=4096)}, output=("LATENT",)),
        "EmptyImage": node({"width": _int(min=1), "height": _int(min=1), "batch_size": _int(min=1),
                            "color": _int()}),
        "KSampler": node({"model": ["MODEL"], "seed": _int(), "steps": _int(min=1, max=10000),
                          "cfg": ["FLOAT", {"default": 8.0}], "sampler_name": ["COMBO", {"options": ["euler", "dpmpp_2m"]}],
                          "scheduler": [["normal", "karras"]], "positive": ["CONDITIONING"], "negative": ["CONDITIONING"],
                          "latent_image": ["LATENT"], "denoise": ["FLOAT", {"default": 1.0}]}, output=("LATENT",)),
        "VAEDecode": node({"samples": ["LATENT"], "vae": ["VAE"]}),
        "ImageBlend": node({"image1": ["IMAGE"], "image2": ["IMAGE"], "blend_factor": ["FLOAT", {}],
                            "blend_mode": [["normal", "multiply"]]}),
        "ImageScale": node({"image": ["IMAGE"], "upscale_method": [["nearest-exact", "bilinear"]],
                            "width": _int(), "height": _int(), "crop": [["disabled", "center"]]}),
        "SetLatentNoiseMask": node({"samples": ["LATENT"], "mask": ["MASK"]}, output=("LATENT",)),
        "VAEEncode": node({"pixels": ["IMAGE"], "vae": ["VAE"]}, output=("LATENT",)),
        "PrimitiveString": node({"value": ["STRING", {}]}, output=("STRING",)),
        "PrimitiveInt": node({"value": _int()}, output=("INT",)),
        "SaveImage": node({"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}, output=(),
                          output_node=True),
        "PreviewImage": node({"images": ["IMAGE"]}, output=(), output_node=True),
    }


@dataclass
class Queued:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    client_id: str
    task: asyncio.Task | None = None


@dataclass
class ComfyStub:
    """The server. ``delay``: seconds per progress step (4 steps a prompt); ``die_after``: the
    process exits (``os._exit``) while executing the prompt after that many; ``fail_execution``:
    the sampler raises at run time (execution_error); ``token``: required as ``Bearer``;
    ``ws``: serve the websocket (off: clients must poll /history); ``pause_between``: seconds
    before the next queued prompt starts."""

    port: int = 0
    delay: float = 0.0
    die_after: int | None = None
    fail_execution: bool = False
    token: str | None = None
    ws: bool = True
    pause_between: float = 0.0  # seconds before the next queued prompt starts
    inputs: dict[str, bytes] = field(default_factory=dict)
    outputs: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    prompts: list[dict[str, Any]] = field(default_factory=list)  # /prompt bodies accepted
    uploads: list[str] = field(default_factory=list)
    interrupts: list[Any] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    auth_seen: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)  # seconds the server spent: per HTTP request (not /ws), per execution

    def __post_init__(self) -> None:
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._pending: list[Queued] = []
        self._running: Queued | None = None
        self._counter = 0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        @web.middleware
        async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            self.auth_seen.append(request.headers.get("Authorization", ""))
            if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
                return web.json_response({"error": "unauthorized"}, status=401)
            start = time.perf_counter()
            response = await handler(request)
            if request.path != "/ws":
                self.busy.append(time.perf_counter() - start)
            return response

        app = web.Application(middlewares=[auth], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ws", self.websocket)
        app.router.add_post("/prompt", self.post_prompt)
        app.router.add_get("/history/{id}", self.get_history)
        app.router.add_get("/view", self.view)
        app.router.add_post("/upload/image", self.upload)
        app.router.add_get("/object_info", self.get_object_info)
        app.router.add_get("/object_info/{cls}", self.get_object_info)
        app.router.add_post("/interrupt", self.interrupt)
        app.router.add_get("/queue", self.get_queue)
        app.router.add_post("/queue", self.post_queue)
        app.router.add_get("/_test/stats", self.stats)
        return app

    def info(self) -> dict[str, Any]:
        return object_info(list(self.inputs))

    async def get_object_info(self, request: web.Request) -> web.Response:
        info = self.info()
        cls = request.match_info.get("cls")
        return web.json_response({cls: info[cls]} if cls in info else {} if cls else info)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"prompts": len(self.prompts), "uploads": list(self.uploads),
                                  "interrupts": self.interrupts, "deleted": self.deleted})

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        part = form.get("image")
        if part is None or not hasattr(part, "file"):
            return web.Response(status=400)
        name = os.path.basename(part.filename)
        data = part.file.read()
        if form.get("overwrite") != "true" and name in self.inputs:
            stem, ext = os.path.splitext(name)
            i = 1
            while f"{stem} ({i}){ext}" in self.inputs:
                i += 1
            name = f"{stem} ({i}){ext}"
        self.inputs[name] = data
        self.uploads.append(name)
        return web.json_response({"name": name, "subfolder": "", "type": form.get("type", "input")})

    async def view(self, request: web.Request) -> web.Response:
        name, kind = request.query.get("filename", ""), request.query.get("type", "output")
        store = self.outputs if kind in ("output", "temp") else self.inputs
        if name not in store:
            return web.Response(status=404)
        return web.Response(body=store[name], content_type="image/png")

    async def get_history(self, request: web.Request) -> web.Response:
        pid = request.match_info["id"]
        return web.json_response({pid: self.history[pid]} if pid in self.history else {})

    async def get_queue(self, request: web.Request) -> web.Response:
        def row(q: Queued) -> list:
            return [q.number, q.prompt_id, q.graph, {"client_id": q.client_id}, []]

        return web.json_response({"queue_running": [row(self._running)] if self._running else [],
                                  "queue_pending": [row(q) for q in self._pending]})

    async def post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        for pid in body.get("delete", []):
            self.deleted.append(pid)
            self._pending = [q for q in self._pending if q.prompt_id != pid]
        if body.get("clear"):
            self._pending.clear()
        return web.Response(status=200)

    async def interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        self.interrupts.append(body)
        target = body.get("prompt_id") if isinstance(body, dict) else None
        run = self._running
        if run is not None and run.task is not None and (target is None or target == run.prompt_id):
            run.task.cancel()
        return web.Response(status=200)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.ws:
            return web.Response(status=404)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets[sid] = ws
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": len(self._pending)}},
                                                       "sid": sid}})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            if self._sockets.get(sid) is ws:
                del self._sockets[sid]
        return ws

    async def send(self, client_id: str, kind: str, data: dict[str, Any]) -> None:
        ws = self._sockets.get(client_id)
        if ws is not None and not ws.closed:
            try:
                await ws.send_json({"type": kind, "data": data})
            except (ConnectionError, RuntimeError):
                pass

    # ------------------------------------------------------------------ /prompt

    def validate(self, graph: Any) -> tuple[dict | None, dict]:
        """(error, node_errors) as execution.validate_prompt reports them."""
        info = self.info()
        if not isinstance(graph, dict) or not graph:
            return {"type": "no_prompt", "message": "No prompt provided", "details": "", "extra_info": {}}, {}
        for nid, node in graph.items():
            cls = node.get("class_type")
            if cls not in info:
                title = (node.get("_meta") or {}).get("title") or cls
                return {"type": "missing_node_type",
                        "message": f"Node '{title}' not found. The custom node may not be installed.",
                        "details": f"Node ID '#{nid}'", "extra_info": {"node_id": nid, "class_type": cls, "node_title": title}}, {}
        node_errors: dict[str, Any] = {}
        for nid, node in graph.items():
            spec = info[node["class_type"]]["input"]
            errors = []
            for name, s in spec.get("required", {}).items():
                value = node.get("inputs", {}).get(name)
                kind = s[0]
                if value is None:
                    errors.append({"type": "required_input_missing", "message": "Required input is missing",
                                   "details": name, "extra_info": {"input_name": name}})
                    continue
                if isinstance(value, list) and len(value) == 2 and str(value[0]) in graph:
                    continue  # a link
                choices = kind if isinstance(kind, list) else (s[1].get("options") if kind == "COMBO" else None)
                if choices is not None and value not in choices:
                    errors.append({"type": "value_not_in_list", "message": "Value not in list",
                                   "details": f"{name}: '{value}' not in {choices[:5]}",
                                   "extra_info": {"input_name": name, "received_value": value}})
                elif kind == "INT" and (not isinstance(value, int) or isinstance(value, bool)):
                    errors.append({"type": "invalid_input_type", "message": "Failed to convert an input value to a INT value",
                                   "details": f"{name}, {value}", "extra_info": {"input_name": name, "received_value": value}})
                elif kind == "INT" and value < s[1].get("min", 0):
                    errors.append({"type": "value_smaller_than_min", "message": f"Value {value} smaller than min of {s[1]['min']}",
                                   "details": f"{name}", "extra_info": {"input_name": name, "received_value": value}})
            if errors:
                node_errors[nid] = {"errors": errors, "dependent_outputs": [], "class_type": node["class_type"]}
        if node_errors:
            return {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                    "details": "", "extra_info": {}}, node_errors
        return None, {}

    async def post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        graph = body.get("prompt")
        error, node_errors = self.validate(graph)
        if error is not None:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        self.prompts.append(body)
        self._counter += 1
        q = Queued(self._counter, uuid.uuid4().hex, graph, body.get("client_id", ""))
        self._pending.append(q)
        assert self._wake is not None
        self._wake.set()
        return web.json_response({"prompt_id": q.prompt_id, "number": q.number, "node_errors": {}})

    async def worker(self) -> None:
        assert self._wake is not None
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            q = self._pending.pop(0)
            self._running = q
            q.task = asyncio.ensure_future(self.execute(q))
            start = time.perf_counter()
            try:
                await q.task
                self.busy.append(time.perf_counter() - start)
            except asyncio.CancelledError:
                self.history[q.prompt_id] = {"prompt": [q.number, q.prompt_id, q.graph, {}, []], "outputs": {},
                                             "status": {"status_str": "error", "completed": False, "messages": [
                                                 ["execution_interrupted", {"prompt_id": q.prompt_id}]]}}
                await self.send(q.client_id, "execution_interrupted", {"prompt_id": q.prompt_id, "node_id": "3",
                                                                        "node_type": "KSampler", "executed": []})
            finally:
                self._running = None
            if self.pause_between:
                await asyncio.sleep(self.pause_between)

    async def execute(self, q: Queued) -> None:
        pid, cid, graph = q.prompt_id, q.client_id, q.graph
        await self.send(cid, "execution_start", {"prompt_id": pid})
        if self.die_after is not None and len(self.history) >= self.die_after:
            await asyncio.sleep(max(self.delay, 0.2))
            os._exit(3)  # the server dies mid-render
        sampler = next((n for n, node in graph.items() if node["class_type"] == "KSampler"), None)
        for step in range(1, 5):
            await self.send(cid, "executing", {"node": sampler, "display_node": sampler, "prompt_id": pid})
            if self.delay:
                await asyncio.sleep(self.delay)
            await self.send(cid, "progress", {"value": step, "max": 4, "prompt_id": pid, "node": sampler})
        if self.fail_execution:
            err = {"prompt_id": pid, "node_id": sampler, "node_type": "KSampler", "executed": [],
                   "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB", "exception_type":
                   "torch.OutOfMemoryError", "traceback": [], "current_inputs": {}, "current_outputs": {}}
            self.history[pid] = {"prompt": [], "outputs": {}, "status": {"status_str": "error", "completed": False,
                                                                          "messages": [["execution_error", err]]}}
            await self.send(cid, "execution_error", err)
            return
        outputs: dict[str, Any] = {}
        image = self.draw(graph)
        for nid, node in graph.items():
            if node["class_type"] in ("SaveImage", "PreviewImage"):
                name = f"ComfyUI_{q.number:05d}_{nid}.png"
                buf = io.BytesIO()
                image.save(buf, format="PNG")
                self.outputs[name] = buf.getvalue()
                outputs[nid] = {"images": [{"filename": name, "subfolder": "", "type": "output"}]}
                await self.send(cid, "executed", {"node": nid, "display_node": nid, "output": outputs[nid], "prompt_id": pid})
        self.history[pid] = {"prompt": [q.number, pid, graph, {}, list(outputs)], "outputs": outputs,
                             "status": {"status_str": "success", "completed": True, "messages": [
                                 ["execution_start", {"prompt_id": pid}], ["execution_success", {"prompt_id": pid}]]},
                             "meta": {}}
        await self.send(cid, "execution_success", {"prompt_id": pid})
        await self.send(cid, "executing", {"node": None, "prompt_id": pid})

    def draw(self, graph: dict[str, Any]) -> Image.Image:
        def value(node: dict, name: str, default: Any = None) -> Any:
            v = node.get("inputs", {}).get(name, default)
            if isinstance(v, list) and len(v) == 2 and str(v[0]) in graph:  # follow a link to a primitive
                return value(graph[str(v[0])], "value", default)
            return v

        size = next(((value(n, "width"), value(n, "height")) for n in graph.values()
                     if n["class_type"] in ("EmptyLatentImage", "EmptyImage")), (64, 64))
        seed = next((value(n, "seed") for n in graph.values() if n["class_type"] == "KSampler"), 0)
        texts = [value(n, "text", "") for _, n in sorted(graph.items(), key=lambda kv: _rank(kv[0]))
                 if n["class_type"] == "CLIPTextEncode"]
        fill = colour(seed, texts[0] if texts else "")
        loads = [(nid, n) for nid, n in sorted(graph.items(), key=lambda kv: _rank(kv[0])) if n["class_type"] == "LoadImage"]
        masks = [n for n in graph.values() if n["class_type"] == "LoadImageMask"]
        if masks:  # an edit: the LoadImage is the base, the mask's red channel says where to paint
            base = Image.open(io.BytesIO(self.inputs[loads[0][1]["inputs"]["image"]])).convert("RGB")
            mask = Image.open(io.BytesIO(self.inputs[masks[0]["inputs"]["image"]])).convert("RGB").split()[0]
            return Image.composite(Image.new("RGB", base.size, fill), base, mask.resize(base.size))
        image = Image.new("RGB", (int(size[0]), int(size[1])), fill)
        for i, (_, node) in enumerate(loads):
            ref = Image.open(io.BytesIO(self.inputs[node["inputs"]["image"]])).convert("RGB").resize((TILE, TILE))
            image.paste(ref, (i * TILE, 0))
        return image

    # ------------------------------------------------------------------ running

    async def _serve(self) -> None:
        self._wake = asyncio.Event()
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]
        asyncio.ensure_future(self.worker())

    def start(self) -> "ComfyStub":
        """Serve in a background thread until :meth:`stop`."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def down() -> None:
            for ws in list(self._sockets.values()):
                await ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def drop_sockets(self) -> None:
        """Close every websocket (clients must fall back to polling /history)."""
        assert self._loop is not None

        async def drop() -> None:
            for ws in list(self._sockets.values()):
                await ws.close()

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(5)


def _rank(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--die-after", type=int, default=None)
    ap.add_argument("--token", default=None)
    args = ap.parse_args(argv)
    stub = ComfyStub(port=args.port, delay=args.delay, die_after=args.die_after, token=args.token)

    async def forever() -> None:
        await stub._serve()
        print(f"ready {stub.url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(forever())


if __name__ == "__main__":
    main()
