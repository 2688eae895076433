"""Mutants of stage web (stages/web.py): plausible regressions of what it builds, one each.

No stage imports this module, so none of it is part of a stage's key: adding or editing a
mutant rebuilds nothing. stages/__init__.py attaches these to stage web (see harness.model.mutant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import mutant
from harness.model.mutant import edit, run
from stages.inventory import INVENTORY
from stages.web import DSN

if TYPE_CHECKING:
    from harness import Lab


# -- mutants: plausible mistakes in what web serves (see harness.model.mutant) --------------------------


@mutant("the wiki virtual host is gone: wiki falls to nginx's default site")
def web_vhost_missing(lab: Lab) -> None:
    run(lab["web"], "rm /etc/nginx/sites-enabled/wiki && systemctl restart nginx")
    lab["web"].wait_for_open_port(80)


def _edit_site(lab: Lab, site: str, old: str, new: str) -> None:
    """Edit nginx site ``site`` on web, restart nginx and wait until it listens again."""
    edit(lab["web"], f"/etc/nginx/sites-enabled/{site}", old, new)
    run(lab["web"], "systemctl restart nginx")
    lab["web"].wait_for_open_port(80)


@mutant("the bugs virtual host was copied from wiki's and still serves wiki's pages")
def web_vhost_wrong_root(lab: Lab) -> None:
    _edit_site(lab, "bugs", "root /var/www/bugs;", "root /var/www/wiki;")


@mutant("the docs virtual host answers its short name only, not docs.prolo")
def web_vhost_without_domain(lab: Lab) -> None:
    _edit_site(lab, "docs", "server_name docs docs.prolo;", "server_name docs;")


@mutant("nginx proxies concours to the wrong port (8080): the contest site answers 502")
def web_concours_proxy_wrong_port(lab: Lab) -> None:
    _edit_site(lab, "concours", "127.0.0.1:8000", "127.0.0.1:8080")


@mutant("PostgreSQL listens on localhost only (Debian's default), so concours cannot reach db")
def web_db_listens_on_localhost(lab: Lab) -> None:
    web = lab["web"]
    edit(web, "/etc/postgresql/15/main/conf.d/lab.conf", "listen_addresses = '*'",
         "listen_addresses = 'localhost'")
    run(web, "systemctl restart postgresql@15-main.service")
    web.wait_for_unit("postgresql@15-main.service")
    web.wait_for_open_port(5432, "127.0.0.1")


@mutant("the virtual hosts listen on IPv4 only: over IPv6 every name gets nginx's default site")
def web_vhosts_ipv4_only(lab: Lab) -> None:
    web = lab["web"]
    run(web, "sed -i '/listen \\[::\\]:80;/d' /etc/nginx/sites-enabled/* && systemctl restart nginx")
    web.wait_for_open_port(80)


@mutant("PostgreSQL lets in the LAN's IPv4 clients only: concours, reaching db over IPv6, is refused")
def web_db_hba_ipv4_only(lab: Lab) -> None:
    web, cidr6 = lab["web"], INVENTORY.segments["lan"].cidr6
    edit(web, "/etc/postgresql/15/main/pg_hba.conf", f"host concours concours {cidr6} scram-sha-256\n", "")
    run(web, "systemctl reload postgresql@15-main.service")


@mutant("paste's site listens on IPv4 only (`listen 80;`): the IPv6-only machine serves no one")
def paste_listens_on_ipv4_only(lab: Lab) -> None:
    paste = lab["paste"]
    edit(paste, "/etc/nginx/sites-enabled/paste", "listen [::]:80 default_server;",
         "listen 80 default_server;")
    run(paste, "systemctl restart nginx")
    paste.wait_for_unit("nginx.service")


@mutant("PostgreSQL is stopped and not enabled (a package upgrade left it so): concours has no database")
def web_db_not_running(lab: Lab) -> None:
    run(lab["web"], "systemctl disable --now postgresql@15-main.service postgresql.service")


@mutant("the database password was rotated but concours still uses the old one")
def web_db_password_rotated(lab: Lab) -> None:
    run(lab["web"], "runuser -u postgres -- psql -v ON_ERROR_STOP=1 -c "
                    "\"ALTER ROLE concours PASSWORD 'rotated'\"")


def _concours_dsn_in_unit(lab: Lab, name: str, dsn: str) -> None:
    """Give concours ``dsn`` through a drop-in of its unit (world-readable, as units are), restart
    it and wait until the site answers again."""
    web = lab["web"]
    run(web, "mkdir -p /etc/systemd/system/concours.service.d && printf '%s\\n' '[Service]' "
             f"'Environment=\"CONCOURS_DSN={dsn}\"' > /etc/systemd/system/concours.service.d/{name}.conf && "
             "systemctl daemon-reload && systemctl restart concours.service")
    web.wait_until_succeeds("curl -sf -H 'Host: concours' http://127.0.0.1/entries")


@mutant("concours was left pointed at a staging database: its records never reach the real one")
def web_app_uses_another_database(lab: Lab) -> None:
    run(lab["web"], "runuser -u postgres -- createdb -O concours concours_staging")
    _concours_dsn_in_unit(lab, "staging", DSN.replace("host=db dbname=concours ",
                                                      "host=localhost dbname=concours_staging "))


@mutant("the database password went into concours' unit (world-readable) instead of its credential")
def web_dsn_in_unit(lab: Lab) -> None:
    _concours_dsn_in_unit(lab, "dsn", DSN)
