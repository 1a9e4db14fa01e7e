"""The MLLP decoder, fed as TCP would feed it."""

from __future__ import annotations

from wlmd.hl7.mllp import Decoder, Discarded, Frame, Incomplete, TooLarge, frame


def feed_all(decoder: Decoder, *chunks: bytes) -> list[object]:
    events: list[object] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def test_split_at_every_byte_gives_one_frame() -> None:
    data = frame(b"MSH|^~\\&|A\rPID|1")
    events = feed_all(Decoder(), *(data[i : i + 1] for i in range(len(data))))
    assert events == [Frame(b"MSH|^~\\&|A\rPID|1")]


def test_coalesced_frames_and_noise_before_them() -> None:
    events = feed_all(Decoder(), b"junk" + frame(b"one") + b"\r\n" + frame(b"two"))
    assert events == [Discarded(4), Frame(b"one"), Discarded(2), Frame(b"two")]


def test_end_block_split_between_reads() -> None:
    events = feed_all(Decoder(), b"\x0bone\x1c", b"\x0d")
    assert events == [Frame(b"one")]


def test_a_lone_fs_is_data_and_a_frame_without_end_is_incomplete() -> None:
    assert feed_all(Decoder(), b"\x0bab\x1ccd") == [Incomplete(5)]


def test_a_new_start_block_reports_the_unfinished_frame() -> None:
    assert feed_all(Decoder(), b"\x0bhalf\x0bwhole\x1c\x0d") == [Incomplete(4), Frame(b"whole")]


def test_too_large_stops_the_decoder() -> None:
    decoder = Decoder(max_size=10)
    events = decoder.feed(b"\x0b" + b"x" * 11)
    assert events == [TooLarge(11, 10)] and decoder.failed
    assert decoder.feed(frame(b"ok")) == [] and decoder.close() == []


def test_a_frame_of_exactly_the_bound_passes() -> None:
    assert feed_all(Decoder(max_size=10), frame(b"x" * 10)) == [Frame(b"x" * 10)]
