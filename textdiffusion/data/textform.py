"""The written form of a model's training text, and the round trip of typed text through it.

Some corpora are normalised: the Yelp sentences of Shen et al. (2017) are lower-cased and tokenised in the Penn
Treebank way ("i do n't like it .", numbers written `_num_`), the modern side of the Shakespeare pairs has its final
punctuation split off ("Madam , he's well ."). A model trained on such lines has never seen "I don't like it!" and
rewrites it badly. `normalise` brings typed text to the training form and returns a `Restore` that `restore` uses to
bring the model's output back: kept words come back exactly as typed (casing, spacing, numbers, quotes), new words
are cased and spaced by the rules below.

Restoring, token by token, after aligning the model's output with the normalised input (`difflib`, longest matching
blocks):

- a kept token comes back as it was typed, with the whitespace that was before it (a token that was typed
  joined to a word that is gone is spaced as a new one);
- a new token is spaced by the Treebank rules read backwards ("do n't" -> "don't", "great ." -> "great.", `` x ''
  -> "x"); "cannot", "gonna", "gotta" and "wanna" are joined again;
- casing (lower-cased forms only, and only when the input had capitals at all: an all-lower-case input stays lower
  case): a new word the input wrote with its own casing ("Pizza Hut", "NYC") takes that casing, "i" is "I", and the
  first word of each sentence is capitalised; a kept word that moved to or from a sentence start is re-cased;
- a new number placeholder takes the input's numbers that were not kept, in order, then the last one; with no
  number in the input at all, it is written "some" (the one guess restore makes);
- punctuation is the model's: if it turns "great !" into "terrible .", the output ends in "terrible." (the model
  chose the full stop). The one exception: a final "." that `normalise` added to an input without final
  punctuation (forms with `final_stop`) is removed again when the model keeps it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from textdiffusion.config.base import ConfigError

TOKENIZATIONS = ("none", "punct", "ptb")
"""none: words as typed; punct: final punctuation split off words ("well ." , "madam ,"), contractions and quotes
kept (the Shakespeare pairs); ptb: Penn Treebank tokens as NLTK's word_tokenize writes them (the Yelp sentences):
punctuation, brackets and `$ % & # @ ; : ,` split off, quotes as `` and '', contractions split ("do n't", "it 's",
"ca n't", "can not", "gon na")."""

NUMBER_PLACEHOLDERS = ("_num_", "<num>")
"""Placeholders that corpora write for numbers (Yelp: `_num_`), the ones `detect_form` looks for."""


@dataclasses.dataclass(frozen=True)
class TextForm:
    """How a model's training text is written.

    Args:
        lower: the text is lower-cased.
        tokenized: "none", "punct" or "ptb" (`TOKENIZATIONS`).
        numbers: the placeholder written for every number ("_num_"); None: numbers are written as they are.
        final_stop: (tokenised forms) nearly every line ends in separated . ! or ?; an input without one gets " ."
            on the way in, removed on the way out.
    """

    lower: bool = False
    tokenized: Literal["none", "punct", "ptb"] = "none"
    numbers: str | None = None
    final_stop: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.lower, bool):
            raise ConfigError(f"text_form.lower must be true or false, got {self.lower!r}")
        if self.tokenized not in TOKENIZATIONS:
            raise ConfigError(
                f"text_form.tokenized must be one of {list(TOKENIZATIONS)}, got {self.tokenized!r}"
            )
        if self.numbers is not None and (
            not isinstance(self.numbers, str)
            or not self.numbers
            or any(c.isspace() for c in self.numbers)
        ):
            raise ConfigError(
                f"text_form.numbers must be a placeholder word (e.g. '_num_') or null, got {self.numbers!r}"
            )
        if not isinstance(self.final_stop, bool):
            raise ConfigError(
                f"text_form.final_stop must be true or false, got {self.final_stop!r}"
            )
        if self.final_stop and self.tokenized == "none":
            raise ConfigError(
                "text_form.final_stop needs a tokenised form (tokenized 'punct' or 'ptb')"
            )

    @property
    def identity(self) -> bool:
        """Text is used as it is typed: normalise and restore change nothing."""
        return (
            not self.lower
            and self.tokenized == "none"
            and self.numbers is None
            and not self.final_stop
        )

    def to_dict(self) -> dict[str, Any]:
        """The config.json entry (`read_form` reads it back)."""
        return dataclasses.asdict(self)


def read_form(config: Mapping[str, Any], *, where: str = "config.json") -> TextForm | None:
    """The `text_form` entry of a config.json dict as a TextForm; None where it is absent or null (the model's
    text is used as typed). An entry with unknown keys or bad values is an error naming `where`."""
    entry = config.get("text_form")
    if entry is None:
        return None
    if isinstance(entry, TextForm):
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: text_form must be an object, got {type(entry).__name__}")
    known = {f.name for f in dataclasses.fields(TextForm)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} in text_form; known keys: {sorted(known)}"
        )
    try:
        return TextForm(**entry)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Token:
    """One token of the input: as the model sees it and as it was typed."""

    model: str
    surface: str
    """As typed ("" for the "." that normalise added)."""
    before: str
    """The whitespace typed before it ("" where it was split off a word)."""
    start: bool
    """It begins a sentence (the first word, or the first after . ! ?)."""
    own_case: bool
    """Its capitals belong to the word (a name, an acronym, "I"), not to its place at a sentence start."""


@dataclasses.dataclass(frozen=True)
class Restore:
    """What `restore` needs to bring a model output back to the input's written form."""

    form: TextForm
    tokens: tuple[Token, ...]
    head: str = ""
    """Whitespace before the text."""
    tail: str = ""
    """Whitespace after the text."""
    cased: bool = False
    """The input had capital letters (an all-lower-case input is restored in lower case)."""
    casing: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Lower-cased word -> the casing the input gave it where that casing is the word's own."""
    numbers: tuple[str, ...] = ()
    """The input's numbers (the placeholders' surfaces), in order."""


