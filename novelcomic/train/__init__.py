"""Training a character's own LoRA from its sheet(s) and reference images (``novelcomic train-character``).

- :mod:`novelcomic.train.dataset`: the training views (crops and flips of the sheets) and the caption
  (the trigger token + the character's appearance).
- :mod:`novelcomic.train.lora`: the DreamBooth-LoRA loop (diffusers UNet + peft), resumable from
  checkpoints under ``.novelcomic/train/<character>/``.
- :mod:`novelcomic.train.usage`: how a trained LoRA reaches rendering: its content digest in the
  shot hash, its trigger words in the prompt.
- :mod:`novelcomic.train.characters_yaml`: pointing the character at its LoRA in characters.yaml
  without touching anything else in the user's file.

Importing this package imports neither torch nor diffusers.
"""
