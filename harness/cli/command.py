"""The ``harness`` command: look at the store, build stages, run labs by hand, move snapshots.

Every error is one line on stderr (``harness: error: ...``) saying what to do, exit code 2.
A snapshot is named either by stage (``gw``: its snapshot for the stages as they are
now) or in full (``gw/1a2b...``, ``failed/scenarios-test_dns.py-test_x``).
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.cli import args as cli_args
from harness.cli import impair as cli_impair
from harness.cli import labs as cli_labs
from harness.cli import snapshots as cli_snapshots
from harness.core import log, proc, settings
from harness.core.errors import HarnessError, UsageError
from harness.engine import host
from harness.engine import init as project_init
from harness.machines import lab

# -- projects and builds (snapshot verbs: harness.cli.snapshots; lab verbs: harness.cli.labs) ---


def cmd_init(args: argparse.Namespace) -> int:
    """Write a new project (machines, script stages, scenarios) that passes pytest as it is."""
    directory = Path(args.directory)
    for path in project_init.init(directory, args.template):
        print(f"wrote {path}")
    print(f"next: cd {directory} && pytest   (the first run builds the lab; later ones reuse it)")
    return 0


def cmd_setup_host(args: argparse.Namespace) -> int:
    """Install and check what the host needs (packages, limits, package cache, store); say what changed."""
    run = cli_args.run_settings(args)
    outcome = host.setup(report=args.report, check=args.check, machines=args.machines,
                         store=run.store, store_size=run.store_size)
    for line in outcome.changed:
        print(f"changed  {line}")
    for line in outcome.fine:
        print(f"ok       {line}")
    for line in outcome.missing:
        print(f"missing  {line}")
    for line in outcome.warnings:
        print(f"warning  {line}")
    if outcome.missing:
        again = ["harness", *(["--store", run.store] if run.store else []), "setup-host",
                 *(["--report"] if args.report else []), f"--machines={args.machines}"]
        print(f"harness: error: the host lacks what is listed as missing: run `{shlex.join(again)}` "
              "as root to set it up", file=sys.stderr)
        return 1
    if not args.check:
        print("host set up: nothing changed" if not outcome.changed else
              f"host set up: {len(outcome.changed)} change(s)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Build every stage up to --until (default: the last), reusing cached snapshots."""
    from harness.engine.build.builder import Builder  # imported when used: other verbs start faster
    pipeline = cli_args.pipeline(args)
    builder = Builder(cli_args.store(args), pipeline, project=cli_args.project_root())
    snap = builder.ensure(args.until or pipeline.names[-1], rebuild=args.rebuild)
    print(f"{snap.name} ready at {snap.path}")
    return 0


