"""What `edge diag` says, in one place: the technician's language (Chinese when the locale
is Chinese, English otherwise), times in the site's time zone, ages in words, and tables
that fit an 80-column SSH terminal without cutting a word.

The texts are a small table here rather than the kiosk's gettext catalogue: the CLI runs
without Flask or Babel's request context, and its few dozen phrases are read and changed
together with the commands that print them (ADR 0155)."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
from rich.table import Table
from rich.text import Text

# key -> (English, Chinese). Placeholders are str.format fields.
MESSAGES: dict[str, tuple[str, str]] = {
    # doors
    "doors.title": ("compartments (via {via})", "格口（{via}）"),
    "col.no": ("No.", "格口"),
    "col.lock": ("Lock", "锁位"),
    "col.size": ("Size", "尺寸"),
    "col.door": ("Door", "门"),
    "col.state": ("State", "状态"),
    "col.parcel": ("Parcel", "包裹"),
    "door.closed": ("shut", "关"),
    "door.open": ("open", "开"),
    "door.unknown": ("?", "?"),
    "door.item": ("+item", "有物"),
    "summary": ("{total} doors: free {free}, occupied {occupied}, faults {faults}, "
                "maintenance {maintenance}, overdue {overdue}",
                "共 {total} 格：空闲 {free}，占用 {occupied}，故障 {faults}，维护 {maintenance}，超期 {overdue}"),
    "shown": ("showing {shown} of {total}", "显示 {shown} / {total}"),
    "board.unreachable": ("board {board} unreachable: {error}", "锁板 {board} 无响应：{error}"),
    "fault.line": ("compartment {number} fault: {fault}", "{number} 号格口故障：{fault}"),
    "maintenance.line": ("compartment {number} out of service for maintenance: {reason}", "{number} 号格口停用维护：{reason}"),
    "overdue": ("overdue", "超期"),
    "maintenance.on": ("compartment {number} is out of service for maintenance ({reason}){inside} (via {via})",
                       "{number} 号格口已停用维护（{reason}）{inside}（经由{via}）"),
    "maintenance.inside": ("; the parcel inside stays collectable", "；格内包裹仍可取出"),
    "maintenance.off": ("compartment {number} is back in service (via {via})", "{number} 号格口已恢复使用（经由{via}）"),
    "maintenance.say_on_off": ("say on (out of service) or off (back in service)", "请写 on（停用）或 off（恢复）"),
    "maintenance.reason": ("--reason is required to take a compartment out of service", "停用格口须写明原因：--reason"),
    # states
    "state.free": ("free", "空闲"),
    "state.occupied": ("stored", "有包裹"),
    "state.deposit": ("depositing", "投递中"),
    "state.pickup": ("pickup open", "取件中"),
    "state.return": ("return open", "退回中"),
    "state.fault": ("fault", "故障"),
    "state.disabled": ("disabled", "已禁用"),
    "state.unknown": ("unknown", "未知"),
    "state.maintenance": ("maintenance", "维护"),
    "state.send": ("outgoing", "寄件"),
    # open
    "open.inside.parcel": ("compartment {number} holds a resident's parcel: phone {phone}, waybill {waybill}, "
                           "stored {age} (since {since})",
                           "{number} 号格口内有住户包裹：手机 {phone}，运单尾号 {waybill}，已存放 {age}（{since} 起）"),
    "open.inside.deposit": ("compartment {number}: a courier's deposit is in progress",
                            "{number} 号格口：快递员正在投递"),
    "open.inside.empty": ("compartment {number} is empty ({state})", "{number} 号格口为空（{state}）"),
    "open.confirm": ("Open compartment {number}?", "打开 {number} 号格口？"),
    "open.confirm_again": ("It holds a resident's parcel. Really open it? The opening is audited",
                           "格口内有住户包裹，确定要打开吗？此操作将被审计记录"),
    "open.not_interactive": ("not a terminal: add --yes to open compartment {number} without asking",
                             "非交互终端：如需不经确认打开 {number} 号格口，请加 --yes"),
    "open.declined": ("not opened", "未打开"),
    "open.done": ("compartment {number} is open (attempts {attempts}, via {via})",
                  "{number} 号格口已打开（尝试 {attempts} 次，{via}）"),
    "open.failed": ("compartment {number} did not open: {error}", "{number} 号格口未能打开：{error}"),
    "not_found": ("there is no compartment {number}", "没有 {number} 号格口"),
    # selftest
    "selftest.title": ("self-test (via {via})", "自检（{via}）"),
    "security.title": ("security", "安全检查"),
    "col.check": ("Check", "检查项"),
    "col.result": ("Result", "结果"),
    "col.detail": ("Detail", "详情"),
    "result.ok": ("ok", "正常"),
    "result.fail": ("FAIL", "失败"),
    "result.unknown": ("unknown", "未知"),
    # clear-fault, bus, events, scan, iris
    "clear.confirm": ("Put compartment {number} back in service?", "将 {number} 号格口恢复使用？"),
    "clear.done": ("compartment {number} is back in service", "{number} 号格口已恢复使用"),
    "bus.boards": ("configured boards: {configured}  answering: {answering}  (via {via})",
                   "已配置锁板：{configured}  响应：{answering}（{via}）"),
    "bus.missing": ("missing: {boards}", "无响应：{boards}"),
    "bus.unexpected": ("answering but not configured: {boards}", "有响应但未配置：{boards}"),
    "bus.error": ("bus error: {error}", "总线错误：{error}"),
    "bus.line": ("line since start: {counts}", "启动以来线路计数：{counts}"),
    "events.audit": ("audit (newest first, via {via}, {tz})", "审计记录（最新在前，{via}，{tz}）"),
    "events.outbox": ("outbox (newest first)", "待发/已发事件（最新在前）"),
    "col.time": ("Time", "时间"),
    "col.actor": ("Actor", "操作者"),
    "col.action": ("Action", "动作"),
    "col.target": ("Target", "对象"),
    "col.seq": ("Seq", "序号"),
    "col.type": ("Type", "类型"),
    "col.sent": ("Sent", "已发"),
    "col.data": ("Data", "数据"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "scan.title": ("QR decoding", "二维码识别"),
    "col.source": ("Source", "来源"),
    "col.found": ("Found", "识别结果"),
    "scan.none": ("(no code)", "（无码）"),
    "iris.title": ("iris camera", "虹膜摄像头"),
    "col.figure": ("Figure", "指标"),
    "col.value": ("Value", "值"),
    # how diag reached the locker
    "via.local bus": ("local bus", "本机总线"),
    "via.controller": ("controller", "控制器"),
    # ages
    "age.minutes": ("{m}m", "{m}分钟"),
    "age.hours": ("{h}h {m}m", "{h}小时{m}分"),
    "age.days": ("{d}d {h}h", "{d}天{h}小时"),
}

# Self-test check names as the checks report them (English, stable for --json) -> Chinese.
CHECK_NAMES_ZH: dict[str, str] = {
    "database writable": "数据库可写",
    "bus answers": "总线响应",
    "disk space": "磁盘空间",
    "cloud link": "云端连接",
    "last PUBACK": "最近一次 PUBACK",
    "outbox backlog": "待发事件积压",
    "clock synchronised": "时钟同步",
    "qr camera": "二维码摄像头",
    "iris camera": "虹膜摄像头",
}


# Self-test details are plain English figures (the same for --json and the cloud's diag.run);
# a Chinese terminal reads them through these fragments, applied in order. Anything not
# listed (an exception's text, a path) stays as it is.
DETAIL_ZH: list[tuple[str, str]] = [
    (r"^boards answering: ", "响应的锁板："), (r"^status read ok$", "状态读取正常"),
    (r" MiB free$", " MiB 可用"), (r"^mode (\d+), (\d+) bytes$", r"权限 \1，\2 字节"),
    (r" missing$", " 缺失"), (r" not created yet$", " 尚未创建"),
    (r"^no broker configured: events wait in the outbox$", "未配置云端代理：事件在待发队列中等待"),
    (r"^the controller is not running$", "控制器未运行"), (r"^connected$", "已连接"),
    (r"^not connected to the broker$", "未连接到云端代理"), (r"^never$", "从未"),
    (r"^(\d+) events, (\d+) KiB waiting", r"待发 \1 条，\2 KiB"), (r", oldest ", "，最早 "),
    (r"^unknown: neither timedatectl nor chrony answers$", "未知：timedatectl 与 chrony 均无应答"),
    (r"NTPSynchronized=yes$", "NTPSynchronized=yes（已同步）"),
    (r"NTPSynchronized=no$", "NTPSynchronized=no（未同步）"),
    (r"^none configured$", "未配置"), (r"^no frame \(unplugged, busy or wrong device\)$", "无画面（未连接、被占用或设备错误）"),
    (r"^frame ", "画面 "), (r"simulated", "模拟"), (r"^in use by a kiosk screen$", "正被自助屏使用"),
    (r"(\d+)d (\d+)h", r"\1天\2小时"), (r"(\d+)h (\d+)m", r"\1小时\2分"), (r"\b(\d+)m\b", r"\1分钟"),
    (r" ago\)", "前）"), (r" \(", "（"), (r"\)$", "）"),
]


# A door fault's reason as the driver or the locker wrote it (English), in Chinese words.
FAULT_ZH: list[tuple[str, str]] = [
    (r"^latch still closed after 2 unlock pulses \(jammed, or no lock power\?\)$",
     "开锁两次后门锁仍未打开（门卡住，或锁没有电？）"),
    (r"^latch still closed after the board-wide unlock$", "整板开锁后门锁仍未打开"),
    (r"^latch did not open$", "门锁未打开"),
    (r"^courier reported the door did not open$", "快递员报告柜门没有打开"),
]


def fault_words(reason: str) -> str:
    """A door fault's reason in the technician's language (see FAULT_ZH); one not known
    there is shown as written."""
    if not is_chinese():
        return reason
    for pattern, replacement in FAULT_ZH:
        if re.search(pattern, reason):
            return re.sub(pattern, replacement, reason)
    return reason


def detail_words(detail: str) -> str:
    """A check's detail in the technician's language (see DETAIL_ZH)."""
    if not is_chinese():
        return detail
    for pattern, replacement in DETAIL_ZH:
        detail = re.sub(pattern, replacement, detail)
    return detail


def is_chinese(environ: Mapping[str, str] | None = None) -> bool:
    """The POSIX order: LC_ALL wins, then LC_MESSAGES, then LANG; the first one set decides."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return value.lower().startswith("zh")
    return False


