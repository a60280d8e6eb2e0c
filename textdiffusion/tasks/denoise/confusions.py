"""Hand-written tables of realistic English errors, used by `textdiffusion.tasks.denoise.corruption`.

Written from general knowledge of English spelling and of common learner errors (no word is taken from an
evaluation set). Everything here is lowercase ASCII; the corruptor restores the case pattern of the word it edits.
"""

from __future__ import annotations

import functools

# --- typing slips ---------------------------------------------------------------------------------------------

QWERTY_NEIGHBORS: dict[str, str] = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj",
    "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedzx", "d": "serfxc", "f": "drtgcv",
    "g": "ftyhvb", "h": "gyujbn", "j": "huiknm", "k": "jiolm", "l": "kop", "z": "asx", "x": "zsdc",
    "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}  # fmt: skip
"""Letters next to each letter on a QWERTY keyboard (same row and the rows above and below)."""

VOWELS = "aeiou"

# --- phonetic spellings: (pattern, replacements); "^" anchors at the start of the word, "$" at its end -----------

PHONETIC_RULES: list[tuple[str, str]] = [
    # one consonant sound, several spellings
    ("ph", "f"), ("f", "ph ff"), ("ck", "k c"), ("k", "c ck"), ("ce", "se"), ("ci", "si"), ("cy", "sy"),
    ("ca", "ka"), ("co", "ko"), ("cu", "ku"), ("ct", "kt"), ("cc", "c k x ks"), ("se", "ce ze"),
    ("si", "ci"), ("ss", "s c"), ("qu", "kw qw"), ("que$", "k ck"), ("ch", "tch sh"),
    ("tch", "ch"), ("dge", "ge j"), ("ge$", "dge j"), ("gi", "ji"), ("ge", "je"), ("th", "f d"),
    ("tion", "sion shun cion shon chon"), ("sion", "tion shun"), ("ssion", "sion tion shun"),
    ("cian", "tion sion shun"), ("tial", "cial shal"), ("cial", "tial shal"), ("cious", "tious shus"),
    ("tious", "cious shus"), ("ture", "cher chure tur"), ("sure", "shur zure"), ("ize$", "ise"),
    ("ise", "ize"), ("z", "s"), ("sy", "cy"), ("cs", "x"), ("tia", "cia sha"),
    ("x", "ks cks cs"), ("y", "i ie"), ("our", "or"),
    # silent or swallowed letters
    ("wh", "w"), ("^w", "wh"), ("^kn", "n"), ("^wr", "r"), ("^ps", "s"), ("gn", "n"), ("mb$", "m"),
    ("bt", "t"), ("rh", "r"), ("stle", "sle"), ("sc", "s sk"), ("ght", "t te"), ("igh", "i ie y"),
    ("ough", "off uff ow o oo aw"), ("augh", "orf arf aff aw"), ("gh", "g"), ("ould", "ood"),
    ("e$", ""), ("ue$", "u"), ("p$", "pe"), ("t$", "te"), ("d$", "de"), ("n$", "ne"), ("m$", "me"),
    ("l$", "le"), ("k$", "ke"), ("mn$", "m"), ("lk", "k"), ("nd", "n"), ("nt", "n"), ("pt", "t"),
    # vowel digraphs and their sound-alikes
    ("ea", "ee e ae"), ("ee", "ea e ie"), ("ie", "ei ee y"), ("ei", "ie ai ee"), ("ai", "ay a ae"),
    ("ay", "ai ey a"), ("au", "aw o or"), ("aw", "au or"), ("oo", "u ou o"), ("ou", "ow oo o u"),
    ("ow", "ou o oa"), ("oa", "o oe ow"), ("ue", "oo u ew"), ("ew", "ue oo u"), ("ui", "oo u"),
    ("oi", "oy"), ("oy", "oi"), ("ar", "a er"), ("or", "aw er"), ("ir", "er ur"), ("ur", "er ir u"),
    ("er", "ur ir a"),
    # endings
    ("y$", "ey ie i ee"), ("ey$", "y ie"), ("ie$", "y ey"), ("ly$", "ley le li lie"), ("ful$", "full fol"),
    ("able$", "ible abel"), ("ible$", "able"), ("ance", "ence ense"), ("ence", "ance ense ents"),
    ("ant", "ent"), ("ent", "ant"), ("ally$", "ly ley aly"), ("eable", "ible able"),
    ("ing$", "eing"), ("er$", "a ar or ur"), ("or$", "er"), ("ar$", "er"),
    ("le$", "el al ul"), ("el$", "le"), ("al$", "le el ul"), ("ous$", "us ius es"), ("ious$", "ous us"),
    ("ed$", "d t"), ("ied$", "yed"), ("ies$", "ys eys"), ("es$", "s"), ("ary$", "ery ry"),
    ("ery$", "ary"), ("ity$", "aty ety"), ("ment$", "mant mint"), ("ness$", "nes"), ("ate$", "it et"),
]  # fmt: skip
"""Sound-alike spellings that poor spellers and children produce (ph↔f, ie↔ei, c↔s/k, tion↔sion, …)."""

