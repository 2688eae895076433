"""harness.machines.machine and harness.machines.lab on real nspawn machines cloned from the
bootstrap snapshot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.errors import CheckFailed, HarnessError, UsageError
from harness.core.names import LabName
from harness.core.wait import retry
from harness.machines import records
from harness.machines.lab import Lab, MachineSetup
from harness.machines.machine import Machine
from harness.machines.nspawn import MachineSpec, find_leader
from harness.machines.store import Store
from tests.conftest import NOTHING, lan, traces_of


def test_nspawn_command_line_never_uses_the_host_network() -> None:
    spec = MachineSpec("gw", Path("/r"), "harness-x-gw")
    argv = spec.nspawn_argv()
    assert "--private-network" in argv and "--register=no" in argv and "--keep-unit" in argv
    spec = MachineSpec("gw", Path("/r"), "harness-x-gw", netns=Path("/run/netns/harness-x-gw"))
    argv = spec.nspawn_argv()
    assert "--network-namespace-path=/run/netns/harness-x-gw" in argv
    assert "--capability=CAP_NET_ADMIN,CAP_NET_RAW" in argv
    assert "--private-network" not in argv


def test_a_machine_that_died_under_its_run_says_how_and_who_took_its_lab(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Dead:  # nspawn's terminal, once nspawn was killed
        pid, exitstatus, signalstatus = 4242, None, 9

        def isalive(self) -> bool:
            return False

    spec = MachineSpec("web", tmp_path, str(LabName("ab12cd34", "web")))
    machine = Machine(spec, console_log=tmp_path / "console")
    with pytest.raises(HarnessError, match="web is not running: start it first"):
        machine.run("true")
    machine._terminal, machine.leader = Dead(), 4243  # type: ignore[assignment]
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    monkeypatch.setattr(records, "DESTROYED_LOG", tmp_path / "destroyed.log")
    records._note_destroyed("ab12cd34", {"pid": 1}, "`harness destroy --all`")
    with pytest.raises(HarnessError) as said:
        machine.run("true")
    assert str(said.value).startswith("machine web died under this run (systemd-nspawn: killed by signal 9); "
                                      "its lab was destroyed at ")
    assert str(said.value).split("\n")[0].endswith("`harness destroy --all`; console ends:")


def test_find_leader_of_a_process_without_children() -> None:
    assert find_leader(1 << 22) is None




@pytest.fixture
def pair(make_lab, base):  # type: ignore[no-untyped-def]
    """Two machines, a (10.77.0.1) and b (10.77.0.2), on one bridge."""
    a, b = lan("a", "b")
    return make_lab([MachineSetup("a", base, (a,)), MachineSetup("b", base, (b,))])


@pytest.mark.integration
def test_two_machines_on_one_bridge_ping_each_other(pair: Lab) -> None:
    assert "1 received" in pair["a"].succeed("ping -c1 -W5 10.77.0.2")
    assert "1 received" in pair["b"].succeed("ping -c1 -W5 10.77.0.1")


@pytest.mark.integration
def test_testinfra_sees_each_address_on_its_interface(pair: Lab) -> None:
    for name, address in (("a", "10.77.0.1"), ("b", "10.77.0.2")):
        host = pair[name].host
        assert address in host.interface("host0").addresses
        assert host.interface("host0").link[0]["address"] == f"02:00:00:00:00:0{address[-1]}"
        assert host.backend.get_pytest_id() == f"nspawn://{name}"


@pytest.mark.integration
def test_machine_sees_its_own_name_and_is_booted_by_systemd(pair: Lab) -> None:
    assert pair["a"].succeed("hostname").strip() == "a"
    assert pair["a"].host.service("systemd-journald").is_running
    assert pair["a"].succeed("systemctl is-system-running").strip() in ("running", "degraded")


@pytest.mark.integration
def test_each_machine_has_a_cgroup_of_its_own(pair: Lab) -> None:
    # Shared cgroups let one machine's systemd see, and at shutdown kill, another's processes.
    groups = {name: Path(f"/proc/{pair[name].leader}/cgroup").read_text() for name in ("a", "b")}
    assert f"harness-{pair.id}-a/payload" in groups["a"]
    assert f"harness-{pair.id}-b/payload" in groups["b"]


@pytest.mark.integration
def test_console_login_runs_a_command(pair: Lab) -> None:
    with pair["b"].console() as tty:
        tty.login("root")
        assert tty.shell("echo $((6*7)); hostname") == "42\nb"
        assert tty.shell("id -un") == "root"


@pytest.mark.integration
def test_a_console_left_in_a_shell_inside_a_shell_takes_the_next_login(pair: Lab) -> None:
    # A session that ends logged in (a shell, and a shell started inside it) leaves them on the
    # console; the next session exits both before it types its name (a contestant's console
    # test found `harness# ` where it waited for `login:` after a rooms test).
    with pair["a"].console() as tty:
        tty.login("root")
        tty.sendline("bash --norc")
        tty.shell("PS1='harness''# '")
    with pair["a"].console() as tty:
        tty.login("root")
        assert tty.shell("ps -o comm= -t \"$(tty)\" | grep -c bash") == "1"  # one shell: a fresh login


@pytest.mark.integration
def test_succeed_fail_execute(pair: Lab) -> None:
    a = pair["a"]
    assert a.succeed("echo hi") == "hi\n"
    assert a.execute("echo out; exit 4") == (4, "out\n")
    assert a.fail("false") == ""
    with pytest.raises(CheckFailed, match=r"a: command `ls /nonexistent` failed \(exit code 2\):"
                                          r" .*No such file"):
        a.succeed("ls /nonexistent")
    with pytest.raises(CheckFailed, match="unexpectedly succeeded"):
        a.fail("true")


@pytest.mark.integration
def test_waits_succeed_on_the_condition(pair: Lab) -> None:
    a = pair["a"]
    a.wait_for_unit("systemd-journald.service", timeout=10)
    a.succeed("systemd-run --unit=later sh -c 'sleep 1; touch /run/ready'")
    assert a.wait_until_succeeds("cat /run/ready && echo there", timeout=20) == "there\n"


@pytest.mark.integration
def test_wait_for_open_port_timeout_shows_what_listens(pair: Lab) -> None:
    with pytest.raises(CheckFailed, match=r"waiting for a: TCP :9 to be listening; listening now:"):
        pair["a"].wait_for_open_port(9, timeout=1)


@pytest.mark.integration
def test_wait_for_unit_fails_at_once_on_a_failed_unit(pair: Lab) -> None:
    a = pair["a"]
    a.execute("systemd-run --unit=doomed sh -c 'echo dying; exit 3'")
    start = time.monotonic()
    with pytest.raises(CheckFailed, match=r"(?s)gave up waiting for a: unit doomed.service to be active:"
                                          r" doomed.service failed:.*status=3"):
        a.wait_for_unit("doomed.service", timeout=60)
    assert time.monotonic() - start < 30


@pytest.mark.integration
def test_wait_until_succeeds_timeout_shows_last_result(pair: Lab) -> None:
    with pytest.raises(CheckFailed, match=r"`cat /nope` to succeed; last exit code 1: .*No such file"):
        pair["a"].wait_until_succeeds("cat /nope", timeout=1)


@pytest.mark.integration
def test_journal_since(pair: Lab) -> None:
    a = pair["a"]
    mark = time.time()
    a.succeed("logger -t harness-test journal-mark-1")
    a.wait_until_succeeds("journalctl -t harness-test | grep -q journal-mark-1", timeout=10)
    assert "journal-mark-1" in a.journal(since=mark - 1)
    assert "journal-mark-1" not in a.journal(since=time.time() + 3600)


@pytest.mark.integration
def test_wait_for_journal_sees_only_what_comes_after_the_cursor(pair: Lab) -> None:
    a = pair["a"]
    a.succeed("logger -t harness-test ready-mark")
    a.wait_for_journal("ready-mark", timeout=10)  # of this boot, without a cursor
    cursor = a.journal_cursor()
    with pytest.raises(CheckFailed, match=r"`ready-mark` in the journal.*its last lines:"):
        a.wait_for_journal("ready-mark", after=cursor, timeout=1)  # said before the cursor
    a.succeed("logger -t harness-test ready-mark")
    a.wait_for_journal("ready-mark", after=cursor, timeout=10)


@pytest.mark.integration
def test_stopping_the_lab_leaves_nothing_behind(harness_store: Store, base: Path,
                                                 tmp_path: Path) -> None:
    a, b = lan("a", "b", prefix="10.78.0")
    lab = Lab(harness_store, [MachineSetup("a", base, (a,)), MachineSetup("b", base, (b,))],
              log_dir=tmp_path)
    work = harness_store.root / "work" / lab.id
    with lab:
        during = traces_of(lab.id, work)
        assert len(during.nspawn) == 2 and len(during.namespaces) == 3
        assert during.clones == ("a", "b")
        leader = lab["a"].leader
    assert traces_of(lab.id, work) == NOTHING
    assert not Path(f"/proc/{leader}").exists()
    assert not work.exists()
    assert "running in system mode" in (tmp_path / lab.id / "a.console").read_text()  # console was logged


@pytest.mark.integration
def test_interrupt_during_boot_leaves_nothing_behind(harness_store: Store, base: Path,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.machines import machine

    def interrupted(self: machine.Machine, timeout: float | None = None) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(machine.Machine, "wait_ready", interrupted)
    lab = Lab(harness_store, [MachineSetup("a", base, tuple(lan("a", prefix="10.79.0")))],
              log_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        lab.__enter__()
    assert traces_of(lab.id, harness_store.root / "work" / lab.id) == NOTHING


@pytest.mark.integration
def test_an_aborted_boot_ends_at_once_and_leaves_nothing_behind(harness_store: Store, base: Path,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`Lab.abort` from another thread (a session closing while a spare lab boots): the machines
    are killed, the waits on them fail at once, not at the boot deadline, and the booting
    thread tears everything down."""
    from harness.machines import machine

    aborted = threading.Event()
    original = machine.Machine.wait_ready

    def after_the_abort(self: machine.Machine, timeout: float | None = None) -> str:
        aborted.wait(30)  # the machine is spawned; its wait begins once the abort has landed
        return original(self, timeout)

    monkeypatch.setattr(machine.Machine, "wait_ready", after_the_abort)
    a, b = lan("a", "b", prefix="10.78.0")
    lab = Lab(harness_store, [MachineSetup("a", base, (a,)), MachineSetup("b", base, (b,))],
              log_dir=tmp_path, boot_timeout=600)
    failure: list[BaseException] = []

    def enter() -> None:
        try:
            lab.__enter__()
        except BaseException as exc:
            failure.append(exc)

    booting = threading.Thread(target=enter)
    booting.start()
    retry(lambda last: bool(lab.machines), 60, "the first machine to be spawned")
    lab.abort()
    aborted.set()
    booting.join(120)
    assert not booting.is_alive(), "the aborted boot waited on (its deadline is 600 s)"
    assert failure and isinstance(failure[0], HarnessError), failure
    assert "exited" in str(failure[0]) or "aborted" in str(failure[0]), failure[0]
    assert traces_of(lab.id, harness_store.root / "work" / lab.id) == NOTHING