def t(key: str, *, chinese: bool | None = None, **fields: Any) -> str:
    """The phrase in the technician's language (chinese=False/True forces one)."""
    english, in_chinese = MESSAGES[key]
    return (in_chinese if (is_chinese() if chinese is None else chinese) else english).format(**fields)


def state_word(state: str) -> str:
    return t(f"state.{state}") if f"state.{state}" in MESSAGES else state


def check_name(name: str) -> str:
    """A self-test check's name in the technician's language ("board 1 reachable", "key x")."""
    if not is_chinese():
        return name
    if name in CHECK_NAMES_ZH:
        return CHECK_NAMES_ZH[name]
    if name.startswith("board ") and name.endswith(" reachable"):
        return f"锁板 {name.split()[1]} 可达"
    if name.startswith("key "):
        return f"密钥 {name[4:]}"
    return name


def local_time(stamp: str | datetime | None, tz_name: str) -> str:
    """An ISO UTC stamp (or aware datetime) as the site's wall clock, to the minute."""
    if stamp is None:
        return "-"
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(tz_name)).strftime("%Y-%m-%d %H:%M")


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut after a whole word (or JSON item) with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind(" "), head.rfind(","))
    return (head[:cut] if cut > limit // 2 else head).rstrip(" ,") + " …"


def age_words(seconds: float, *, chinese: bool | None = None) -> str:
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return t("age.days", d=days, h=hours, chinese=chinese)
    if hours:
        return t("age.hours", h=hours, m=minutes, chinese=chinese)
    return t("age.minutes", m=minutes, chinese=chinese)


def age_since(stamp: str | None, now: datetime | None = None) -> str:
    if stamp is None:
        return "-"
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return age_words(((now or datetime.now(timezone.utc)) - moment).total_seconds())


# --- doors ---------------------------------------------------------------------------------

def is_maintenance(row: Mapping[str, Any]) -> bool:
    """Out of service: the lifecycle's state, or a `maintenance` reason on the row."""
    return row.get("state") == "maintenance" or bool(row.get("maintenance"))


def is_occupied(row: Mapping[str, Any]) -> bool:
    return bool(row.get("parcel_state")) or row.get("state") == "deposit"


def is_fault(row: Mapping[str, Any]) -> bool:
    return bool(row.get("fault")) or row.get("state") == "fault"


def door_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counts for the summary line; a compartment may count in several (occupied and overdue)."""
    rows = list(rows)
    return {
        "total": len(rows),
        "free": sum(1 for r in rows if r.get("state") == "free" and not is_maintenance(r)),
        "occupied": sum(1 for r in rows if is_occupied(r)),
        "faults": sum(1 for r in rows if is_fault(r)),
        "maintenance": sum(1 for r in rows if is_maintenance(r)),
        "overdue": sum(1 for r in rows if r.get("overdue")),
    }


def filter_doors(rows: Iterable[Mapping[str, Any]], *, occupied: bool = False, faults: bool = False,
                 overdue: bool = False, maintenance: bool = False) -> list[Mapping[str, Any]]:
    """Rows matching any filter given (none given: all rows)."""
    tests = [test for wanted, test in ((occupied, is_occupied), (faults, is_fault),
                                       (overdue, lambda r: bool(r.get("overdue"))),
                                       (maintenance, is_maintenance)) if wanted]
    return [row for row in rows if not tests or any(test(row) for test in tests)]


def parcel_words(row: Mapping[str, Any], now: datetime | None = None) -> str:
    """A stored parcel as `138****8000 …1234 2d 3h`: masked phone, waybill tail and age."""
    parcel = row.get("parcel")
    if not parcel:
        return "-"
    age = age_words(parcel["age_s"]) if "age_s" in parcel else age_since(parcel.get("deposited_at"), now)
    words = [parcel.get("phone_masked") or "?", f"…{parcel.get('waybill_tail') or '?'}", age]
    if row.get("overdue"):
        words.append(t("overdue"))
    return " ".join(words)


def _door_words(row: Mapping[str, Any]) -> str:
    latch = t(f"door.{row['latch']}") if f"door.{row['latch']}" in MESSAGES else str(row["latch"])
    return latch + (t("door.item") if row.get("item") else "")


def cells(*values: Any) -> list[Text]:
    """Table cells as plain text: a waybill, a reason or an error is never read as markup."""
    return [Text(str(value)) for value in values]


def compact_table(title: str) -> Table:
    """No outer edge, one space between columns: seven columns in 80 characters."""
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True,
                 pad_edge=False, title_justify="left")


def doors_table(rows: Iterable[Mapping[str, Any]], via: str, now: datetime | None = None) -> Table:
    """One line per compartment. A long cell wraps at spaces (a word too long for its column
    is folded, never dropped); faults' sentences go below the table (door_notes)."""
    table = compact_table(t("doors.title", via=t(f"via.{via}")))
    table.add_column(t("col.no"), justify="right", no_wrap=True)
    table.add_column(t("col.lock"), no_wrap=True)
    table.add_column(t("col.size"), no_wrap=True)
    table.add_column(t("col.door"), no_wrap=True)
    table.add_column(t("col.state"), overflow="fold")
    table.add_column(t("col.parcel"), overflow="fold", min_width=26)
    for row in rows:
        state = "maintenance" if is_maintenance(row) and row.get("state") == "free" else row["state"]
        table.add_row(*cells(row["number"], f"{row['board']}-{row['lock'] + 1}", row["size"], _door_words(row),
                             state_word(state), parcel_words(row, now)))
    return table


def door_notes(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """A line for each fault and each compartment out of service, in full words."""
    notes = []
    for row in rows:
        if row.get("fault"):
            notes.append(t("fault.line", number=row["number"], fault=fault_words(row["fault"])))
        if row.get("maintenance"):
            notes.append(t("maintenance.line", number=row["number"], reason=row["maintenance"]))
    return notes


def checks_table(checks: Iterable[Mapping[str, Any]], title: str) -> Table:
    table = compact_table(title)
    table.add_column(t("col.check"), overflow="fold")
    table.add_column(t("col.result"), no_wrap=True)
    table.add_column(t("col.detail"), overflow="fold")
    for check in checks:
        ok = None if check["ok"] is None else bool(check["ok"])
        word, colour = {True: ("result.ok", "green"), False: ("result.fail", "red"),
                        None: ("result.unknown", "yellow")}[ok]
        name, detail = cells(check_name(check["check"]), detail_words(str(check["detail"])))
        table.add_row(name, Text(t(word), style=colour), detail)
    return table
