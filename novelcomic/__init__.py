"""novelcomic: turn a novel into narrated comic videos (小说漫), one per chapter.

Importing this package is cheap on purpose: torch, diffusers, transformers and prefect are
imported lazily by the backends and flows that need them.
"""

__version__ = "0.1.0"

from novelcomic.errors import NovelcomicError

__all__ = ["NovelcomicError", "__version__"]
