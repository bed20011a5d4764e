"""Prefix matching of the prefix cache: which cached sequence a new prompt can reuse, and how much of it."""

from pagescribe.engine.slots import Slot, best_prefix
from pagescribe.engine.tokens import ImageKey, common_prefix, span

PAGE_A = ImageKey("aaa", n_pos=576, n_tokens=576, chunk_index=3)
PAGE_B = ImageKey("bbb", n_pos=576, n_tokens=576, chunk_index=3)


def slot(seq: int, cached: list[int | ImageKey]) -> Slot:
    return Slot(seq=seq, cached=cached)


def test_images_match_by_content_not_by_where_they_sit_in_the_prompt() -> None:
    assert ImageKey("aaa", n_pos=576, n_tokens=576, chunk_index=7) == PAGE_A
    assert PAGE_A != PAGE_B
    assert common_prefix([1, 2, PAGE_A, 5], [1, 2, ImageKey("aaa", 576, 576), 6]) == 3
    assert span(PAGE_A) == 576 and span(7) == 1


def test_the_longest_shared_prefix_wins_and_counts_positions() -> None:
    instructions = [1, 10, 11, 12, 13]
    slots = [slot(0, [1, 10, 99]), slot(1, [*instructions, PAGE_A, 20, 21]), slot(2, [])]
    chosen, n_keys, n_pos = best_prefix(slots, [*instructions, PAGE_B, 20, 21])
    assert chosen is slots[1]
    assert (n_keys, n_pos) == (5, 5)  # the instructions; the other page's image is not reused


def test_a_repeated_prompt_leaves_its_last_token_to_evaluate() -> None:
    prompt = [1, 10, PAGE_A, 20, 21]
    chosen, n_keys, n_pos = best_prefix([slot(0, [*prompt, 30, 31])], prompt)
    assert chosen is not None and n_keys == 4 and n_pos == 1 + 1 + 576 + 1


def test_nothing_shared_means_no_source() -> None:
    assert best_prefix([slot(0, [2, 3]), slot(1, [])], [1, 2, 3]) == (None, 0, 0)