@pytest.fixture
def no_init(harness_store: Store) -> Iterator[Path]:
    """A root that looks like an OS but has no init: nspawn exits at once."""
    owner = f"test-noinit-{time.monotonic_ns()}"
    root = harness_store.create(harness_store.work_path(owner, "src"))
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text("ID=broken\n")
    yield root
    harness_store.release(owner)


@pytest.mark.integration
def test_a_root_that_cannot_boot_fails_in_time_with_its_console(harness_store: Store, no_init: Path,
                                                                tmp_path: Path) -> None:
    lab = Lab(harness_store, [MachineSetup("x", no_init)], boot_timeout=15, log_dir=tmp_path)
    start = time.monotonic()
    with pytest.raises(HarnessError) as info:
        lab.__enter__()
    assert time.monotonic() - start < 30
    assert "machine x did not boot" in str(info.value)
    assert "execv(/usr/lib/systemd/systemd" in str(info.value)  # the console says why


@pytest.mark.integration
def test_a_lab_names_every_machine_that_did_not_boot(harness_store: Store, base: Path, no_init: Path,
                                                      tmp_path: Path) -> None:
    setups = [MachineSetup(name, source) for name, source in
              (("ok1", base), ("bad1", no_init), ("ok2", base), ("bad2", no_init))]
    lab = Lab(harness_store, setups, log_dir=tmp_path, max_booting=2)  # the bad fail at once
    with pytest.raises(HarnessError) as info:
        lab.__enter__()
    first = str(info.value).splitlines()[0]
    assert first == f"lab {lab.id}: boot: 2 of 4 machine(s) failed: bad1, bad2"
    assert traces_of(lab.id, harness_store.root / "work" / lab.id) == NOTHING


