"""The `commons` entry point and the one place that turns errors into messages and exit codes.

Exit codes (the table in README.md): 0 ok; 1 refused or integrity failure; 2 usage error;
3 node unreachable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from cli.demo import demo
from cli.devnet import devnet
from cli.governance_cmds import governance
from cli.keys import init, key
from cli.ledger_cmds import audit_cmd, export, genesis, import_, proof, verify_proof
from cli.node_cmds import contribute, node, status
from cli.output import err_console
from cli.simulate import simulate
from ledger.errors import LedgerError
from node.client import Unreachable
from node.errors import ConfigError, NodeError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="commons-ledger", prog_name="commons")
def commons() -> None:
    """Commons: a decentralized contribution ledger for open communities."""


for command in (
    demo,
    init,
    key,
    genesis,
    export,
    import_,
    audit_cmd,
    proof,
    verify_proof,
    governance,
    simulate,
    node,
    status,
    contribute,
    devnet,
):
    commons.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code instead of exiting (tests call this in-process)."""
    try:
        result = commons.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.Abort:
        err_console.print("Aborted.")
        return EXIT_REFUSED
    except click.ClickException as e:
        e.show()
        return EXIT_USAGE if isinstance(e, click.UsageError) else EXIT_REFUSED
    except LedgerError as e:
        err_console.print(f"[red]error:[/] {e}")
        return EXIT_REFUSED
    except Unreachable as e:
        err_console.print(f"[red]error:[/] {e}")
        return EXIT_UNREACHABLE
    except ConfigError as e:
        err_console.print(f"[red]error:[/] {e}")
        return EXIT_USAGE
    except NodeError as e:
        err_console.print(f"[red]error:[/] {e}")
        return EXIT_REFUSED
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        err_console.print(f"[red]error:[/] {e.strerror or e}{where}")
        return EXIT_REFUSED
    return result if isinstance(result, int) else EXIT_OK


def entry() -> None:
    sys.exit(main())
