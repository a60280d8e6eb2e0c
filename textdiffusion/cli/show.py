"""Watching the reverse process: a live view of the texts as the sampler reveals them."""

from __future__ import annotations

from textdiffusion.data.tokenizers import MASK_CHAR


class RefinementView:
    """A sampler callback that redraws the texts after every step (rich Live on a terminal, snapshots otherwise)."""

    def __init__(self, tokenizer, *, enabled: bool = True, snapshots: int = 6) -> None:
        self.tokenizer, self.enabled, self.snapshots = tokenizer, enabled, snapshots
        self.live = None
        self.console = None
        self._next = 1.0 - 1.0 / snapshots
        self._previous, self._changed = None, 0

    def __enter__(self) -> RefinementView:
        if self.enabled:
            from rich.console import Console

            self.console = Console(stderr=True)
            if self.console.is_terminal:
                from rich.live import Live

                self.live = Live(console=self.console, refresh_per_second=30, transient=False)
                self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()

    def render(self, step: int, t: float, xt) -> str:
        texts = [self.tokenizer.decode_with_masks(row.tolist(), mask_char=MASK_CHAR) for row in xt]
        masked = int((xt == self.tokenizer.mask_id).sum())
        header = (
            f"step {step + 1}  t={t:.3f}  masked {masked}/{xt.numel()}  changed {self._changed}"
        )
        return header + "\n" + "\n".join(f"[{i}] {text}" for i, text in enumerate(texts))

    def callback(self, step: int, t: float, xt, logits) -> None:
        if not self.enabled:
            return
        # tokens changed by this step: the revealed ones (masked diffusion), or any (uniform noise)
        self._changed = xt.numel() if self._previous is None else int((xt != self._previous).sum())
        self._previous = xt.clone()
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(self.render(step, t, xt)))
            return
        # not a terminal: a snapshot each time t crosses k / snapshots, and the final state
        if t <= self._next or t == 0.0:
            self.console.print(self.render(step, t, xt), markup=False, highlight=False)
            while self._next >= t and self._next > 0:
                self._next -= 1.0 / self.snapshots
