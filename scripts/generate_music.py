#!/usr/bin/env python3
"""Write every generated background-music loop as a WAV file.

    python scripts/generate_music.py OUT_DIR [--rate 44100]

novelcomic renders these loops itself when it needs them (into the project's cache); this script
is for users who want the files, e.g. to edit them and point ``music.tracks`` in project.yaml at
their versions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout too


def main(argv: list[str] | None = None) -> int:
    """Render all moods into OUT_DIR and print each file with its length."""
    from novelcomic.audio import wav_duration
    from novelcomic.music import MOODS, ensure_loop

    parser = argparse.ArgumentParser(description="Write novelcomic's generated background-music loops as WAV files.")
    parser.add_argument("out_dir", type=Path, help="folder to write <mood>.wav files into")
    parser.add_argument("--rate", type=int, default=44100, help="sample rate in Hz (default 44100)")
    args = parser.parse_args(argv)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    cache = args.out_dir / ".cache"
    for mood in MOODS:
        loop = ensure_loop(mood, cache, args.rate)
        target = args.out_dir / f"{mood}.wav"
        loop.replace(target)
        target.chmod(0o644)  # the cache is written private (mkstemp); these files are for sharing
        print(f"{target}  {wav_duration(target):.1f} s")
    cache.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
