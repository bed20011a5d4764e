"""pagescribe's own vocabularies for synthesized models: SentencePiece-style (SPM) and byte-level BPE.

No third-party vocabulary ships with the project: the pieces are generated here, deterministically, from a
short built-in word list and letter statistics. llama.cpp's SPM tokenizer starts from single characters and
repeatedly merges the adjacent pair whose concatenation is a vocabulary piece with the highest score, then
falls back to ``<0xXX>`` byte tokens for anything left over. So the vocabulary is built to be *reachable*:

* every piece's prefixes are pieces too, so a word in the list always merges all the way up;
* ``▁`` (the space marker) appears only at the start of a piece, so merges never cross a word boundary;
* punctuation, newlines and non-ASCII text go through the 256 byte-fallback tokens, so any text round-trips.

Layout: 0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, 3..258 ``<0x00>``..``<0xFF>``, then normal pieces (a family may
name the leading special tokens differently, and add control tokens at the end: ``build_vocab``'s ``head`` and
``tail``).

The byte-level BPE vocabularies (``build_bpe_vocab``, the GPT-2 scheme Qwen and Granite use) start from the 256
byte characters and grow the same words by merges, each merge's result a token, so llama.cpp's BPE reaches them.
"""

from __future__ import annotations

import functools
import itertools
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gguf import TokenType

N_VOCAB = 32000
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPACE = "\u2581"  # what SentencePiece writes for a space

# Common English words plus words that turn up on document pages, most frequent first.
_WORDS = """
the of and to a in is it you that he was for on are with as i his they be at one have this from or had by
not word but what some we can out other were all there when up use your how said an each she which do their
time if will way about many then them write would like so these her long make thing see him two has look more
day could go come did number sound no most people my over know water than call first who may down side been
now find any new work part take get place made live where after back little only round man year came show
every good me give our under name very through just form sentence great think say help low line differ turn
cause much mean before move right boy old too same tell does set three want air well also play small end put
home read hand port large spell add even land here must big high such follow act why ask men change went
light kind off need house picture try us again animal point mother world near build self earth father head
stand own page should country found answer school grow study still learn plant cover food sun four between
state keep eye never last let thought city tree cross farm hard start might story saw far sea draw left late
run while press close night real life few north open seem together next white children begin got walk example
ease paper group always music those both mark often letter until mile river car feet care second book carry
took science eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood
main enough plain girl usual young ready above ever red list though feel talk bird soon body dog family direct
pose leave song measure door product black short numeral class wind question happen complete ship area half
rock order fire south problem piece told knew pass since top whole king space heard best hour better true
during hundred five remember step early hold west ground interest reach fast verb sing listen six table travel
less morning ten simple several vowel toward war lay against pattern slow center love person money serve
appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark
machine note wait plan figure star box noun field rest correct able pound done beauty drive stood contain
front teach
week final gave green quick develop ocean warm free minute strong special mind behind clear tail produce fact
street inch multiply nothing course stay wheel full force blue object decide surface deep moon island foot
system busy test record boat common gold possible plane stead dry wonder laugh thousand ago ran check game
shape equate miss brought heat snow tire bring yes distant fill east paint language among image describe
document diagram chart process flow data value price item total report section chapter summary result method
model input output layer network text content slide presentation technical detail information service customer
market revenue cost growth analysis research design performance security cloud server client request response
error image pixel vision language training inference token context memory compute storage database query index
file format version release feature support user account policy management team project plan goal strategy
quarter annual percent million billion increase decrease average rate level step stage phase table column row
cell header footer title caption label axis legend source reference appendix figure equation formula
"""

# English letters, most frequent first: orders the letter n-grams that fill the rest of the vocabulary.
_LETTER_ORDER = "etaoinshrdlcumwfgypbvkjxqz"
_SPECIALS = (("<unk>", TokenType.UNKNOWN), ("<s>", TokenType.CONTROL), ("</s>", TokenType.CONTROL))


@dataclass(frozen=True, slots=True)
class Vocab:
    """Parallel token arrays as written to ``tokenizer.ggml.tokens`` / ``scores`` / ``token_type``."""

    tokens: tuple[str, ...]
    scores: tuple[float, ...]
    token_types: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.tokens)


def byte_token(value: int) -> str:
    """The byte-fallback piece llama.cpp looks up for one byte (``<0x0A>`` for a newline)."""
    return f"<0x{value:02X}>"


def _with_prefixes(piece: str) -> Iterator[str]:
    # Every prefix of a piece is itself a piece, so llama.cpp can always grow the word from its left end.
    for end in range(min(2, len(piece)), len(piece) + 1):
        yield piece[:end]


def _word_pieces() -> Iterator[str]:
    for word in _WORDS.split():
        for form in (word, word.capitalize()):
            yield from _with_prefixes(SPACE + form)
            yield from _with_prefixes(form)


def _letter_rank(text: str) -> int:
    return sum(_LETTER_ORDER.index(c) for c in text)


