"""Running ffmpeg and reading media facts.

The ffmpeg binary is imageio-ffmpeg's static build (it has libx264, aac and libass); the
``NOVELCOMIC_FFMPEG`` environment variable points at another one. ``ffprobe`` is optional: when it
is missing, :func:`probe` parses ``ffmpeg -i`` output into the same shape of dictionary.

Every failure is a :class:`~novelcomic.errors.BackendError` that says what was being done and ends
with the last lines ffmpeg wrote to stderr.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from novelcomic import procs
from novelcomic.errors import BackendError, NovelcomicError

STDERR_TAIL_LINES = 15


@functools.lru_cache(maxsize=4)
def _ffmpeg_exe(override: str | None) -> str:
    if override:
        found = shutil.which(override) or (override if Path(override).is_file() else None)
        if not found:
            raise NovelcomicError(f"NOVELCOMIC_FFMPEG={override!r} is not an executable file")
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a dependency
        imageio_ffmpeg = None  # type: ignore[assignment]
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:  # pragma: no cover - no bundled binary for this platform
            pass
    system = shutil.which("ffmpeg")
    if system:  # pragma: no cover - fallback
        return system
    raise NovelcomicError("ffmpeg not found: pip install imageio-ffmpeg or set NOVELCOMIC_FFMPEG")  # pragma: no cover


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$NOVELCOMIC_FFMPEG`` if set, else imageio-ffmpeg's, else ``ffmpeg`` on PATH."""
    return _ffmpeg_exe(os.environ.get("NOVELCOMIC_FFMPEG") or None)


def ffprobe_exe() -> str | None:
    """An ffprobe binary (``$NOVELCOMIC_FFPROBE``, one beside ffmpeg, or on PATH), or None."""
    override = os.environ.get("NOVELCOMIC_FFPROBE")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    beside = Path(ffmpeg_exe()).with_name("ffprobe")
    if beside.is_file():
        return str(beside)
    return shutil.which("ffprobe")


