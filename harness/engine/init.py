"""``harness init DIR``: a new project that passes ``pytest`` out of the box.

Two machines on one segment: ``server`` gets nginx and is set up by a directory of shell
scripts (a script stage, `harness.engine.build.scripts`); ``client`` gets curl; one scenario checks, from
the client, that the server answers. Everything a project of one's own needs is there to
copy: a pytest ini naming the pipeline, an inventory, a base stage, a stage, a scenario.
``--template office`` writes the first lab most teams write instead (`harness.engine.init_office`).
"""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import UsageError
from harness.engine import init_office

FILES = {
    "pyproject.toml": '''\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["harness"]

[tool.pytest.ini_options]
harness_pipeline = "stages"  # the module whose PIPELINE defines this project's stages
harness_reports = "reports"  # allure results, junit.xml, timings.md, a failing test's evidence
testpaths = ["scenarios"]
''',
    "stages/__init__.py": '''\
"""This project's stages, in build order, on the network its inventory describes."""

from pathlib import Path

from harness import Pipeline, base_stage, load_inventory
from stages import office

INVENTORY = load_inventory(Path(__file__).with_name("inventory.toml"))

PIPELINE = Pipeline(
    [base_stage("bootstrap"), office.STAGE],
    inventory=INVENTORY,     # the interfaces, the router's forwarding, the plan scripts see
    static_addresses=True,   # the lab sets static interfaces' addresses and gateways before boot
)
''',
    "stages/inventory.toml": '''\
# The lab's machines and networks. Every address and MAC lives here, once.

[segments.lan]
cidr = "10.10.0.0/24"

[machines.server]
interfaces = [
  { name = "host0", segment = "lan", mac = "02:00:0a:0a:00:01", address = "10.10.0.1", config = "static" },
]

[machines.client]
interfaces = [
  { name = "host0", segment = "lan", mac = "02:00:0a:0a:00:02", address = "10.10.0.2", config = "static" },
]
''',
    "stages/office.py": '''\
"""Stage office: a web server and a client on one network.

Packages are installed before boot, from the host's shared package cache; then the
scripts in office/server/ run in the booted server, in name order. Editing any file in
that directory rebuilds this stage (and only the stages after it).
"""

from harness import Build, Stage, scripts


def serving(build: Build) -> None:
    """wait until the server answers on port 80"""
    build["server"].wait_for_open_port(80)


STAGE = Stage.here(
    "office",
    machines=("server", "client"),
    packages={"server": ("nginx",), "client": ("curl",)},
    steps=(scripts("office/server", on="server"),),
    ready=(serving,),
)
''',
    "stages/office/server/10-site.sh": '''\
#!/bin/sh
# Runs in the booted server, from a copy of this directory. HARNESS_MACHINE is its name.
set -eu
sed "s/@MACHINE@/$HARNESS_MACHINE/" index.html.in > /var/www/html/index.html
systemctl reload-or-restart nginx
''',
    "stages/office/server/index.html.in": "hello from @MACHINE@\n",
    "scenarios/test_office.py": '''\
"""What the office network does, seen from the machine that would see it."""

from stages import INVENTORY

SERVER = INVENTORY["server"].nics[0].address


def test_the_client_gets_the_servers_page(client):  # a fixture per machine, by its name
    assert client.succeed(f"curl -sf http://{SERVER}/").strip() == "hello from server"


def test_the_server_does_not_answer_on_other_ports(client):
    client.fail(f"curl -sf --max-time 5 http://{SERVER}:8080/")
''',
    "README.md": '''\
# {name}

An end-to-end test of a small network, built with [harness](https://example.invalid/harness).

    harness setup-host      # once per host, as root: packages, limits, the snapshot store
    pytest                  # build what the scenarios need (cached as snapshots), run them
    pytest -v               # every build step as a line
    harness ls              # the snapshots of this project's stages
    harness up              # boot the lab and leave it running; `harness shell --lab ID client`
    harness report          # reports/html/index.html from the last run's results

- `reports/`: what each run wrote: allure results, `junit.xml`, `timings.md`, and for a failing
  test its evidence (journals, addresses, routes, a pcap per segment).

- `stages/inventory.toml`: the machines and their addresses.
- `stages/office.py`: what is installed where; `stages/office/server/*.sh`: the scripts
  that set up the server, run in order.
- `scenarios/`: what the network must do, asserted from the machines.

Add a machine: give it an entry in the inventory and add it to a stage's `machines`.
Add a stage: a module like `office.py`, appended to the list in `stages/__init__.py`; its
steps can be scripts (`harness.engine.build.scripts.scripts`), an Ansible playbook
(`harness.engine.build.playbook.playbook`, with ansible-core installed) or Python functions.
''',
}


SHARED = ("pyproject.toml", "stages/__init__.py")  # every template's: the project and its pipeline
TEMPLATES = {"basic": FILES, "office": {**{name: FILES[name] for name in SHARED}, **init_office.FILES}}


def init(directory: Path, template: str = "basic") -> list[Path]:
    """Write a new project into ``directory`` (absent or empty) from ``template`` (`TEMPLATES`:
    ``basic``, a server and a client; ``office``, `harness.engine.init_office`); return the
    files written."""
    if template not in TEMPLATES:
        raise UsageError(f"no template {template!r}: choose one of {', '.join(TEMPLATES)}")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(f"{directory} exists and is not an empty directory: give a new one")
    name = directory.resolve().name
    written = []
    for relative, text in TEMPLATES[template].items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{name}", name))
        if relative.endswith(".sh"):
            path.chmod(0o755)
        written.append(path)
    return written