def _ngram_pieces() -> Iterator[str]:
    lower, upper, digits = string.ascii_lowercase, string.ascii_uppercase, string.digits
    bigrams = ["".join(p) for p in itertools.product(lower, repeat=2)]
    capital_bigrams = [u + c for u in upper for c in lower]
    digit_pairs = ["".join(p) for p in itertools.product(digits, repeat=2)]
    yield from bigrams
    yield from (SPACE + b for b in bigrams)
    yield from capital_bigrams
    yield from (SPACE + b for b in capital_bigrams)
    yield from digit_pairs
    yield from (SPACE + d for d in digit_pairs)
    trigrams = ["".join(p) for p in itertools.product(lower, repeat=3)]
    trigrams.sort(key=lambda t: (_letter_rank(t), t))
    for trigram in trigrams:
        yield trigram
        yield SPACE + trigram


def _normal_pieces() -> Iterator[str]:
    yield SPACE
    yield from (c for c in string.printable if c.isprintable() and c != " ")
    yield from (SPACE + c for c in string.ascii_letters + string.digits)
    yield from _word_pieces()
    yield from _ngram_pieces()


def _unique(pieces: Iterable[str], taken: set[str]) -> Iterator[str]:
    for piece in pieces:
        if piece not in taken:
            taken.add(piece)
            yield piece


def _filler_pieces(prefix: str = "") -> Iterator[str]:
    # Beyond the reachable pieces, large vocabularies (Qwen's 151,936, Gemma's 262,208) are filled with letter
    # 4- and 5-grams: valid tokens a tokenizer rarely produces, as in trained vocabularies' long tail.
    for n in (4, 5):
        for letters in itertools.product(_LETTER_ORDER, repeat=n):
            yield prefix + "".join(letters)


@functools.cache
def build_vocab(
    size: int = N_VOCAB,
    *,
    head: tuple[tuple[str, TokenType], ...] = _SPECIALS,
    tail: tuple[str, ...] = (),
) -> Vocab:
    """The SPM vocabulary of ``size`` tokens (deterministic; the same for every preset and seed): ``head`` special
    tokens, the 256 byte tokens, normal pieces, then ``tail`` control tokens (a family's chat markers)."""
    tokens = [text for text, _ in head] + [byte_token(b) for b in range(256)]
    types = [int(kind) for _, kind in head] + [int(TokenType.BYTE)] * 256
    scores = [0.0] * len(tokens)
    n_normal = size - len(tokens) - len(tail)
    pieces = itertools.chain(_normal_pieces(), _filler_pieces(SPACE))
    normal = list(itertools.islice(_unique(pieces, set(tokens) | set(tail)), n_normal))
    if len(normal) < n_normal:
        raise ValueError(f"cannot generate {size} tokens; at most {len(tokens) + len(normal) + len(tail)}")
    tokens += normal
    types += [int(TokenType.NORMAL)] * n_normal
    # Earlier pieces score higher, like the log-probabilities of a trained SentencePiece model; llama.cpp
    # merges the best-scoring adjacent pair first.
    scores += [-float(rank) for rank in range(n_normal)]
    tokens += tail
    types += [int(TokenType.CONTROL)] * len(tail)
    scores += [0.0] * len(tail)
    return Vocab(tokens=tuple(tokens), scores=tuple(scores), token_types=tuple(types))


# -- byte-level BPE ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BpeVocab:
    """``tokenizer.ggml.tokens`` / ``token_type`` / ``merges`` of a GPT-2-style byte-level BPE vocabulary."""

    tokens: tuple[str, ...]
    token_types: tuple[int, ...]
    merges: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.tokens)


@functools.cache
def byte_chars() -> tuple[str, ...]:
    """GPT-2's printable stand-in for each byte value (``Ġ`` for a space, ``Ċ`` for a newline)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return tuple(chr(b) if b in printable else chr(next(extra)) for b in range(256))


def _bpe_words() -> Iterator[str]:
    space, newline = byte_chars()[ord(" ")], byte_chars()[ord("\n")]
    yield newline * 2  # "\n\n" is one token in these vocabularies (idefics3's image layout looks it up)
    for word in _WORDS.split():
        for form in (word, word.capitalize()):
            yield space + form
            yield form
    yield from (a + b for a in string.ascii_lowercase for b in string.ascii_lowercase)
    yield from (space + d for d in string.digits)
    yield from (a + b for a in string.digits for b in string.digits)


def _merges_of(word: str) -> Iterator[tuple[str, str]]:
    # grown from the left, one character at a time: every prefix is a token, every merge makes the next one
    for end in range(2, len(word) + 1):
        yield word[: end - 1], word[end - 1]


@functools.cache
def build_bpe_vocab(size: int, *, tail: tuple[str, ...] = ()) -> BpeVocab:
    """The byte-level BPE vocabulary of ``size`` tokens: the 256 byte characters, merged pieces, filler, then the
    ``tail`` control tokens (the family's special tokens, as the converters append them)."""
    tokens = list(byte_chars())
    known = set(tokens) | set(tail)
    merges: list[str] = []
    n_normal = size - len(tail)
    for word in _bpe_words():
        for left, right in _merges_of(word):
            if len(tokens) >= n_normal:
                break
            if left + right not in known:
                known.add(left + right)
                tokens.append(left + right)
                merges.append(f"{left} {right}")
    tokens += itertools.islice(_unique(_filler_pieces(), known), max(0, n_normal - len(tokens)))
    if len(tokens) < n_normal:
        raise ValueError(f"cannot generate {size} BPE tokens")
    types = [int(TokenType.NORMAL)] * len(tokens) + [int(TokenType.CONTROL)] * len(tail)
    return BpeVocab(tokens=(*tokens, *tail), token_types=tuple(types), merges=tuple(merges))
