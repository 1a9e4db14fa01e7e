"""The worklist page in a real browser: Debian's chromium + chromium-driver, driven by Selenium.

Today's entries are listed, the add form shows the server's refusal at the
field it names and then adds the entry (findscu sees it), delete asks first
(cancel keeps the entry, confirm removes it, findscu no longer sees it), and
a screenshot of the page is a real picture of the expected size.
Under CI=true a missing chromium, chromedriver or selenium fails the test.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.api import ApiServer, wlmd_with_api
from tests.helpers.dcmtk import findscu
from tests.helpers.required import need
from tests.helpers.worklists import complete_entry, make_area, query

TODAY = dt.date.today()
STATION = "ScheduledStationAETitle"
WIDTH, HEIGHT = 1024, 768  # a tablet in landscape
WAIT = 15.0

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    f"--window-size={WIDTH},{HEIGHT}",
)  # fmt: skip


def _selenium() -> Any:
    try:
        from selenium import webdriver
    except ImportError:
        return None
    return webdriver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = _selenium()
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    need(webdriver is not None, "selenium is not installed (pip install -e '.[test]')")
    need(chromium and driver, "chromium and chromium-driver are not installed (Debian packages)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wlmd-chromium-")
    options = Options()
    options.binary_location = str(chromium)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)
    session.set_page_load_timeout(WAIT)
    session.set_script_timeout(WAIT)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None,
        dcmtk: dict[str, str]) -> Iterator[ApiServer]:  # fmt: skip
    root = tmp_path_factory.mktemp("browser-data")
    today = TODAY.strftime("%Y%m%d")
    make_area(
        root,
        "WLMD",
        {  # type: ignore[arg-type]
            "ct.wl": complete_entry(PatientID="B1", PatientName="CURIE^MARIE", Modality="CT",
                                    ScheduledProcedureStepStartDate=today,
                                    ScheduledProcedureStepStartTime="083000",
                                    AccessionNumber="ACC-B1", **{STATION: "CT1"}),
            "mr.wl": complete_entry(PatientID="B2", PatientName="ROENTGEN^WILHELM",
                                    Modality="MR", ScheduledProcedureStepStartDate=today,
                                    ScheduledProcedureStepStartTime="101500",
                                    AccessionNumber="ACC-B2", **{STATION: "MR1"}),
            "old.wl": complete_entry(PatientID="B3", PatientName="OLD^ENTRY",
                                     ScheduledProcedureStepStartDate="20240115"),
        },
    )  # fmt: skip
    with wlmd_with_api(root) as server:
        yield server


def wait(browser: Any, condition: Any, what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, WAIT).until(condition)
    except TimeoutException:
        pytest.fail(f"page: timed out waiting for {what}", pytrace=False)


def rows(browser: Any) -> list[list[str]]:
    """The table's cells as shown, read in one script call (the page may redraw meanwhile)."""
    return browser.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll('#entries tbody tr')]"
        ".map((tr) => [...tr.cells].map((td) => td.innerText.trim()))"
    )


def open_page(browser: Any, api: ApiServer) -> None:
    browser.get(f"{api.base}/")
    wait(browser, lambda b: b.find_element("css selector", "body").get_attribute("data-ready"),
         "the first list")  # fmt: skip


def names(rows_: list[list[str]]) -> list[str]:
    return [row[2] for row in rows_]


def find_patient(api: ApiServer, patient_id: str) -> list[str]:
    result = findscu(api.dicom_port, query(PatientID=patient_id, PatientName=None), aec="WLMD")
    assert result.final_status == 0x0000, result.describe()
    return [str(ds.PatientName) for ds in result.datasets]


def test_the_page_lists_todays_entries_and_filters(browser: Any, api: ApiServer) -> None:
    open_page(browser, api)
    assert names(rows(browser)) == ["CURIE MARIE", "ROENTGEN WILHELM"], "today's, by time"
    first = rows(browser)[0]
    assert first[:2] == [TODAY.isoformat(), "08:30"] and first[4:7] == ["ACC-B1", "CT", "CT1"]
    assert "PatientID" not in browser.current_url and "B1" not in browser.current_url

    browser.find_element("id", "f-modality").send_keys("mr")
    browser.find_element("css selector", "#filters button").click()
    wait(browser, lambda b: names(rows(b)) == ["ROENTGEN WILHELM"], "the MR filter")
    browser.find_element("id", "f-modality").clear()
    browser.find_element("id", "f-all-dates").click()
    browser.find_element("css selector", "#filters button").click()
    wait(browser, lambda b: len(rows(b)) == 3, "all dates")
    assert names(rows(browser))[0] == "OLD ENTRY"