# --- punctuation ---------------------------------------------------------------------------------------------------

PUNCTUATION_SLIPS: dict[str, tuple[str, ...]] = {
    ".": ("", "", ",", " ."), ",": ("", "", ".", " ,"), ";": (",", ".", ""), ":": (";", ",", ""),
    "!": (".", ""), "?": (".", ""), '"': ("",), "'": ("",), "’": ("",), "-": ("", " "),
}  # fmt: skip
"""Punctuation mark -> what a writer puts instead ("" drops it)."""

# --- real-word confusions ---------------------------------------------------------------------------------------

REAL_WORD_SETS: list[tuple[str, ...]] = [
    ("their", "there", "they're"), ("then", "than"), ("your", "you're"), ("its", "it's"),
    ("to", "too", "two"), ("affect", "effect"), ("lose", "loose"), ("were", "where", "we're"),
    ("whose", "who's"), ("accept", "except"), ("quiet", "quite"), ("weather", "whether"),
    ("hear", "here"), ("know", "no", "now"), ("new", "knew"), ("write", "right"), ("piece", "peace"),
    ("break", "brake"), ("buy", "by", "bye"), ("of", "off"), ("passed", "past"),
    ("principal", "principle"), ("advice", "advise"), ("desert", "dessert"), ("cloth", "clothes"),
    ("breath", "breathe"), ("our", "are", "hour"), ("one", "won"), ("sea", "see"), ("wear", "where"),
    ("which", "witch"), ("form", "from"), ("farther", "further"), ("lead", "led"), ("been", "being"),
    ("later", "latter"), ("whole", "hole"), ("week", "weak"), ("threw", "through", "thorough"),
    ("brought", "bought"), ("live", "life"), ("wander", "wonder"), ("sight", "site", "cite"),
    ("compliment", "complement"), ("stationary", "stationery"), ("personal", "personnel"),
    ("meat", "meet"), ("tail", "tale"), ("sun", "son"), ("would", "wood"), ("allowed", "aloud"),
    ("board", "bored"), ("course", "coarse"), ("fair", "fare"), ("flower", "flour"), ("for", "four"),
    ("heard", "herd"), ("made", "maid"), ("plain", "plane"), ("road", "rode"), ("scene", "seen"),
    ("stair", "stare"), ("steal", "steel"), ("waist", "waste"), ("wait", "weight"), ("way", "weigh"),
    ("mine", "mind"), ("dose", "does"), ("chose", "choose"), ("lightning", "lightening"),
    ("council", "counsel"), ("dairy", "diary"), ("die", "dye"), ("fourth", "forth"), ("guest", "guessed"),
    ("it", "its"), ("idle", "idol"), ("morning", "mourning"), ("pair", "pear"), ("poor", "pour", "pore"),
    ("rain", "reign", "rein"), ("sale", "sail"), ("sew", "so", "sow"), ("some", "sum"),
    ("thank", "think"), ("want", "won't"), ("wary", "weary"), ("well", "will"), ("we", "wee"),
    ("were", "was"), ("woman", "women"), ("yoke", "yolk"), ("cant", "can't"), ("wont", "won't"),
]  # fmt: skip
"""Sets of words that people write in place of each other (homophones and near-homophones)."""

# --- grammar -----------------------------------------------------------------------------------------------------

ARTICLE_SWAPS: dict[str, tuple[str, ...]] = {
    "the": ("", "", "a", "an"), "a": ("", "", "the", "an"), "an": ("", "a", "a", "the"),
}  # fmt: skip
"""Article slips: "" drops the article, otherwise the other article (a/an misuse included)."""

ARTICLE_INSERTS = ("the", "the", "a")
"""Articles inserted after a preposition before a bare noun phrase ("go to the school")."""

DETERMINERS = frozenset(
    "the a an this that these those my your his her its our their some any no every each all both many "
    "much few several what which who whom whose where when how why there here i me you he him she it we "
    "us they them one two three four five six seven eight nine ten such own other another".split()
)
"""Words after which an inserted article would not read as a learner error."""