# --- tokenising -----------------------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_QUOTES = '"\u201c\u201d\u201e\u00ab\u00bb'
_PTB_SPLIT = re.compile(
    r"``|''|\.{2,}|\u2026|--+|\u2014|[!?]+|[;@#$%&]|[,:](?!\d)|[()\[\]{}<>]"
    rf"|[{_QUOTES}]|(?:(?![{_QUOTES}\u2026\u2014\u2018\u2019\u02bc])[^\x00-\x7f\w])+"
)
"""The pieces a Treebank tokenizer splits off wherever they are (a "," or ":" before a digit is part of a number:
"1,000", "6:00"), and runs of symbols the corpus never had (emoji: "great😀" -> "great 😀")."""
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*")
_CONTRACTION = re.compile(r"(?<=[^'\s])'(?:s|m|d|ll|re|ve)$")
_JOINED = {"cannot": 3, "gonna": 3, "gotta": 3, "wanna": 3}
"""Words the Treebank tokenizer cuts in two (can not, gon na, got ta, wan na), at this character."""
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc prof inc ltd co mt ave approx dept est fig gov sgt capt col gen lt".split()
)
_INITIALS = re.compile(r"[a-z](?:\.[a-z])*")
"""Initials and dotted abbreviations ("j", "u.s", "a.m", "e.g"): their final "." stays mid-sentence."""
_STOPS = frozenset(".!?")
_OPEN_QUOTES = "\u201c\u201e\u00ab"
_CLOSE_QUOTES = "\u201d\u00bb"


def _pieces_ptb(chunk: str, *, last: bool, quote_open: bool) -> tuple[list[tuple[str, str]], bool]:
    """A whitespace-free chunk in Treebank pieces, each (surface, model form before casing and numbers); `last`: no
    word follows the chunk on the line. Returns the pieces and whether a straight double quote is open after it."""
    parts: list[tuple[str, str, bool]] = []  # (surface, model, is a word)
    position = 0
    for match in _PTB_SPLIT.finditer(chunk):
        if match.start() > position:
            parts.append((chunk[position : match.start()], "", True))
        piece = match.group()
        if piece == '"':
            # opening at the start of a word or standing alone when no quote is open; closing otherwise
            opening = (match.start() == 0 and match.end() < len(chunk)) or (
                len(chunk) == 1 and not quote_open
            )
            model = "``" if opening else "''"
            quote_open = opening
        elif piece in _OPEN_QUOTES:
            model = "``"
        elif piece in _CLOSE_QUOTES:
            model = "''"
        elif piece == "\u2026" or piece.startswith(".."):
            model = "..."
        elif piece.startswith("--") or piece == "\u2014":
            model = "--"
        elif piece[0] in "!?":
            model = piece[
                0
            ]  # "!!!" and "?!" are one token ("!" / "?"): runs never occur in the Yelp data
        else:
            model = piece
        parts.append((piece, model, False))
        position = match.end()
    if position < len(chunk):
        parts.append((chunk[position:], "", True))
    words = [i for i, (_, _, is_word) in enumerate(parts) if is_word]
    out: list[tuple[str, str]] = []
    for i, (surface, model, is_word) in enumerate(parts):
        if not is_word:
            out.append((surface, model))
            continue
        out += _split_word(surface, final=last and i == words[-1])
    return out, quote_open


