"""The on-screen keyboard, by taps only, in Chinese: a help request written in pinyin and one in
handwriting reach the outbox; a waybill with letters is accepted on the courier screen."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from edge.ime.pinyin import default_dictionary_dir, dictionary_file, ensure_dictionary
from edge.kiosk_ui.screens.ime import KeyboardBackends
from tests.ime.strokes import CHARACTERS, PAD
from tests.support.browser import LANDSCAPE, PORTRAIT, assert_accessible, shoot, type_on_keypad
from tests.support.station import COURIER_CODE, Station

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
PHONE = "13912345678"


@pytest.fixture(scope="module", autouse=True)
def compiled_dictionary(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compile the dictionary (once per machine) before a page asks for it, as a box does at
    its first start; the kiosk finds it in the same cache folder."""
    ensure_dictionary(dictionary_file(default_dictionary_dir(tmp_path_factory.mktemp("data"))))


def keyboard(page):
    return page.locator("#keyboard")


def tap_keys(page, letters: str) -> None:
    for letter in letters:
        keyboard(page).get_by_role("button", name=letter, exact=True).click()


def type_pinyin(page, letters: str) -> None:
    """Tap the letters; a resident then looks at the candidates for all of them."""
    tap_keys(page, letters)
    typed = keyboard(page).locator(".kb-typed").inner_text()
    expect(keyboard(page).locator(".kb-candidates")).to_have_attribute("data-for", typed)


def tap_candidate(page, text: str) -> None:
    keyboard(page).locator(".kb-candidates").get_by_role("button", name=text, exact=True).click()