AGREEMENT_SWAPS: dict[str, tuple[str, ...]] = {
    "is": ("are",), "are": ("is",), "was": ("were",), "were": ("was",), "has": ("have",),
    "have": ("has",), "does": ("do",), "do": ("does",), "doesn't": ("don't",), "don't": ("doesn't",),
    "isn't": ("aren't",), "aren't": ("isn't",), "wasn't": ("weren't",), "weren't": ("wasn't",),
    "hasn't": ("haven't",), "haven't": ("hasn't",), "am": ("is", "are"), "this": ("these",),
    "these": ("this",), "those": ("that",), "many": ("much",), "much": ("many",),
}  # fmt: skip
"""Subject–verb and determiner–noun agreement slips."""

SUBJECTS_3SG = frozenset({"he", "she", "it"})
SUBJECTS_PLURAL = frozenset({"i", "you", "we", "they"})

PREPOSITION_SWAPS: dict[str, tuple[str, ...]] = {
    "in": ("on", "at", "into", "to"), "on": ("in", "at", "onto"), "at": ("in", "on", "to"),
    "to": ("for", "at", "in", "into"), "for": ("to", "of", "since"), "of": ("for", "from", "about", "in"),
    "with": ("by", "from", "to"), "from": ("of", "by", "since"), "by": ("with", "from", "until"),
    "about": ("of", "on", "for"), "into": ("in", "to"), "since": ("for", "from"),
    "during": ("in", "for", "while"), "until": ("till", "to", "by"), "among": ("between",),
    "between": ("among",), "onto": ("on", "to"), "over": ("above", "on"), "under": ("below",),
}  # fmt: skip
"""Prepositions and the ones learners put in their place."""

# (base, past, past participle) of common irregular verbs; 3rd person singular and -ing are regular.
IRREGULAR_VERBS: list[tuple[str, str, str]] = [
    ("go", "went", "gone"), ("come", "came", "come"), ("see", "saw", "seen"), ("take", "took", "taken"),
    ("give", "gave", "given"), ("make", "made", "made"), ("know", "knew", "known"),
    ("think", "thought", "thought"), ("get", "got", "gotten"), ("find", "found", "found"),
    ("tell", "told", "told"), ("say", "said", "said"), ("feel", "felt", "felt"), ("leave", "left", "left"),
    ("bring", "brought", "brought"), ("buy", "bought", "bought"), ("catch", "caught", "caught"),
    ("teach", "taught", "taught"), ("fight", "fought", "fought"), ("begin", "began", "begun"),
    ("drink", "drank", "drunk"), ("sing", "sang", "sung"), ("swim", "swam", "swum"), ("run", "ran", "run"),
    ("eat", "ate", "eaten"), ("write", "wrote", "written"), ("ride", "rode", "ridden"),
    ("drive", "drove", "driven"), ("rise", "rose", "risen"), ("speak", "spoke", "spoken"),
    ("break", "broke", "broken"), ("choose", "chose", "chosen"), ("steal", "stole", "stolen"),
    ("forget", "forgot", "forgotten"), ("fall", "fell", "fallen"), ("grow", "grew", "grown"),
    ("throw", "threw", "thrown"), ("fly", "flew", "flown"), ("draw", "drew", "drawn"),
    ("wear", "wore", "worn"), ("hold", "held", "held"), ("stand", "stood", "stood"),
    ("understand", "understood", "understood"), ("sit", "sat", "sat"), ("meet", "met", "met"),
    ("keep", "kept", "kept"), ("sleep", "slept", "slept"), ("send", "sent", "sent"),
    ("spend", "spent", "spent"), ("build", "built", "built"), ("lose", "lost", "lost"),
    ("hear", "heard", "heard"), ("mean", "meant", "meant"), ("pay", "paid", "paid"),
    ("sell", "sold", "sold"), ("win", "won", "won"), ("become", "became", "become"),
    ("do", "did", "done"), ("lie", "lay", "lain"), ("seek", "sought", "sought"), ("shoot", "shot", "shot"),
    ("strike", "struck", "struck"), ("wake", "woke", "woken"), ("hide", "hid", "hidden"),
    ("bite", "bit", "bitten"), ("lend", "lent", "lent"), ("dig", "dug", "dug"), ("feed", "fed", "fed"),
]  # fmt: skip

