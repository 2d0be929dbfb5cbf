"""Finding a font that can draw Chinese. ``fc-match sans-serif:lang=zh`` returns a Latin font on
many machines, so we look for known CJK families explicitly."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from novelcomic.errors import NovelcomicError

# Families that cover CJK, best first, and files where Debian/Ubuntu/macOS put them.
CJK_FAMILIES = [
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Droid Sans Fallback",
    "WenQuanYi Zen Hei",
    "PingFang SC",
    "Microsoft YaHei",
]
CJK_FILES = [
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
]




class FontInfo:
    """A font file and the family name libass should ask fontconfig for."""

    def __init__(self, path: Path, family: str) -> None:
        self.path = path
        self.family = family

    def __repr__(self) -> str:  # pragma: no cover
        return f"FontInfo({str(self.path)!r}, {self.family!r})"


@functools.lru_cache(maxsize=8)
def find_cjk_font(preferred: str | None = None) -> FontInfo:
    """A CJK-capable font: ``preferred`` (a family or a file path) if given, else the first found.

    Raises :class:`NovelcomicError` with the install hint when there is none.
    """
    if preferred:
        p = Path(os.path.expanduser(preferred))
        if p.is_file():
            return FontInfo(p, _family_of(p) or p.stem)
        found = _fc_match(preferred)
        if found:
            return found
        raise NovelcomicError(f"font {preferred!r} not found", field="subtitles.font")
    for family in CJK_FAMILIES:
        found = _fc_match(family)
        if found:
            return found
    for f in CJK_FILES:
        p = Path(f)
        if p.is_file():
            return FontInfo(p, _family_of(p) or p.stem)
    raise NovelcomicError(
        "no CJK font found: install one (Debian: apt-get install fonts-wqy-microhei) or set subtitles.font in project.yaml"
    )


def _fc_match(family: str) -> FontInfo | None:
    if not shutil.which("fc-match"):
        return None
    try:
        from novelcomic import procs

        out = procs.run(
            ["fc-match", "-f", "%{file}\n%{family[0]}", family], capture_output=True, timeout=10
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.splitlines()
    if len(lines) < 2 or not Path(lines[0]).is_file():
        return None
    if family.lower() not in out.lower():  # fontconfig substituted another family
        return None
    return FontInfo(Path(lines[0]), lines[1])


def _family_of(path: Path) -> str | None:
    try:
        from PIL import ImageFont

        return ImageFont.truetype(str(path), 12).getname()[0]
    except Exception:  # noqa: BLE001 - unreadable font: fall back to the file name
        return None


def pil_font(size: int, preferred: str | None = None):  # type: ignore[no-untyped-def]
    """A Pillow font of ``size`` pixels that can draw Chinese."""
    from PIL import ImageFont

    return ImageFont.truetype(str(find_cjk_font(preferred).path), size)