def _split_word(word: str, *, final: bool) -> list[tuple[str, str]]:
    """A word without split-off punctuation, its final period and contraction split off (Treebank rules)."""
    tail: list[tuple[str, str]] = []
    plain = word.translate(_APOSTROPHES)
    if len(plain) > 2 and plain[-1] == "'" and plain[-2] in ".!?,;:":
        # a closing single quote after punctuation ("'Company.'"): the quote, then the word as if it ended there
        return _split_word(word[:-1], final=final) + [(word[-1], "'")]
    if len(word) > 1 and word.endswith("."):
        stem = plain[:-1].lower().lstrip("'")
        if final or not (stem in _ABBREVIATIONS or _INITIALS.fullmatch(stem)):
            tail, word, plain = [(".", ".")], word[:-1], plain[:-1]
    lower = plain.lower()
    cut = None
    if lower in _JOINED:
        cut = _JOINED[lower]
    elif lower.endswith("n't") and len(lower) > 3:
        cut = len(lower) - 3
    else:
        match = _CONTRACTION.search(lower)
        if match:
            cut = match.start()
        elif len(lower) > 1 and lower.endswith("'") and lower[-2] != "'":
            cut = len(lower) - 1  # a closing quote or a plural possessive ("friends '")
    if cut is None:
        return [(word, plain)] + tail
    return [(word[:cut], plain[:cut]), (word[cut:], plain[cut:])] + tail


def _pieces_punct(chunk: str) -> list[tuple[str, str]]:
    """A chunk with its final punctuation (one of . , ! ? ; :, or an ellipsis) split off, as in the modern side of
    the Shakespeare pairs ("well ." / "Madam ,"); quotes and contractions stay."""
    match = re.search(r"(\.{2,}|\u2026|[.,!?;:])$", chunk)
    if not match or match.start() == 0:
        return [(chunk, chunk)]
    return [(chunk[: match.start()], chunk[: match.start()]), (match.group(), match.group())]


def _is_word(model: str) -> bool:
    return any(c.isalnum() for c in model)


def _ends_sentence(model: str, form: TextForm) -> bool:
    if model in _STOPS:
        return True
    if form.tokenized == "none" and len(model) > 1 and model[-1] in _STOPS:
        return not (model[-1] == "." and model[:-1].lower().rstrip(".") in _ABBREVIATIONS)
    return False


def _tokens(text: str, form: TextForm) -> tuple[list[Token], str, str]:
    """`text` as Tokens (model forms cased and numbered as `form` writes them) and its leading and trailing
    whitespace."""
    chunks = [(m.group(), m.start()) for m in re.finditer(r"\S+", text)]
    if not chunks:
        return [], text, ""
    head = text[: chunks[0][1]]
    tail = text[chunks[-1][1] + len(chunks[-1][0]) :]
    raw: list[tuple[str, str, str]] = []  # (surface, model, whitespace before)
    quote_open = False
    end = chunks[0][1]
    for n, (chunk, offset) in enumerate(chunks):
        before = text[end:offset]
        end = offset + len(chunk)
        if form.tokenized == "ptb":
            pieces, quote_open = _pieces_ptb(
                chunk, last=n == len(chunks) - 1, quote_open=quote_open
            )
        elif form.tokenized == "punct":
            pieces = _pieces_punct(chunk)
        else:
            pieces = [(chunk, chunk)]
        for i, (surface, model) in enumerate(pieces):
            raw.append((surface, model, before if i == 0 else ""))
    tokens = []
    expect_start = True
    for surface, model, before in raw:
        if form.numbers is not None and _NUMBER.fullmatch(model):
            model = form.numbers
        if form.lower:
            model = model.lower()
        start = False
        if _is_word(model):
            start, expect_start = expect_start, _ends_sentence(model, form)
        elif _ends_sentence(model, form):
            expect_start = True
        tokens.append(Token(model, surface, before, start, False))
    return tokens, head, tail