REGULAR_VERBS = (
    "want need like love live use work walk talk look help ask play stay try study carry start finish "
    "open close call move change happen seem turn follow learn watch wait decide believe hope allow "
    "remember consider appear continue develop create provide include improve return travel visit enjoy "
    "explain answer agree receive stop plan prefer offer suffer cause reach pass fill kill die add arrive "
    "enter fail join jump kiss laugh listen marry miss order pick pull push rest save share smile serve "
    "support touch train treat trust worry cry reply produce reduce discuss describe compare depend expect "
    "express raise refuse remain report require suggest wish wonder accept achieve admit avoid belong "
    "collect complain contain control cover destroy discover drop earn escape examine exist fix hate "
    "hurry imagine increase introduce invite manage mention notice occur prepare pretend prevent promise "
    "protect prove realize recognize relax remove repeat replace respect satisfy search settle shout solve "
    "step succeed suppose surprise thank vote waste warn wash dance climb cook clean paint jog shop"
).split()

DOUBLE_FINAL = frozenset(
    "stop plan prefer admit occur control drop step jog shop run swim sit begin get forget win dig".split()
)
"""Verbs that double their last consonant before -ed and -ing (stopped, planning, running)."""


# --- lookups derived from the tables above ------------------------------------------------------------------------


def _third_person(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in VOWELS:
        return base[:-1] + "ies"
    return base + "s"


def _regular_past(base: str) -> str:
    if base in DOUBLE_FINAL:
        return base + base[-1] + "ed"
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in VOWELS:
        return base[:-1] + "ied"
    return base + "ed"


def _present_participle(base: str) -> str:
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        return base[:-1] + "ing"
    if base in DOUBLE_FINAL:
        return base + base[-1] + "ing"
    return base + "ing"


def _merge(table: dict[str, tuple[str, ...]], word: str, others: list[str]) -> None:
    merged = list(table.get(word, ()))
    for other in others:
        if other != word and other not in merged:
            merged.append(other)
    if merged:
        table[word] = tuple(merged)


def _build_verbs() -> tuple[dict[str, tuple[str, ...]], dict[str, str], dict[str, str]]:
    forms: dict[str, tuple[str, ...]] = {}
    third_to_base: dict[str, str] = {}
    base_to_third: dict[str, str] = {}
    paradigms = [
        (b, _third_person(b), p, pp, _present_participle(b)) for b, p, pp in IRREGULAR_VERBS
    ]
    paradigms += [(b, _third_person(b), _regular_past(b), _regular_past(b), _present_participle(b))
                  for b in REGULAR_VERBS]  # fmt: skip
    irregular = {b for b, _, _ in IRREGULAR_VERBS}
    for base, third, past, participle, ing in paradigms:
        # over-regularised past ("goed", "teached") is a typical learner form of an irregular verb
        paradigm = [base, third, past, participle, ing]
        wrong = paradigm + ([_regular_past(base)] if base in irregular else [])
        for form in paradigm:
            _merge(forms, form, wrong)
        third_to_base[third] = base
        base_to_third[base] = third
    return forms, third_to_base, base_to_third


def _build_real_words() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for group in REAL_WORD_SETS:
        for word in group:
            _merge(table, word, list(group))
    return table


def _build_phonetic() -> list[tuple[str, str, tuple[str, ...]]]:
    rules = []
    for pattern, replacements in PHONETIC_RULES:
        anchor = "^" if pattern.startswith("^") else "$" if pattern.endswith("$") else ""
        rules.append((pattern.strip("^$"), anchor, tuple(replacements.split(" "))))
    return rules


VERB_FORMS, VERB_THIRD_TO_BASE, VERB_BASE_TO_THIRD = _build_verbs()
"""VERB_FORMS: a verb form -> the other (and wrong) forms of its verb; the other two map 3sg <-> base."""
REAL_WORD_CONFUSIONS = _build_real_words()
"""A word -> the words it is confused with."""
PHONETIC = _build_phonetic()
"""Parsed PHONETIC_RULES: (pattern, anchor in {"", "^", "$"}, replacements)."""


@functools.lru_cache(maxsize=1 << 16)
def phonetic_options(w: str) -> tuple[tuple[int, int, tuple[str, ...]], ...]:
    """(start, length, replacements) for every phonetic rule that matches `w` (cached: words repeat)."""
    options = []
    for pattern, anchor, replacements in PHONETIC:
        size = len(pattern)
        if len(w) <= size:
            continue
        if anchor == "^":
            if w.startswith(pattern):
                options.append((0, size, replacements))
        elif anchor == "$":
            if w.endswith(pattern):
                options.append((len(w) - size, size, replacements))
        else:
            j = w.find(pattern)
            while j >= 0:
                if j == 0:  # English words do not start with ck or a double letter
                    first = tuple(r for r in replacements if r[:2] not in ("ck", "ff"))
                    if first:
                        options.append((0, size, first))
                else:
                    options.append((j, size, replacements))
                j = w.find(pattern, j + 1)
    return tuple(options)