def stderr_tail(stderr: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``stderr``."""
    kept = [ln for ln in stderr.splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def run_ffmpeg(
    args: list[str], what: str, *, cwd: str | Path | None = None, timeout: float | None = None, stdout: IO[bytes] | None = None
) -> str:
    """Run ffmpeg with ``args`` (without the binary); return its stderr.

    ``-hide_banner -nostdin -y`` are added. ``stdout``: where ffmpeg's standard output goes (a
    ``pipe:1`` output written straight into another process; default: discarded). Raises
    :class:`BackendError` naming ``what`` with the tail of stderr when ffmpeg fails or cannot be started.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args]
    try:
        proc = procs.run(
            cmd, cwd=cwd, stdout=stdout if stdout is not None else subprocess.DEVNULL, stderr=subprocess.PIPE,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        err = (exc.stderr or b"").decode("utf-8", "replace")
        raise BackendError(f"ffmpeg timed out after {timeout}s while {what}\n{stderr_tail(err)}") from None
    except OSError as exc:
        raise BackendError(f"could not run ffmpeg ({cmd[0]}) while {what}: {exc}") from exc
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        procs.check_stop()  # ended by a stop signal: not ffmpeg's failure
        raise BackendError(f"ffmpeg failed (exit {proc.returncode}) while {what}:\n{stderr_tail(err)}")
    return err


class FFmpegWriter:
    """An ffmpeg reading ``pipe:`` (its stdin) while this process, or other processes, write into it.

    Use it as a context manager: :meth:`write` sends bytes; :attr:`stdin` can be handed to another
    process as its stdout (call :meth:`flush` first) so its output goes straight in. stderr goes to
    a temporary file, so a chatty ffmpeg never blocks a writer. Leaving the block closes stdin and
    waits; when ffmpeg failed, or stopped reading, a :class:`BackendError` naming ``what`` is raised
    with the tail of stderr. If the block raises, ffmpeg is killed first and its failure, if it had
    one, is reported instead (a broken pipe is only the symptom).
    """

    def __init__(
        self, args: list[str], what: str, *, cwd: str | Path | None = None, stdout: IO[bytes] | None = None
    ) -> None:
        self.cmd = [ffmpeg_exe(), "-hide_banner", "-y", *args]
        self.what = what
        self.cwd = cwd
        self.stdout = stdout
        self.output = ""  # ffmpeg's stderr, once the block is left
        self._err: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FFmpegWriter:
        self._err = tempfile.TemporaryFile()
        try:
            self.proc = procs.popen(
                self.cmd, cwd=self.cwd, stdin=subprocess.PIPE,
                stdout=self.stdout if self.stdout is not None else subprocess.DEVNULL, stderr=self._err,
            )
        except OSError as exc:
            self._err.close()
            raise BackendError(f"could not run ffmpeg ({self.cmd[0]}) while {self.what}: {exc}") from exc
        return self

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc is not None and self.proc.stdin is not None
        return self.proc.stdin

    def write(self, chunk: bytes | memoryview) -> None:
        self.stdin.write(chunk)

    def flush(self) -> None:
        self.stdin.flush()

    def stderr(self) -> str:
        assert self._err is not None
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    def failure(self) -> BackendError | None:
        """ffmpeg's failure, once it has exited (None while it runs or when it succeeded)."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None or code == 0:
            return None
        return BackendError(f"ffmpeg failed (exit {code}) while {self.what}:\n{stderr_tail(self.stderr())}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        assert self.proc is not None and self._err is not None
        try:
            if exc_type is not None:
                failed = self.proc.poll()  # it may have died first, and caused the error
                if failed is None:
                    self.proc.kill()
                self._close_stdin()
                self.proc.wait()
                if failed and issubclass(exc_type, (OSError, BackendError)):
                    procs.check_stop()
                    raise BackendError(
                        f"ffmpeg failed (exit {failed}) while {self.what}:\n{stderr_tail(self.stderr())}"
                    ) from exc
                return
            broken = not self._close_stdin()
            code = self.proc.wait()
            if code != 0 or broken:
                procs.check_stop()
                raise BackendError(f"ffmpeg failed (exit {code}) while {self.what}:\n{stderr_tail(self.stderr())}")
        finally:
            procs.forget(self.proc)
            self.output = self.stderr()
            self._err.close()

    def _close_stdin(self) -> bool:
        try:
            self.stdin.close()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False


def feed_ffmpeg(
    args: list[str], chunks: Iterable[bytes | memoryview], what: str, *, cwd: str | Path | None = None,
    stdout: IO[bytes] | None = None,
) -> str:
    """Run ffmpeg with ``args`` (reading ``pipe:`` as an input), writing ``chunks`` to its stdin;
    return its stderr. ``stdout``: where its standard output goes (default: discarded).

    When ffmpeg stops reading (it failed), writing stops and a :class:`BackendError` naming
    ``what`` is raised with the tail of stderr; an exception from ``chunks`` is raised after
    ffmpeg was stopped (see :class:`FFmpegWriter`).
    """
    writer = FFmpegWriter(args, what, cwd=cwd, stdout=stdout)
    with writer:
        for chunk in chunks:
            try:
                writer.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # leaving the block reports ffmpeg's failure
    return writer.output


def mp4_video_frames(path: str | Path) -> int | None:
    """The number of samples (frames) of the first video track of an MP4, read from its ``stsz``
    box, without running anything; None when ``path`` is not an MP4 with a video track."""
    import struct

    data = Path(path).read_bytes()

    def boxes(start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        while start + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, start)
            header = 8
            if size == 1 and start + 16 <= end:
                size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
            elif size == 0:
                size = end - start
            if size < header or start + size > end:
                return
            yield kind, start + header, start + size
            start += size

    def child(kind: bytes, start: int, end: int) -> tuple[int, int] | None:
        return next(((a, b) for k, a, b in boxes(start, end) if k == kind), None)

    moov = child(b"moov", 0, len(data))
    for kind, a, b in boxes(*moov) if moov else ():
        mdia = child(b"mdia", a, b) if kind == b"trak" else None
        hdlr = child(b"hdlr", *mdia) if mdia else None
        if not mdia or not hdlr or data[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        box: tuple[int, int] | None = mdia
        for name in (b"minf", b"stbl", b"stsz"):
            box = child(name, *box) if box else None
        if box and box[1] - box[0] >= 12:
            return int(struct.unpack_from(">I", data, box[0] + 8)[0])
    return None


def probe(path: str | Path) -> dict[str, Any]:
    """ffprobe's ``-show_format -show_streams`` JSON for ``path``.

    Without ffprobe, the same keys (``format.duration``, ``streams[].codec_type/codec_name/width/
    height/pix_fmt/r_frame_rate/sample_rate/channels``) are parsed from ``ffmpeg -i``.
    """
    path = Path(path)
    if not path.is_file():
        raise NovelcomicError(f"cannot probe {path}: no such file")
    exe = ffprobe_exe()
    if exe:
        cmd = [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
        try:
            proc = procs.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            raise BackendError(f"could not run ffprobe on {path}: {exc}") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace")
            raise BackendError(f"ffprobe failed on {path}:\n{stderr_tail(err)}")
        return json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    return _probe_with_ffmpeg(path)


def _probe_with_ffmpeg(path: Path) -> dict[str, Any]:
    proc = procs.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, stdin=subprocess.DEVNULL
    )
    text = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in text:
        raise BackendError(f"ffmpeg cannot read {path}:\n{stderr_tail(text)}")
    return parse_ffmpeg_info(text)


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_BITRATE_RE = re.compile(r"bitrate:\s*(\d+)\s*kb/s")
_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data): (.*)")


def parse_ffmpeg_info(text: str) -> dict[str, Any]:
    """Turn ``ffmpeg -i`` stderr into an ffprobe-like ``{"format": …, "streams": […]}``."""
    fmt: dict[str, Any] = {}
    m = _DURATION_RE.search(text)
    if m:
        h, mi, s = m.groups()
        fmt["duration"] = f"{int(h) * 3600 + int(mi) * 60 + float(s):.6f}"
    m = _BITRATE_RE.search(text)
    if m:
        fmt["bit_rate"] = str(int(m.group(1)) * 1000)
    streams = [_parse_stream(kind, rest) for kind, rest in _STREAM_RE.findall(text)]
    return {"format": fmt, "streams": streams}


def _parse_stream(kind: str, rest: str) -> dict[str, Any]:
    parts = _split_top_level(rest)
    stream: dict[str, Any] = {"codec_type": kind.lower(), "codec_name": parts[0].split()[0] if parts else ""}
    if kind == "Video":
        for p in parts[1:]:
            size = re.search(r"\b(\d{2,5})x(\d{2,5})\b", p)
            if size and "width" not in stream:
                stream["width"], stream["height"] = int(size.group(1)), int(size.group(2))
            fps = re.search(r"([\d.]+) fps", p)
            if fps:
                stream["r_frame_rate"] = _rate_fraction(fps.group(1))
        if len(parts) > 1:
            stream["pix_fmt"] = parts[1].split("(")[0].strip()
    elif kind == "Audio":
        for p in parts[1:]:
            hz = re.search(r"(\d+) Hz", p)
            if hz:
                stream["sample_rate"] = hz.group(1)
            elif p.strip() in ("mono", "stereo"):
                stream["channels"] = 1 if p.strip() == "mono" else 2
    return stream


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _rate_fraction(value: str) -> str:
    f = float(value)
    return f"{int(f)}/1" if f.is_integer() else f"{round(f * 1001)}/1001"


def media_duration(path: str | Path) -> float:
    """Duration of a media file in seconds (the container's, else the longest stream's)."""
    info = probe(path)
    dur = info.get("format", {}).get("duration")
    if dur not in (None, "N/A"):
        return float(dur)
    durations = [float(s["duration"]) for s in info.get("streams", []) if s.get("duration") not in (None, "N/A")]
    if not durations:
        raise BackendError(f"cannot tell the duration of {path}")
    return max(durations)


def stream_of(info: dict[str, Any], codec_type: str) -> dict[str, Any] | None:
    """The first stream of ``codec_type`` ("video", "audio") in a :func:`probe` result."""
    for s in info.get("streams", []):
        if s.get("codec_type") == codec_type:
            return s
    return None


def escape_filter_value(value: str) -> str:
    """Escape ``value`` for use as a filter option inside a filtergraph string.

    Two levels: the option parser (``\\ ' :``) then the graph parser (``\\ ' [ ] , ;``).
    """
    level1 = "".join("\\" + c if c in "\\':" else c for c in value)
    return "".join("\\" + c if c in "\\'[],;" else c for c in level1)


@functools.lru_cache(maxsize=16)
def _encoder_works(exe: str, name: str) -> bool:
    try:
        listed = procs.run([exe, "-hide_banner", "-encoders"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    if not re.search(rf"^\s*V\S*\s+{re.escape(name)}\s", listed.stdout.decode("utf-8", "replace"), re.M):
        return False
    trial = [exe, "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=256x256:r=30",
             "-frames:v", "1", "-c:v", name, "-f", "null", "-"]
    try:
        proc = procs.run(trial, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def encoder_works(name: str) -> bool:
    """Whether ffmpeg lists the video encoder ``name`` *and* a one-frame trial encode with it
    succeeds (a build may list ``h264_nvenc`` on a machine without an NVIDIA GPU). Cached per binary."""
    return _encoder_works(ffmpeg_exe(), name)