def _own_case(tokens: list[Token]) -> list[bool]:
    """Whether each token's capitals are its own: any capitalised word not at a sentence start, and, at a start,
    acronyms ("NYC") and the first word of a run of capitalised words ("Pizza Hut")."""
    words = [i for i, t in enumerate(tokens) if _is_word(t.surface)]
    flags = [False] * len(tokens)
    for n, i in enumerate(words):
        surface = tokens[i].surface
        if surface == surface.lower():
            continue
        if not tokens[i].start:
            flags[i] = True
            continue
        letters = [c for c in surface if c.isalpha()]
        acronym = len(letters) > 1 and all(c.isupper() for c in letters)
        following = tokens[words[n + 1]].surface if n + 1 < len(words) else ""
        name_run = following[:1].isupper() and not tokens[words[n + 1]].start
        flags[i] = acronym or name_run or surface == "I"
    return flags


# --- the round trip -------------------------------------------------------------------------------------------


def normalise(text: str, form: TextForm) -> tuple[str, Restore]:
    """`text` (one line, as typed) in the training form `form`, and what `restore` needs to bring an output back.

    Returns:
        The model's text (tokens joined by single spaces) and a Restore. An identity form returns `text` itself.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalise needs a string, got {type(text).__name__}")
    if form.identity:
        return text, Restore(form=form, tokens=())
    tokens, head, tail = _tokens(text, form)
    flags = _own_case(tokens)
    tokens = [dataclasses.replace(t, own_case=f) for t, f in zip(tokens, flags)]
    if form.final_stop and tokens and not _ends_sentence(tokens[-1].model, form):
        # the form's lines end in . ! or ?: add one that restore takes away again
        last_word = tokens[-1].model
        if not (last_word in ("''", ")", "'") and len(tokens) > 1 and tokens[-2].model in _STOPS):
            tokens.append(Token(".", "", "", False, False))
    seen: dict[str, Counter] = {}
    for token in tokens:
        if _is_word(token.surface) and not token.start:
            seen.setdefault(token.surface.lower(), Counter())[token.surface] += 1
    casing = {}
    for token in tokens:
        if token.own_case and token.surface != token.surface.lower():
            lower = token.surface.lower()
            # the casing the input used most for the word away from sentence starts (an acronym or name run at the
            # start counts when the word appears nowhere else)
            counts = seen.get(lower) or Counter({token.surface: 1})
            best = counts.most_common(1)[0][0]
            if best != lower:
                casing[token.model] = best
    numbers = tuple(
        t.surface for t in tokens if form.numbers is not None and t.model == form.numbers
    )
    restore_info = Restore(
        form=form,
        tokens=tuple(tokens),
        head=head,
        tail=tail,
        cased=any(c.isupper() for c in text),
        casing=casing,
        numbers=numbers,
    )
    return " ".join(t.model for t in tokens), restore_info


_ATTACH_LEFT = frozenset(". , ! ? ; : ... % ) ] } > '' ' n't 's 'm 'd 'll 're 've".split())
"""New tokens written without a space before them."""
_ATTACH_RIGHT = frozenset("`` ` ( [ { < $ #".split())
"""New tokens written without a space after them."""
_PAIRS = frozenset({("can", "not"), ("gon", "na"), ("wan", "na"), ("got", "ta")})
_SURFACES = {"``": '"', "''": '"', "`": "'"}


def _capitalise(word: str) -> str:
    for i, c in enumerate(word):
        if c.isalpha():
            return word[:i] + c.upper() + word[i + 1 :]
    return word


def restore(model_output: str, info: Restore) -> str:
    """A model's output (in the training form) written the way the input of `normalise` was: see the module
    docstring for the rules."""
    if not isinstance(model_output, str):
        raise TypeError(f"restore needs a string, got {type(model_output).__name__}")
    form = info.form
    if form.identity:
        return model_output
    # the output read with the same tokenizer: a stray "great." is aligned as "great ."
    output = [t.model for t in _tokens(model_output, form)[0]]
    source = list(info.tokens)
    matcher = difflib.SequenceMatcher(None, [t.model for t in source], output, autojunk=False)
    emitted: list[tuple[str, Token | None, int | None]] = []  # (model, input token, its index)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            emitted += [(output[j], source[i], i) for i, j in zip(range(i1, i2), range(j1, j2))]
        else:
            emitted += [(output[j], None, None) for j in range(j1, j2)]
    kept_numbers = {
        i for _, token, i in emitted if token is not None and token.model == form.numbers
    }
    spare = [
        t.surface for i, t in enumerate(source) if t.model == form.numbers and i not in kept_numbers
    ]
    fallback = info.numbers[-1] if info.numbers else "some"
    pieces: list[str] = []
    expect_start, previous_model, previous_index = True, None, None
    for model, token, index in emitted:
        start = False
        if _is_word(model):
            start, expect_start = expect_start, _ends_sentence(model, form)
        elif _ends_sentence(model, form):
            expect_start = True
        if token is not None:
            text = token.surface
            if form.lower and info.cased and not token.own_case and start != token.start:
                text = _capitalise(text.lower()) if start else text.lower()
        else:
            if form.numbers is not None and model == form.numbers:
                text = spare.pop(0) if spare else fallback
            else:
                text = info.casing.get(model) or _SURFACES.get(model, model)
            if form.lower and info.cased:
                if text == "i":
                    text = "I"
                if start:
                    text = _capitalise(text)
        if token is not None and (
            (previous_index is not None and index == previous_index + 1) or token.before
        ):
            space = token.before  # its own neighbour, or typed apart from what came before it
        elif previous_model is None:
            space = ""
        elif form.tokenized == "none":
            space = " "
        elif (
            model.lower() in _ATTACH_LEFT
            or previous_model in _ATTACH_RIGHT
            or (previous_model.lower(), model.lower()) in _PAIRS
        ):
            space = ""
        else:
            space = " "
        if text:  # (empty: the "." that normalise added, kept by the model)
            pieces.append(space + text)
        previous_model, previous_index = model, index
    return info.head + "".join(pieces).lstrip() + info.tail


# --- telling the form of a corpus -----------------------------------------------------------------------------

_SPLIT_CONTRACTION = re.compile(r"(?:^|\s)(?:n't|'s|'m|'re|'ve|'ll|'d)(?=\s|$)", re.IGNORECASE)
_JOINED_CONTRACTION = re.compile(r"[a-z](?:n't|'s|'m|'re|'ve|'ll|'d)\b", re.IGNORECASE)
_SPLIT_PUNCT = re.compile(r"\S\s[.,!?;:](?:\s|$)")
_JOINED_PUNCT = re.compile(r"[a-z0-9][.,!?;:](?:\s|$)", re.IGNORECASE)
_FINAL_STOP = re.compile(r"\s[.!?]\s*$")


def detect_form(lines: Iterable[str], *, lower_share: float = 0.02) -> TextForm:
    """The form of a training corpus, read from its lines: lower-cased if at most `lower_share` of the lines hold a
    capital letter; tokenised if punctuation stands apart more often than it is attached (Treebank if contractions
    are split more often than not, "punct" if they are joined); numbers written as a placeholder of
    `NUMBER_PLACEHOLDERS` if it occurs more often than numbers do; a final stop if 90% of the lines end in a
    separated . ! or ?."""
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        raise ValueError("detect_form needs at least one non-empty line")
    capitals = sum(any(c.isupper() for c in line) for line in lines)
    split_punct = sum(len(_SPLIT_PUNCT.findall(line)) for line in lines)
    joined_punct = sum(len(_JOINED_PUNCT.findall(line)) for line in lines)
    split_contractions = sum(len(_SPLIT_CONTRACTION.findall(line)) for line in lines)
    joined_contractions = sum(len(_JOINED_CONTRACTION.findall(line)) for line in lines)
    tokenized = "none"
    if split_punct > joined_punct:
        tokenized = "ptb" if split_contractions >= joined_contractions else "punct"
    words = Counter(word for line in lines for word in line.split())
    numbers = sum(n for word, n in words.items() if _NUMBER.fullmatch(word))
    placeholder = max(NUMBER_PLACEHOLDERS, key=lambda p: words[p])
    final = sum(bool(_FINAL_STOP.search(line)) for line in lines)
    return TextForm(
        lower=capitals <= lower_share * len(lines),
        tokenized=tokenized,
        numbers=placeholder if words[placeholder] > numbers else None,
        final_stop=tokenized != "none" and final >= 0.9 * len(lines),
    )


def recorded_form(lines: Iterable[str], *also: Iterable[str]) -> dict[str, Any] | None:
    """The config.json `text_form` entry of a model trained on `lines` (and the `also` corpora, e.g. the targets of
    aligned pairs): their detected form when every corpus has the same one; None when the text is used as typed, or
    when the corpora differ (inputs and outputs are then left as they are)."""
    forms = set()
    for corpus in (lines, *also):
        corpus = [line for line in corpus if line.strip()]
        if not corpus:
            return None
        forms.add(detect_form(corpus))
    if len(forms) != 1:
        return None
    (form,) = forms
    return None if form.identity else form.to_dict()