SS = """\
UNCONN 0      0      192.168.1.254:53        0.0.0.0:*
LISTEN 0      244          0.0.0.0:5432 0.0.0.0:*
LISTEN 0      4096   127.0.0.53%lo:53   0.0.0.0:*
LISTEN 0      511             [::]:80      [::]:*
UNCONN 0      0      [2001:db8:1::1:fe]:547  [::]:*
UNCONN 0      0      [fe80::c0:a8ff:fe01:fe]%lan0:547  [::]:*
"""


@pytest.mark.parametrize("port, address, expected", [
    (53, "192.168.1.254", True), (53, "10.0.0.254", False), (53, "127.0.0.53", True),
    (5432, "192.168.1.100", True), (80, "192.168.1.100", True), (22, None, False), (80, None, True),
    (547, "2001:db8:1::1:fe", True), (547, "fe80::c0:a8ff:fe01:fe", True), (547, "2001:db8:1::1", False),
    (80, "2001:db8:1::1:64", True),
])
def test_listening_on_counts_wildcard_sockets(port: int, address: str | None, expected: bool) -> None:
    from harness.machines.sockets import listening_on

    assert listening_on(SS, port, address) is expected


def test_a_cursor_is_read_from_what_journalctl_shows() -> None:
    from harness.machines.commands import parse_cursor

    assert parse_cursor("-- No entries --\n-- cursor: s=bf53;i=ef9;b=4a03;m=5dc0;t=6620;x=fa30\n") == \
        "s=bf53;i=ef9;b=4a03;m=5dc0;t=6620;x=fa30"
    with pytest.raises(CheckFailed, match="printed no cursor: nothing"):
        parse_cursor("")