def cmd_mutate(args: argparse.Namespace) -> int:
    """Run the scenarios against every mutant (or those matching -k): which test killed each, or SURVIVED."""
    # imported when used: other verbs start faster
    from harness.engine import mutate
    from harness.engine.build.builder import Builder
    pipeline = cli_args.pipeline(args)
    chosen = [(pipeline.mutant(name)[0], m) for name, m in pipeline.mutants.items()
              if not args.k or any(fnmatch.fnmatchcase(name, p if any(c in p for c in "*?[") else f"*{p}*")
                                   for p in args.k)]
    if args.list:
        if not pipeline.mutants:
            print("this pipeline declares no mutants (see harness.model.mutant)")
        width = max([len(m.name) for _, m in chosen] + [6])
        for stage, m in chosen:
            when = "build" if m.at_build else "booted"
            extra = f"  [equivalent: {m.equivalent}]" if m.equivalent else ""
            print(f"{m.name:{width}}  {stage:6}  {when:6}  {m.regression}{extra}")
        print(f"{len(chosen)} mutant(s)" + (f" of {len(pipeline.mutants)}" if args.k else ""))
        return 0
    if not chosen:
        raise UsageError(f"no mutant matches {' '.join(args.k)}: `harness mutate --list` lists them")
    resolved = cli_args.run_settings(args)
    if resolved.families is not None:  # the mutants of a family left out would survive, untested
        raise UsageError(f"families {resolved.given('families')}: mutants run against the lab as its "
                         "inventory plans it; run `harness mutate` without --families, "
                         "HARNESS_FAMILIES or ini harness_families")
    scenarios = tuple(args.scenarios) or ("scenarios",)
    missing = [p for p in scenarios if not Path(p.split("::")[0]).exists()]
    if missing:
        raise UsageError(f"no scenarios at {', '.join(missing)}: give the scenarios' path "
                         "(`harness mutate PATH`), from the project's directory")
    reports = Path(resolved.reports or "reports")
    store = cli_args.store(args)
    began = time.monotonic()
    Builder(store, pipeline, project=cli_args.project_root()).ensure(pipeline.names[-1])  # once, first
    name = cli_args.pipeline_name(args)
    run = mutate.Run(scenarios, name, str(store.root), reports, tuple(args.words))

    def progress(done: int, total: int, outcome: mutate.Outcome) -> None:
        by = f" by {outcome.test}" if outcome.status is mutate.Status.KILLED else \
            f": {outcome.message[:120]}" if outcome.status is not mutate.Status.SURVIVED else ""
        print(f"[{done}/{total}] {outcome.mutant} {outcome.status.value}{by} "
              f"({log.format_elapsed(outcome.seconds)})", flush=True)

    print(f"mutation run: {len(chosen)} mutant(s), {args.jobs} at a time, against "
          f"{' '.join(scenarios)}", flush=True)
    outcomes = mutate.run_all(run, chosen, jobs=args.jobs, first=mutate.previous_killers(reports),
                              progress=progress)
    kills = sum(o.status is mutate.Status.KILLED for o in outcomes)
    if kills:
        print(f"mutation run: the {kills} kill(s) checked: their tests without any mutant", flush=True)
        outcomes = mutate.confirm(run, outcomes)
        unconfirmed = kills - sum(o.status is mutate.Status.KILLED for o in outcomes)
        if unconfirmed:
            print(f"mutation run: {unconfirmed} kill(s) not counted: their test fails without the "
                  "mutant too (broken, see the table)", flush=True)
    summary = mutate.Summary(tuple(outcomes), args.min_kill)
    elapsed = time.monotonic() - began
    path = mutate.write_reports(summary, reports, seconds=elapsed)
    print(mutate.table(outcomes))
    equivalent = len(outcomes) - summary.counted
    print(f"mutation run: {summary.killed} of {summary.counted} counted mutant(s) killed "
          f"({summary.ratio:.1%}, minimum {args.min_kill:.0%})"
          + (f", {equivalent} equivalent" if equivalent else "")
          + f", in {log.format_elapsed(elapsed)}; table in {path}")
    if not summary.passed:
        print(f"harness: error: the kill ratio {summary.ratio:.1%} is under --min-kill "
              f"{args.min_kill:.0%}: write scenarios that notice the SURVIVED mutants above",
              file=sys.stderr)
        return 1
    return 0