def fill(browser: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = browser.find_element("css selector", f"#add [name={name}]")
        field.clear()
        if field.get_attribute("type") in ("date", "time"):
            # Chromium's date/time inputs take typed digits in the locale's order:
            # set the value as a script would, as a person's picker does.
            browser.execute_script("arguments[0].value = arguments[1]", field, value)
        else:
            field.send_keys(value)


def test_adding_shows_the_refusal_in_place_then_adds(browser: Any, api: ApiServer) -> None:
    open_page(browser, api)
    fill(browser, {
        "PatientName": "MEITNER^LISE", "PatientID": "B9", "RequestedProcedureDescription": "CT",
        "ScheduledStationAETitle": "ct2", "ScheduledProcedureStepStartDate": TODAY.isoformat(),
        "ScheduledProcedureStepStartTime": "11:45",
        "ScheduledProcedureStepDescription": "CT THORAX",
    })  # fmt: skip
    browser.find_element("css selector", "#add button[type=submit]").click()
    reason = ("incomplete worklist file rejected: ScheduledProcedureStepSequence > Modality"
              " is missing or empty")  # fmt: skip
    modality = browser.find_element("css selector", "#add [name=Modality]")
    wait(browser, lambda b: modality.get_attribute("aria-invalid") == "true", "the refusal")
    shown = modality.find_element("xpath", "following-sibling::span[@class='field-error']")
    assert shown.text == reason
    assert browser.find_element("id", "add-error").text == f"Not added: {reason}"
    assert find_patient(api, "B9") == [], "nothing was written"

    fill(browser, {"Modality": "ct"})
    browser.find_element("css selector", "#add button[type=submit]").click()
    wait(browser, lambda b: "MEITNER LISE" in names(rows(b)), "the new row")
    assert modality.get_attribute("aria-invalid") is None
    assert find_patient(api, "B9") == ["MEITNER^LISE"]
    new = next(r for r in rows(browser) if r[2] == "MEITNER LISE")
    assert new[1] == "11:45" and new[5:7] == ["CT", "CT2"]


def test_delete_asks_first(browser: Any, api: ApiServer) -> None:
    open_page(browser, api)

    def delete_button_of(patient: str) -> Any:
        for tr in browser.find_elements("css selector", "#entries tbody tr"):
            if patient in tr.text:
                return tr.find_element("css selector", "button.delete")
        pytest.fail(f"no row for {patient}", pytrace=False)

    dialog = browser.find_element("id", "confirm")
    delete_button_of("CURIE MARIE").click()
    wait(browser, lambda b: dialog.get_attribute("open") is not None, "the confirmation")
    assert "CURIE MARIE" in browser.find_element("id", "confirm-text").text
    browser.find_element("id", "confirm-cancel").click()
    wait(browser, lambda b: dialog.get_attribute("open") is None, "the dialog to close")
    assert "CURIE MARIE" in names(rows(browser)) and find_patient(api, "B1") == ["CURIE^MARIE"]

    delete_button_of("CURIE MARIE").click()
    wait(browser, lambda b: dialog.get_attribute("open") is not None, "the confirmation")
    browser.find_element("id", "confirm-delete").click()
    wait(browser, lambda b: "CURIE MARIE" not in names(rows(b)), "the row to go")
    assert find_patient(api, "B1") == []


def png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and a count of distinct byte values of the decoded pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    pixels = zlib.decompress(b"".join(chunks))
    return width, height, len(set(pixels))


def test_screenshot_of_the_page(browser: Any, api: ApiServer, tmp_path: Path) -> None:
    open_page(browser, api)
    wait(browser, lambda b: len(rows(b)) >= 1, "rows")
    path = tmp_path / "worklist-page.png"
    assert browser.save_screenshot(str(path))
    data = path.read_bytes()
    width, height, colours = png_size_and_colours(data)
    inner = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    assert (width, height) == tuple(inner), "the screenshot is the viewport"
    assert width >= WIDTH * 0.9 and height >= HEIGHT * 0.8
    assert len(data) > 20_000 and colours > 100, "a real picture, not a blank page"


def test_with_a_token_the_page_asks_for_it_once(
    browser: Any, tmp_path: Path, wlmd_available: None, dcmtk: dict[str, str]
) -> None:
    token = "page-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    make_area(tmp_path / "data", "WLMD", [complete_entry(
        PatientID="T1", PatientName="TOKEN^TEST",
        ScheduledProcedureStepStartDate=TODAY.strftime("%Y%m%d"))])  # fmt: skip
    with wlmd_with_api(tmp_path / "data", ["--api-token-file", str(tmp_path / "token")]) as api:
        browser.get(f"{api.base}/")
        box = browser.find_element("id", "token-box")
        wait(browser, lambda b: box.is_displayed(), "the token prompt")
        assert rows(browser) == []
        browser.find_element("id", "token").send_keys(token)
        browser.find_element("css selector", "#token-form button").click()
        wait(browser, lambda b: names(rows(b)) == ["TOKEN TEST"], "the list after the token")
        assert not box.is_displayed() and token not in browser.current_url
        browser.execute_script("sessionStorage.clear()")
