"""Checkpoints trained by this project and shipped with the package; `load_pretrained(NAME)` finds them by name.

See README.md in this folder for what each one is, how it was trained and how it scores.
"""