def cmd_bisect(args: argparse.Namespace) -> int:
    """Find the commit that broke the scenarios (git bisect run, pytest at each step), restoring
    from the store every stage whose key a commit left alone; name it and the stages it changed."""
    from harness.cli import bisect  # imported when used: other verbs start faster
    if not args.words:
        raise UsageError("give the pytest arguments after --: harness bisect GOOD BAD -- scenarios -k dns")
    outcome = bisect.run(Path.cwd(), args.good, args.bad, args.words, cli_args.run_settings(args).store)
    print()  # git's last line may lack its newline
    for line in bisect.report(outcome):
        print(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Build the HTML report (Allure Report 3, one self-contained file) from allure results."""
    from harness.engine import report

    index = report.generate(Path(args.results), Path(args.output))
    print(f"report: {index}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per verb."""
    top = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    settings.add_arguments(top)  # the run's settings: harness.core.settings.SETTINGS
    top.add_argument("-v", "--verbose", action="store_true",
                     help="show every step and wait as a line (default: one line per stage and lab)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name: str, func: object) -> argparse.ArgumentParser:
        doc = str(getattr(func, "__doc__", ""))
        made = sub.add_parser(name, help=doc, description=doc)
        made.set_defaults(func=func)
        settings.add_arguments(made, name)  # the settings only some verbs take (--boot-timeout)
        return made

    init = verb("init", cmd_init)
    init.add_argument("directory", metavar="DIR", help="where the new project goes (absent or empty)")
    init.add_argument("--template", default="basic", choices=sorted(project_init.TEMPLATES),
                      help="basic: a web server and a client (the default); office: a router with "
                           "DHCP, DNS and NAT, a printer with a reserved address, a laptop, an observer "
                           "on the uplink")
    setup_host = verb("setup-host", cmd_setup_host)
    setup_host.add_argument("--report", action="store_true",
                            help="also the packages that read the HTML report back (chromium)")
    setup_host.add_argument("--check", action="store_true",
                            help="change nothing: list what is missing, exit 1 if anything is")
    setup_host.add_argument("--machines", type=int, default=host.DEFAULT_MACHINES, metavar="N",
                            help="set the host limits for N running machines "
                                 f"(default {host.DEFAULT_MACHINES})")
    ls = verb("ls", cli_snapshots.cmd_ls)
    ls.add_argument("--size", action="store_true",
                    help="also each snapshot's size on disk (exclusive, total): slower")
    ls.add_argument("--why", metavar="STAGE",
                    help="say which inputs of STAGE (files, modules, machines...) changed since "
                         "its last snapshot: why it would be rebuilt")
    ls.add_argument("--all", action="store_true",
                    help="also the running labs of other projects (default: this project's only)")
    rm = verb("rm", cli_snapshots.cmd_rm)
    rm.add_argument("snapshot", metavar="SNAPSHOT", nargs="+",
                    help="a stage (its current snapshot), a snapshot name, or a pattern ('failed/*')")
    build = verb("build", cmd_build)
    build.add_argument("--until", metavar="STAGE", help="last stage to build")
    build.add_argument("--rebuild", action="store_true", help="ignore cached snapshots")
    up = verb("up", cli_labs.cmd_up)
    up.add_argument("--from-snapshot", metavar="SNAPSHOT",
                    help="a stage (default: the last) or a snapshot name such as failed/<test-id>")
    up.add_argument("--pool", type=int, metavar="N",
                    help="instead of one lab to enter, keep N pristine labs of the snapshot booted for "
                         "pytest runs to adopt, a new one booting behind each one taken, until "
                         "`harness down pool-PID` (a stage's pool follows it when it is rebuilt)")
    shell = verb("shell", cli_labs.cmd_shell)
    shell.epilog = ("Run a command instead of a login shell after --: harness shell gw -- ip -br addr. "
                    "Its words reach the machine as they are, read by no shell: "
                    "harness shell gw -- sh -c 'a | b'")
    shell.add_argument("machine", metavar="MACHINE")
    shell.add_argument("--lab", help="which lab, when several run (see `harness ls`)")
    apply = verb("apply", cli_labs.cmd_apply)
    apply.add_argument("stage", metavar="STAGE", nargs="?",
                       help="the stage to run again, or, a Python stage, to build again and swap in "
                            "(default: those whose files changed since the lab's snapshot)")
    apply.add_argument("--lab", help="which lab, when several run (see `harness ls`)")
    apply.add_argument("--check-idempotent", action="store_true",
                       help="run the steps twice; fail when the second run changes anything")
    cli_impair.add_arguments(verb("impair", cli_impair.cmd_impair))
    down = verb("down", cli_labs.cmd_down)
    down.add_argument("lab", nargs="?", help="which lab (default: the only one `harness up` started), "
                      "or pool (pool-PID, see `harness ls`)")
    export = verb("export", cli_snapshots.cmd_export)
    export.add_argument("snapshot", metavar="SNAPSHOT", nargs="*",
                        help="a stage, a snapshot name, or a pattern ('failed/*')")
    export.add_argument("--full", action="store_true",
                        help="a kept failure whole, not as changes to its stage's snapshot")
    export.add_argument("--all-stages", action="store_true",
                        help="every stage's snapshot for the stages as they are now")
    export.add_argument("-o", "--output", metavar="PATH",
                        help="the file (one snapshot), or a directory for several "
                             "(default: <snapshot>.tar.zst here)")
    imp = verb("import", cli_snapshots.cmd_import)
    imp.add_argument("file", metavar="FILE", nargs="+")
    imp.add_argument("--if-missing", action="store_true",
                     help="skip a bundle whose snapshot the store already holds")
    gc = verb("gc", cli_snapshots.cmd_gc)
    gc.add_argument("--keep", type=int, default=0, metavar="N",
                    help="keep the N newest old snapshots of each stage (default 0)")
    gc.add_argument("--failed", action="store_true", help="also delete kept failures (failed/*)")
    destroy = verb("destroy", cli_labs.cmd_destroy)
    destroy.add_argument("--all", action="store_true",
                         help="also the running and kept labs of other projects: every lab of the store")
    mut = verb("mutate", cmd_mutate)
    mut.epilog = ("Arguments after -- go to every pytest run: harness mutate -k dhcp -- -k 'not faults'. "
                  "See reports/mutants/<mutant>/pytest.log for a run's output.")
    mut.add_argument("scenarios", metavar="SCENARIOS", nargs="*",
                     help="test paths to run against each mutant (default: scenarios)")
    mut.add_argument("-k", action="append", default=[], metavar="PATTERN",
                     help="only mutants whose name contains PATTERN (or matches it, with * ? [)")
    mut.add_argument("--list", action="store_true", help="list the mutants and exit")
    mut.add_argument("--min-kill", type=float, default=0.95, metavar="RATIO",
                     help="exit non-zero when killed/counted is under RATIO (default 0.95)")
    mut.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                     help="mutants run at once (default: one per core)")
    bis = verb("bisect", cmd_bisect)
    bis.epilog = ("The pytest arguments go after --: harness bisect v1.2 HEAD -- scenarios -k dns. "
                  "Each step's record: .git/harness-bisect.jsonl.")
    bis.add_argument("good", metavar="GOOD", help="a commit whose scenarios pass")
    bis.add_argument("bad", metavar="BAD", help="a later commit whose scenarios fail")
    rep = verb("report", cmd_report)
    rep.add_argument("--results", default="reports/allure-results", help="allure results directory")
    rep.add_argument("-o", "--output", default="reports/html", help="where the report goes")
    return top


def _progress(verbose: bool) -> log.Progress:
    """Progress on stderr: headlines as lines; on a terminal, steps as one status line."""
    err = sys.stderr

    def line(text: str) -> None:
        print(text, file=err, flush=True)

    def status(text: str) -> None:
        width = shutil.get_terminal_size().columns
        err.write("\r\x1b[K" + text[: width - 1])
        err.flush()

    def clear() -> None:
        err.write("\r\x1b[K")
        err.flush()

    return log.Progress(line, status if err.isatty() else None, clear, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = words[words.index("--") + 1:] if "--" in words else []
    words = words[: words.index("--")] if "--" in words else words
    args = parser().parse_args(words)
    if command and args.command not in ("shell", "mutate", "bisect"):
        parser().error("a command after -- is only for `harness shell MACHINE -- COMMAND` and "
                       "pytest arguments for `harness mutate -- ARGS` and `harness bisect GOOD BAD -- ARGS`")
    args.words = command
    handler = _progress(args.verbose)
    log.logger.addHandler(handler)
    log.logger.setLevel(logging.INFO)
    proc.interrupt_on_sigterm()
    try:
        if args.func is not cmd_init:  # a new project's directory need not be in one
            cli_args.run_settings(args)
        if args.func in (cmd_build, cli_labs.cmd_up):
            lab.sweep_stale()
        return int(args.func(args))
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `harness ls | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        log.logger.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
