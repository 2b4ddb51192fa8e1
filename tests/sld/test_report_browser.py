"""Open a rendered report in headless Chromium (Debian's ``chromium``): no console errors, a real screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.image import imread

from sld.report.run_report import write_report
from tests.sld.chromium import find_chromium, load_page
from tests.sld.report_data import FinishedRun

CHROMIUM = find_chromium()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


def test_report_opens_without_console_errors(sft_run: FinishedRun, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    files = write_report(sft_run.run_dir, tmp_path / "report", corpus=str(sft_run.corpus))
    shot = tmp_path / "report.png"

    page = load_page(CHROMIUM, files.html.as_uri(), shot, tmp_path / "profile")

    assert page.errors == []
    image = imread(shot)
    assert image.shape[1] == 1280 and image.shape[0] > 2000  # the whole page, figures included
    assert image[..., :3].std() > 0.05  # not a blank page


def test_the_check_sees_a_broken_image(tmp_path: Path) -> None:
    # The same page machinery on a page whose image is missing must report it, or the test above proves nothing.
    from sld.report.html import page

    (tmp_path / "broken.html").write_text(page("broken", '<img src="missing.png" alt="missing figure">'))

    result = load_page(str(CHROMIUM), (tmp_path / "broken.html").as_uri(), tmp_path / "b.png", tmp_path / "profile")

    assert any("image failed to load: missing figure" in error for error in result.errors)
    assert any("ERR_FILE_NOT_FOUND" in error for error in result.errors)


def test_report_written_by_default_discover_shows_the_curves(tmp_path: Path) -> None:
    # What a newcomer sees: `sld discover` with no arguments, then the page its last line names.
    from click.testing import CliRunner

    from sld.cli import main

    assert CHROMIUM is not None
    result = CliRunner().invoke(main, ["discover", "--budget-s", "4", "--backend", "none"])
    assert result.exit_code == 0, result.output
    html = tmp_path / result.stdout.strip().splitlines()[-1].removeprefix("report: ")
    page_source = html.read_text()
    assert 'alt="loss along tokens, per group"' in page_source  # the fitted curves, extrapolated part marked
    shot = tmp_path / "discover.png"

    page = load_page(CHROMIUM, html.as_uri(), shot, tmp_path / "profile")

    # The page's own check logs "image failed to load: <alt>" for a figure that did not decode.
    assert page.errors == []
    image = imread(shot)
    assert image.shape[1] == 1280 and image.shape[0] > 1500 and image[..., :3].std() > 0.05
