"""`edge diag` for the technician: Chinese when the locale is Chinese, English otherwise;
the doors summary and filters on an 80-column terminal; stored parcels shown as masked
phone, waybill tail and age; times in the site's time zone; `diag open` asking again, on a
real pseudo-terminal, when a resident's parcel is inside."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from edge.cli import app
from edge.diag_text import door_summary, filter_doors, is_chinese, local_time
from edge.locker.models import Parcel
from tests.support.cli import logs_on_stderr, serving  # noqa: F401 - fixture
from tests.support.station import audits, deposit_parcel

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("logs_on_stderr")]
runner = CliRunner()
ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": "", "COLUMNS": "80", "LINES": "24"}
EN = {"LANG": "en_US.UTF-8", "LC_ALL": "", "LC_MESSAGES": "", "COLUMNS": "80", "LINES": "24"}


@pytest.fixture
def served(controller, sim):
    with serving(controller) as port:
        yield {"EDGE_DATA_DIR": str(controller.settings.data_dir), "EDGE_LOCKER__SERIAL_URL": sim.url,
               "EDGE_LOCKER__BOARDS": "0,1", "EDGE_HTTP__PORT": str(port)}


def diag(env, *args):
    return runner.invoke(app, ["diag", *args], env=env)


def widest_line(text: str) -> int:
    return max(cell_len(line) for line in text.splitlines())


def test_the_locale_decides_the_language_in_posix_order():
    assert is_chinese({"LANG": "zh_CN.UTF-8"}) and is_chinese({"LC_MESSAGES": "zh_TW", "LANG": "en_US"})
    assert not is_chinese({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"})
    assert not is_chinese({"LANG": "C.UTF-8"}) and not is_chinese({})
    assert local_time("2026-11-21T08:00:00.000Z", "Asia/Shanghai") == "2026-11-21 16:00"


def test_doors_summary_filter_and_parcel_facts_in_both_locales(controller, client, courier, sim, served,
                                                                fake_clock):
    spec, deposited = deposit_parcel(controller, client, courier, sim, waybill="SF1234567890")
    number = deposited["compartment"]
    fake_clock.advance(days=2, hours=3)
    faulty = 10 if number != 10 else 11
    sim.jam(0, faulty - 1)
    assert diag(served, "open", str(faulty), "--yes").exit_code == 1  # a fault: the jammed door

    zh = diag({**served, **ZH}, "doors")
    assert zh.exit_code == 0, zh.output
    assert "共 32 格：空闲 30，占用 1，故障 1，维护 0，超期 0" in zh.stdout
    assert widest_line(zh.stdout) <= 80
    parcel_line = next(line for line in zh.stdout.splitlines() if line.strip().startswith(f"{number} "))
    assert "138****5678" in parcel_line and "…7890" in parcel_line and "2天3小时" in parcel_line
    assert "有包裹" in parcel_line  # the state in Chinese words, on the same line (nothing cut)

    en = diag({**served, **EN}, "doors", "--occupied")
    assert en.exit_code == 0, en.output
    assert "32 doors: free 30, occupied 1, faults 1, maintenance 0, overdue 0" in en.stdout
    assert "showing 1 of 32" in en.stdout and widest_line(en.stdout) <= 80
    rows = [line for line in en.stdout.splitlines() if re.match(r"\s*\d+ +\d-\d+ ", line)]
    assert len(rows) == 1 and "138****5678 …7890 2d 3h" in rows[0]
    assert len(en.stdout.splitlines()) <= 24  # a filtered view fits the terminal

    faults = json.loads(diag(served, "doors", "--faults", "--json").stdout)
    assert [c["number"] for c in faults["compartments"]] == [faulty] and faults["summary"]["faults"] == 1
    with controller.db.write() as s:
        s.query(Parcel).update({Parcel.overdue: True})
    overdue = diag({**served, **ZH}, "doors", "--overdue")
    assert "超期 1" in overdue.stdout and "显示 1 / 32" in overdue.stdout
    either = json.loads(diag(served, "doors", "--overdue", "--faults", "--json").stdout)
    assert sorted(c["number"] for c in either["compartments"]) == sorted([number, faulty])
    # the phone stays masked in every form
    assert "13812345678" not in zh.stdout + en.stdout + json.dumps(faults)


def test_maintenance_rows_count_and_filter():
    """The out-of-service state (its own branch of work) counts by its state or its reason."""
    rows = [{"number": 1, "state": "free"}, {"number": 2, "state": "maintenance", "maintenance": "hinge"},
            {"number": 3, "state": "occupied", "parcel_state": "stored", "maintenance": "lock sticks"}]
    assert door_summary(rows) == {"total": 3, "free": 1, "occupied": 1, "faults": 0, "maintenance": 2,
                                  "overdue": 0}
    assert [r["number"] for r in filter_doors(rows, maintenance=True)] == [2, 3]
    assert [r["number"] for r in filter_doors(rows)] == [1, 2, 3]


def spawn_diag(env: dict[str, str], *args: str) -> pexpect.spawn:
    edge = shutil.which("edge", path=str(Path(sys.executable).parent)) or "edge"
    full_env = {**os.environ, **env, "PYTHONIOENCODING": "utf-8"}
    return pexpect.spawn(edge, ["diag", *args], env=full_env, encoding="utf-8", timeout=60,
                         dimensions=(24, 80))


def test_open_names_the_parcel_and_asks_again_on_a_terminal(controller, client, courier, sim, served,
                                                            fake_clock):
    spec, deposited = deposit_parcel(controller, client, courier, sim, waybill="SF1234567890")
    number = str(deposited["compartment"])
    since = local_time(fake_clock.now(), "Asia/Shanghai")

    declined = spawn_diag({**served, **ZH}, "open", number, "--who", "tech-zhao")
    declined.expect("内有住户包裹：手机 138\\*\\*\\*\\*5678，运单尾号 …7890")
    day, minute = since.split()  # the sentence may wrap at the space between them on 80 columns
    declined.expect(f"（{day}\\s+{minute} 起）")
    declined.expect(f"打开 {number} 号格口？")
    declined.sendline("y")
    declined.expect("确定要打开吗？")
    declined.sendline("n")
    declined.expect(pexpect.EOF)
    declined.close()
    assert declined.exitstatus == 1 and not sim.is_open(spec.board, spec.lock)
    assert not [a for a in audits(controller.db, "door_open") if a.actor == "technician"]

    accepted = spawn_diag({**served, **EN}, "open", number, "--who", "tech-zhao")
    accepted.expect("holds a resident's parcel: phone 138\\*\\*\\*\\*5678, waybill …7890")
    accepted.expect(f"Open compartment {number}\\?")
    accepted.sendline("y")
    accepted.expect("Really open it\\?")
    accepted.sendline("y")
    accepted.expect(f"compartment {number} is open")
    accepted.expect(pexpect.EOF)
    accepted.close()
    assert accepted.exitstatus == 0 and sim.is_open(spec.board, spec.lock)
    assert audits(controller.db, "door_open")[-1].actor_id == "tech-zhao"


def test_open_of_an_empty_door_asks_once_and_refuses_off_a_terminal(controller, sim, served):
    refused = diag({**served, **ZH}, "open", "7")
    assert refused.exit_code == 2 and "--yes" in refused.output and "非交互终端" in refused.output
    assert not sim.is_open(0, 6)

    once = spawn_diag({**served, **EN}, "open", "7")
    once.expect("compartment 7 is empty \\(free\\)")
    once.expect("Open compartment 7\\?")
    once.sendline("y")
    once.expect("compartment 7 is open")
    once.expect(pexpect.EOF)
    once.close()
    assert once.exitstatus == 0 and sim.is_open(0, 6)


def test_selftest_reports_the_station_checks_through_the_controller(controller, served):
    checks = json.loads(diag(served, "selftest", "--json").stdout)
    by_name = {c["check"]: c for c in checks}
    for name in ("database writable", "key pickup_code.key", "bus answers", "board 0 reachable", "disk space",
                 "cloud link", "last PUBACK", "outbox backlog", "clock synchronised", "qr camera",
                 "iris camera"):
        assert name in by_name, name
    assert by_name["cloud link"]["ok"] is None and "no broker" in by_name["cloud link"]["detail"]
    assert by_name["outbox backlog"]["ok"] is True and "events" in by_name["outbox backlog"]["detail"]
    assert by_name["clock synchronised"]["ok"] in (True, False, None)
    if by_name["clock synchronised"]["ok"] is None:
        assert by_name["clock synchronised"]["detail"].startswith("unknown")
    assert by_name["qr camera"]["ok"] is None and by_name["qr camera"]["detail"] == "none configured"

    zh = diag({**served, **ZH}, "selftest")
    assert "云端连接" in zh.stdout and "待发事件积压" in zh.stdout and "时钟同步" in zh.stdout
    assert "自检（控制器）" in zh.stdout and widest_line(zh.stdout) <= 80
    assert "状态读取正常" in zh.stdout and "待发 0 条" in zh.stdout and "未配置云端代理" in zh.stdout
    assert "status read ok" not in zh.stdout
    en = diag({**served, **EN}, "selftest")
    assert "cloud link" in en.stdout and "self-test (via controller)" in en.stdout


def test_events_show_site_times_and_cut_data_only_between_words(controller, sim, served, fake_clock):
    opened = diag({**served, **EN}, "open", "4", "--yes", "--who", "tech-sun")
    assert opened.exit_code == 0 and "compartment 4 is empty (free)" in opened.stdout  # --yes: named, not asked
    stamp = local_time(fake_clock.now(), "Asia/Shanghai")  # the fake clock's 08:00 UTC is 16:00 there
    zh = diag({**served, **ZH}, "events")
    assert zh.exit_code == 0, zh.output
    assert "审计记录" in zh.stdout and "Asia/Shanghai" in zh.stdout
    assert stamp.split()[1] in zh.stdout and "tech-sun" in zh.stdout
    assert "08:00" not in zh.stdout  # no UTC time in the human view
    raw = json.loads(diag(served, "events", "--json").stdout)
    assert raw["audit"][0]["ts"].startswith("2026-11-21T08:00")  # --json keeps UTC for machines

    from edge.diag_text import shorten

    assert shorten('{"compartment": 12, "reason": "hinge replaced today"}', 40) == '{"compartment": 12, "reason": "hinge …'
    assert shorten("short", 40) == "short"


def test_data_in_a_table_is_never_read_as_markup():
    from rich.console import Console

    from edge.diag_text import doors_table

    row = {"number": 1, "board": 0, "lock": 0, "size": "M", "latch": "closed", "item": True,
           "state": "occupied", "parcel_state": "stored", "overdue": False,
           "parcel": {"phone_masked": "138****5678", "waybill_tail": "[red]", "age_s": 60}}
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(doors_table([row], "local bus"))
    assert "…[red]" in console.export_text()