def draw(page, strokes: list[list[tuple[int, int]]], cell: int = 0) -> None:
    """Strokes with the mouse in one of the pad's square boxes (0: left, 1: right), scaled from
    the 300x300 drawing."""
    box = keyboard(page).locator("canvas").bounding_box()
    scale = box["height"] / PAD
    left = box["x"] + cell * box["height"]
    for stroke in strokes:
        points = [(left + x * scale, box["y"] + y * scale) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def open_help_form(page, category: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="求助", exact=True).click()
    page.get_by_role("radio", name=category).click()
    page.get_by_role("textbox", name="请简单描述").click()
    expect(keyboard(page)).to_be_visible()


def send_help(page, kiosk: Station) -> dict:
    type_on_keypad(page, PHONE)
    expect(keyboard(page)).to_be_hidden()  # the phone has its own keypad
    page.get_by_role("button", name="提交求助").click()
    expect(page.get_by_role("heading", name="已提交")).to_be_visible()
    [sent] = kiosk.outbox("request.submitted")
    return sent.data


def test_help_request_written_in_pinyin(page, kiosk: Station) -> None:
    open_help_form(page, "维修")
    expect(keyboard(page).get_by_role("button", name="拼音")).to_have_attribute("aria-pressed", "true")
    type_pinyin(page, "shuiguanloushui")
    expect(keyboard(page).locator(".kb-typed")).to_have_text("shuiguanloushui")
    tap_candidate(page, "水管")  # takes "shuiguan"; "loushui" stays to choose from
    expect(keyboard(page).locator(".kb-typed")).to_have_text("loushui")
    tap_candidate(page, "漏水")
    expect(keyboard(page).locator(".kb-typed")).to_have_text("")
    keyboard(page).get_by_role("button", name="逗号").click()
    type_pinyin(page, "xuyao")
    keyboard(page).get_by_role("button", name="空格").click()  # space takes the first: 需要
    type_pinyin(page, "shangmen")
    tap_candidate(page, "上门")
    keyboard(page).get_by_role("button", name="删除").click()  # a mistake, typed again
    type_pinyin(page, "men")
    tap_candidate(page, "门")
    description = page.get_by_role("textbox", name="请简单描述")
    expect(description).to_have_value("水管漏水，需要上门")
    assert_accessible(page)
    shoot(page, "keyboard-pinyin-zh")

    # The address: the keyboard moves under it.
    page.get_by_role("textbox", name="地址（楼栋、门牌号）").click()
    keyboard(page).get_by_role("button", name="ABC 123").click()
    tap_keys(page, "3")
    keyboard(page).get_by_role("button", name="拼音").click()
    type_pinyin(page, "dong")
    tap_candidate(page, "栋")
    expect(page.get_by_role("textbox", name="地址（楼栋、门牌号）")).to_have_value("3栋")

    data = send_help(page, kiosk)
    assert data["description"] == "水管漏水，需要上门"
    assert data["address"] == "3栋" and data["category"] == "repair"


def test_help_request_written_by_hand_with_a_quick_phrase(page, kiosk: Station) -> None:
    open_help_form(page, "维修")
    keyboard(page).get_by_role("button", name="手写").click()
    expect(keyboard(page).locator("canvas")).to_be_visible()
    for character in ("电", "工"):
        draw(page, CHARACTERS[character])
        tap_candidate(page, character)
        expect(keyboard(page).locator(".kb-candidates button")).to_have_count(0)  # pad cleared
    expect(page.get_by_role("textbox", name="请简单描述")).to_have_value("电工")
    assert_accessible(page)
    shoot(page, "keyboard-handwriting-zh")

    # A quick phrase of the chosen category: one tap, no typing.
    expect(page.get_by_role("button", name="需要上门陪诊")).to_be_hidden()  # home care's, not repair's
    page.get_by_role("button", name="电灯不亮").click()
    data = send_help(page, kiosk)
    assert data["description"] == "电工，电灯不亮"


def test_a_wrong_stroke_is_written_again(page, kiosk: Station) -> None:
    open_help_form(page, "居家照护")
    keyboard(page).get_by_role("button", name="手写").click()
    draw(page, CHARACTERS["工"][:1])
    expect(keyboard(page).locator(".kb-candidates button").first).to_be_visible()
    keyboard(page).get_by_role("button", name="重写").click()
    expect(keyboard(page).locator(".kb-candidates button")).to_have_count(0)
    draw(page, CHARACTERS["上"])
    tap_candidate(page, "上")
    page.get_by_role("button", name="需要上门陪诊").click()
    assert send_help(page, kiosk)["description"] == "上，需要上门陪诊"


def test_waybill_with_letters_typed_on_the_courier_screen(page, kiosk: Station) -> None:
    page.goto("/")
    page.get_by_role("link", name="快递员", exact=True).click()
    type_on_keypad(page, COURIER_CODE)
    page.get_by_role("button", name="下一步").click()
    waybill = page.get_by_label("运单号（手动输入或扫描面单）")
    # Focused on arrival: the keyboard is open, letters and digits, capitals on.
    expect(keyboard(page)).to_be_visible()
    expect(keyboard(page).get_by_role("button", name="ABC 123")).to_have_attribute("aria-pressed", "true")
    tap_keys(page, "SF")
    tap_keys(page, "1234567890")
    keyboard(page).get_by_role("button", name="删除").click()
    tap_keys(page, "0")
    expect(waybill).to_have_value("SF1234567890")
    assert_accessible(page)
    shoot(page, "keyboard-latin-waybill-zh")
    keyboard(page).get_by_role("button", name="完成").click()
    expect(keyboard(page)).to_be_hidden()
    page.get_by_role("button", name="下一步").click()
    expect(page.get_by_text("SF1234567890")).to_be_visible()  # the recipient step shows it
    type_on_keypad(page, PHONE)
    page.get_by_role("button", name="下一步").click()
    page.get_by_role("button", name="中号").click()
    door = page.locator("[data-live-when='state=door_open'] .door-number")
    expect(door).to_be_visible()
    # The parcel goes in and the door shuts: the waybill reaches the cloud as typed.
    board, lock = kiosk.door(int(door.inner_text()))
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    expect(page.locator("[data-live-when='state=deposited']")).to_be_visible()
    [deposited] = kiosk.outbox("parcel.deposited")
    assert deposited.data["waybill"] == "SF1234567890"


@pytest.mark.parametrize("viewport", [LANDSCAPE, PORTRAIT], ids=["1280x800", "1080x1920"])
@pytest.mark.parametrize("mode", ["拼音", "手写", "ABC 123"])
def test_keys_are_big_and_the_field_stays_in_view(page, kiosk: Station, viewport, mode) -> None:
    page.set_viewport_size(viewport)
    open_help_form(page, "代办跑腿")
    keyboard(page).get_by_role("button", name=mode).click()
    if mode == "拼音":
        type_pinyin(page, "mai")
        expect(keyboard(page).locator(".kb-candidates button").first).to_be_visible()
    sizes = page.evaluate("""[...document.querySelectorAll('#keyboard button, #keyboard canvas')]
        .filter(e => e.offsetParent !== null)
        .map(e => { const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.width, r.height]; })""")
    small = [s for s in sizes if s[1] < 60 or s[2] < 60]
    assert len(sizes) > 5 and not small, small
    cut = page.evaluate("""[...document.querySelectorAll('#keyboard button')].filter(e => e.offsetParent !== null)
        .filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent.trim())""")
    assert cut == [], cut  # every key's word shows whole
    field = page.get_by_role("textbox", name="请简单描述").bounding_box()
    board = keyboard(page).bounding_box()
    assert field["y"] >= 0 and field["y"] + field["height"] <= board["y"]  # not covered
    assert board["y"] + board["height"] <= viewport["height"]  # the whole keyboard on screen
    if viewport == LANDSCAPE:  # shoot() takes both sizes
        shoot(page, "keyboard-help-" + {"拼音": "pinyin", "手写": "handwriting"}.get(mode, "latin"))


def test_without_the_handwriting_model_the_key_says_so(page, kiosk: Station, tmp_path: Path) -> None:
    shared = kiosk.app.extensions["kiosk_ime"]
    kiosk.app.extensions["kiosk_ime"] = KeyboardBackends(shared.dictionary.path.parent,
                                                         tmp_path / "gone.model")
    open_help_form(page, "维修")
    keyboard(page).get_by_role("button", name="手写（不可用）").click()
    expect(keyboard(page).get_by_role("alert")).to_contain_text("本机暂时不能手写输入")
    keyboard(page).get_by_role("button", name="拼音").click()  # pinyin still works
    type_pinyin(page, "shui")
    tap_candidate(page, "水")
    expect(page.get_by_role("textbox", name="请简单描述")).to_have_value("水")


def test_in_english_the_keyboard_starts_with_letters_and_speaks_english(page, kiosk: Station) -> None:
    page.goto("/help/")
    page.get_by_role("button", name="English").click()
    page.get_by_role("radio", name="Repairs").click()
    page.get_by_role("textbox", name="Tell us briefly").click()
    expect(keyboard(page).get_by_role("button", name="ABC 123")).to_have_attribute("aria-pressed", "true")
    tap_keys(page, "tap")
    keyboard(page).get_by_role("button", name="Space").click()
    expect(page.get_by_role("textbox", name="Tell us briefly")).to_have_value("tap ")
    expect(keyboard(page).get_by_role("button", name="Handwriting")).to_be_visible()
    assert_accessible(page)


def test_the_handwriting_pad_stays_still_while_a_character_is_written(page) -> None:
    """The first candidates used to widen the help form's column; the page re-flowed and the
    pad moved under the pen, so the next stroke landed elsewhere (ADR 0129)."""
    open_help_form(page, "维修")
    keyboard(page).get_by_role("button", name="手写").click()
    canvas = keyboard(page).locator("canvas")
    before = canvas.bounding_box()
    scroll_before = page.evaluate("scrollY")
    strokes = CHARACTERS["电"]
    for count, stroke in enumerate(strokes, 1):
        draw(page, [stroke])
        expect(keyboard(page).locator(".kb-candidates")).to_have_attribute("data-for", f"strokes:{count}")
        assert canvas.bounding_box() == before, count
        assert page.evaluate("scrollY") == scroll_before, count
    tap_candidate(page, "电")
    expect(page.get_by_role("textbox", name="请简单描述")).to_have_value("电")


@pytest.mark.parametrize("viewport", [LANDSCAPE, PORTRAIT])
def test_writing_the_next_character_types_the_one_before(page, viewport) -> None:
    """Two characters drawn one after the other, no tap between them: the first stroke in the
    other box types the first candidate of the character before (ADR 0129)."""
    page.set_viewport_size(viewport)
    open_help_form(page, "维修")
    keyboard(page).get_by_role("button", name="手写").click()
    field = page.get_by_role("textbox", name="请简单描述")
    draw(page, CHARACTERS["电"], cell=0)
    candidates = keyboard(page).locator(".kb-candidates")
    expect(candidates).to_have_attribute("data-for", "strokes:5")
    expect(candidates.locator("button").first).to_have_text("电")
    expect(field).to_have_value("")  # nothing typed until the next character starts
    draw(page, CHARACTERS["工"][:1], cell=1)
    expect(field).to_have_value("电")
    draw(page, CHARACTERS["工"][1:], cell=1)
    expect(candidates).to_have_attribute("data-for", "strokes:3")
    draw(page, CHARACTERS["上"], cell=0)  # back to the left box: 工 goes in
    expect(field).to_have_value("电工")
    expect(candidates).to_have_attribute("data-for", "strokes:3")
    tap_candidate(page, "上")
    expect(field).to_have_value("电工上")
    if viewport == LANDSCAPE:
        shoot(page, "keyboard-handwriting-two-boxes-zh")
