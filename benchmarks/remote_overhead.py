"""Per-shot / per-line overhead of the HTTP engines over the server's own time. Prints a markdown table.

    .venv/bin/python benchmarks/remote_overhead.py                       # 8 shots, 8 lines
    .venv/bin/python benchmarks/remote_overhead.py --n 20 --image-delay 2 --speech-delay 0.5

A local server (``tests/test_remote.OpenAIStub``, on 127.0.0.1, following OpenAI's protocol) takes
``--image-delay`` / ``--speech-delay`` seconds to "generate" each answer (a stand-in for the GPU
time of a real server), then encodes a PNG / WAV. The server's own time per request is measured
inside the server (from its parsed headers to the last byte of its answer written). For each backend we report the
wall time per call on the client (``OpenAIImages.render_shot`` with two reference images uploaded as
``image[]``, in b64 and in URL mode; ``OpenAISpeech.synthesize`` writing a PCM16 WAV), the server's
time, and the overhead: (client − server) / server. It covers novelcomic's side: building the
request, multipart encoding, the remote layer (breaker, retries bookkeeping, connection pool),
decoding the answer, cropping/resizing the image or converting the audio. Real servers take
seconds per image; the overhead shrinks in proportion.

The ``comfyui`` backend runs against ``tests.comfy_server.ComfyStub`` (ComfyUI's protocol: /prompt,
/ws, /history, /view, /upload/image, /object_info), whose "sampler" takes 4 progress steps of
``--comfy-step-delay`` seconds, then draws and encodes a PNG of the frame's size. The server's time
per shot is what it spent executing the prompt plus handling every HTTP request of that shot
(measured inside the server; the websocket's open time is not counted, its messages are). Rows:
with the websocket, and with /history polling (``poll_interval`` 0.1 s; a server without /ws).
The two 1024×1024 reference sheets are uploaded on the warm-up shot and reused after (by hash).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="calls per backend")
    ap.add_argument("--image-delay", type=float, default=1.0, help="server seconds per image")
    ap.add_argument("--speech-delay", type=float, default=0.3, help="server seconds per line")
    ap.add_argument("--size", default="1080x1920", help="frame size (the server draws the nearest gpt-image size)")
    ap.add_argument("--comfy-step-delay", type=float, default=0.25, help="ComfyUI server seconds per sampler step (4 steps)")
    args = ap.parse_args()

    from novelcomic.models import Character, Scene, Shot, VoiceSpec
    from novelcomic.registry import image_backends, tts_backends
    from novelcomic.render.base import CharacterRef, ShotRequest
    from novelcomic.voice.base import SpeechRequest
    from tests.test_remote import OpenAIStub, png_bytes

    stub = OpenAIStub().start()
    width, height = (int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "project.yaml").write_text("title: bench\n", encoding="utf-8")
        refs = []
        for i in range(2):
            p = d / f"sheet{i}.png"
            p.write_bytes(png_bytes(1024, 1024, (i * 80, 100, 100)))
            refs.append(p)
        chars = [Character(id=f"c{i}", name=f"C{i}") for i in range(2)]
        shot = Shot(id="s01-01", characters=[c.id for c in chars])
        request = ShotRequest(chapter="01", scene=Scene(id="s01", shots=[shot]), shot=shot,
                              characters=[CharacterRef(c, [r]) for c, r in zip(chars, refs)], location=None, props=[],
                              style=[], width=width, height=height, seed=1, prompt="two friends by the river at dusk")
        for mode in ("b64", "url"):
            stub.mode, stub.delay = mode, args.image_delay
            images = image_backends.create("openai", {"base_url": stub.url, "model": "gpt-image-1", "api_key_env": "none"})
            images.render_shot(request)  # warm: connection, imports
            stub.server_times.clear()
            walls = []
            for _ in range(args.n):
                t = time.perf_counter()
                images.render_shot(request)
                walls.append(time.perf_counter() - t)
            rows.append((f"openai images (edits, 2 refs, {mode})", walls, list(stub.server_times)))
        stub.delay = args.speech_delay
        speech = tts_backends.create("openai", {"base_url": stub.url, "model": "tts-1", "api_key_env": "none"})
        line = SpeechRequest(text="The river ran quietly past the village as the lanterns came on one by one.",
                             language="en", voice=VoiceSpec(), speaker="narrator")
        (d / "audio").mkdir()
        speech.synthesize(line, d / "audio" / "warm.wav")
        stub.server_times.clear()
        walls = []
        for i in range(args.n):
            t = time.perf_counter()
            speech.synthesize(line, d / "audio" / f"{i}.wav")
            walls.append(time.perf_counter() - t)
        rows.append(("openai speech (wav)", walls, list(stub.server_times)))
        rows.extend(comfy_rows(args, d, request))
    stub.stop()
    print(f"{args.n} calls each, frame {args.size}, server delay {args.image_delay:g} s/image, "
          f"{args.speech_delay:g} s/line\n")
    print("| backend | client s/call | server s/call | overhead s/call | overhead |")
    print("| --- | --- | --- | --- | --- |")
    for name, walls, server in rows:
        c, s = statistics.median(walls), statistics.median(server)
        print(f"| {name} | {c:.3f} | {s:.3f} | {c - s:.3f} | {100 * (c - s) / s:.1f}% |")


def comfy_rows(args: argparse.Namespace, d: Path, request: object) -> list[tuple[str, list[float], list[float]]]:
    import json

    from novelcomic.registry import image_backends
    from novelcomic.render import comfyui
    from tests.comfy_server import ComfyStub
    from tests.test_comfyui import BIND, GRAPH

    workflow = d / "shot.json"
    workflow.write_text(json.dumps(GRAPH), encoding="utf-8")
    rows = []
    for label, ws, poll in (("comfyui (ws, 2 refs)", True, 0.5), ("comfyui (poll /history, 2 refs)", False, 0.1)):
        comfyui.forget_servers()
        stub = ComfyStub(delay=args.comfy_step_delay, ws=ws).start()
        backend = image_backends.create("comfyui", {"url": stub.url, "workflow": str(workflow), "bind": BIND,
                                                    "poll_interval": poll})
        backend.render_shot(request)  # warm: connection, imports, the two uploads
        walls, server = [], []
        for _ in range(args.n):
            stub.busy.clear()
            t = time.perf_counter()
            backend.render_shot(request)
            walls.append(time.perf_counter() - t)
            server.append(sum(stub.busy))
        stub.stop()
        rows.append((label, walls, server))
    return rows


if __name__ == "__main__":
    main()
