"""The animate stage: short image-to-video clips for some shots, between voice and compose.

- :mod:`novelcomic.animate.base`: the request/result dataclasses, the declared capabilities and
  the frame-count rules of each model family;
- :mod:`novelcomic.animate.select`: which shots of a chapter are animated (``animate.shots``,
  ``motion: i2v|still``, the budget);
- :mod:`novelcomic.animate.stage`: one shot's clip, cached by its inputs like a shot image, with
  the still's camera move as the fallback when a clip is blocked or fails;
- :mod:`novelcomic.animate.video`: writing and reading clips (MP4 at the model's native fps) and
  the lettering layer laid over them;
- ``backends/``: ``diffusers`` (Wan2.2 TI2V / Wan2.1 I2V, LTX, SVD) and ``comfyui``.

Nothing here imports torch or diffusers at import time.
"""
