from pagescribe.engine.textstream import TextStream


def feed(stream: TextStream, chunks: list[bytes]) -> list[str]:
    out = [stream.push(c) for c in chunks]
    out.append(stream.finish())
    return out


def test_multibyte_characters_wait_for_their_last_byte() -> None:
    euro = "€".encode()
    pieces = feed(TextStream(), [b"price ", euro[:1], euro[1:2], euro[2:], b"5"])
    assert pieces == ["price ", "", "", "€", "5", ""]


def test_stop_string_is_cut_and_not_emitted() -> None:
    stream = TextStream(stop=("</answer>",))
    pieces = feed(stream, [b"forty", b" two</", b"answer> and more"])
    assert "".join(pieces) == "forty two"
    assert stream.stopped
    assert stream.text == "forty two"


def test_text_that_only_looks_like_a_stop_prefix_is_released_at_the_end() -> None:
    stream = TextStream(stop=("STOP",))
    pieces = feed(stream, [b"go ST", b"O"])
    assert pieces[:2] == ["go ", ""]
    assert "".join(pieces) == "go STO"
    assert not stream.stopped


def test_stop_string_split_across_many_tokens() -> None:
    stream = TextStream(stop=("\n\n",))
    assert "".join(feed(stream, [b"a", b"\n", b"\n", b"b"])) == "a"
