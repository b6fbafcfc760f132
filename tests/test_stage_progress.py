"""vaelab.stage_progress: what a long stage prints off a terminal (the amount of work, the
estimate from the first piece of work, progress lines, the end) and its rate arithmetic."""

from __future__ import annotations

import io
import re

import pytest

from vaelab.stage_progress import Stage, default_mode, duration, stage


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_duration_formats_minutes_hours_and_unknown():
    assert duration(59.4) == "0:59"
    assert duration(3725) == "1:02:05"
    assert duration(float("nan")) == "?"
    assert duration(-1) == "?"


def test_a_stringio_is_not_a_terminal_so_lines_are_chosen():
    assert default_mode(io.StringIO()) == "lines"


def test_lines_say_the_amount_the_estimate_progress_and_the_end():
    stream = io.StringIO()
    with stage(
        "β-VAE score",
        1000,
        "encodings",
        alternatives={"eval.disentanglement.sizes=quick": 100},
        stream=stream,
        line_interval=0.0,
    ) as progress:
        for _ in range(4):
            progress.advance(250)
    lines = _lines(stream)
    assert lines[0] == "β-VAE score: 1,000 encodings"
    estimates = [line for line in lines if "about" in line]
    assert len(estimates) == 1
    assert lines.index(estimates[0]) == 2  # at the second piece, after the first one's line
    assert re.fullmatch(
        r"β-VAE score: about \d+:\d\d on this CPU \(eval\.disentanglement\.sizes=quick: "
        r"about \d+:\d\d\)",
        estimates[0],
    )
    progress_lines = [line for line in lines if "%" in line]
    assert [line.split("%")[0].split()[-1] for line in progress_lines] == ["25", "50", "75"]
    assert "(500 / 1,000 encodings)" in progress_lines[1]
    assert "ETA" in progress_lines[0]
    assert re.fullmatch(r"β-VAE score: done in \d+:\d\d", lines[-1])


def test_no_progress_lines_within_the_interval_and_no_end_line_after_an_error():
    stream = io.StringIO()

    def interrupted() -> None:
        with stage("DCI", 10, "trees", stream=stream, line_interval=3600.0) as progress:
            progress.advance(1)
            progress.advance(1)
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        interrupted()
    lines = _lines(stream)
    assert lines[0] == "DCI: 10 trees"
    assert lines[1].startswith("DCI: about ")
    assert len(lines) == 2  # no progress line within the hour, no "done" after the error


def test_estimate_leaves_the_first_piece_of_work_out():
    progress = Stage("x", 100, "items", "this CPU", {}, "silent", io.StringIO(), 0.0)
    progress.started -= 30.0  # a slow first piece: 30 s for 10 items (warm-up)
    progress.advance(10)
    assert progress.seconds_for(100) == pytest.approx(300.0, rel=1e-2)
    progress.started -= 5.0  # then 5 s for 10 items
    progress.advance(10)
    assert progress.seconds_for(100) == pytest.approx(50.0, rel=1e-2)
    assert progress.seconds_for(30) == pytest.approx(0.3 * progress.seconds_for(100))


def test_track_advances_by_each_items_size_once_it_is_processed():
    stream = io.StringIO()
    seen = []
    with stage("IW-NLL", 6, "test points", stream=stream, line_interval=0.0) as progress:
        for _batch in progress.track([[1, 2], [3, 4, 5], [6]], size=len):
            seen.append(progress.done)
    assert seen == [0, 2, 5]
    assert progress.done == 6