@pytest.mark.integration
def test_machines_that_boot_a_tree_read_only_share_it_and_keep_their_writes_apart(
        harness_store: Store, base: Path, tmp_path: Path) -> None:
    a, b = lan("a", "b")
    overlay = ("--volatile=overlay",)
    setups = [MachineSetup("tree", base, boot=False), MachineSetup("a", base, (a,), overlay, shares="tree"),
              MachineSetup("b", base, (b,), overlay, shares="tree")]
    lab = Lab(harness_store, setups, log_dir=tmp_path)
    with lab:
        work = harness_store.root / "work" / lab.id
        assert sorted(p.name for p in work.iterdir() if p.is_dir()) == ["tree"]  # one clone for three
        assert lab.root("a") == lab.root("b") == work / "tree"
        for name in ("a", "b"):
            lab[name].succeed(f"echo {name} > /etc/mark")
        assert lab["a"].succeed("cat /etc/mark").strip() == "a"
        assert lab["b"].succeed("cat /etc/mark").strip() == "b"
        assert not (work / "tree/etc/mark").exists()  # writes go to each machine's overlay
        lab.stop("a")  # one leaves: the tree's lock stays held by the other, which boots again
        assert "1 received" in lab["b"].succeed("ping -c1 -W5 10.77.0.2")
        lab.boot(["a"])
        lab["a"].fail("cat /etc/mark")  # a fresh overlay: a diskless machine's reboot
    assert traces_of(lab.id, harness_store.root / "work" / lab.id) == NOTHING


def test_a_machine_shares_only_a_tree_it_boots_read_only(harness_store: Store, base: Path) -> None:
    with pytest.raises(UsageError, match="machine a shares 'tree', which must be a tree of the lab"):
        Lab(harness_store, [MachineSetup("tree", base, boot=False), MachineSetup("a", base, shares="tree")])
    with pytest.raises(UsageError, match="machine a shares 'b'"):
        Lab(harness_store, [MachineSetup("b", base), MachineSetup("a", base, extra_args=("--read-only",),
                                                                  shares="b")])


def test_a_machine_id_is_given_to_its_init_after_every_option() -> None:
    spec = MachineSpec("seat1", Path("/r"), "u", extra_args=("--volatile=overlay",), machine_id="ab" * 16)
    assert spec.nspawn_argv()[-2:] == ["--volatile=overlay", f"systemd.machine_id={'ab' * 16}"]
    assert not any("machine_id" in a for a in MachineSpec("gw", Path("/r"), "u").nspawn_argv())
