"""The `commons` entry point and the one place that turns errors into messages and exit codes.

Exit codes (the table in README.md, which lists every code returned here):
0 ok; 1 refused or an integrity failure; 2 usage error, or an input file that cannot be read;
3 node unreachable; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from rich.markup import escape

from cli.demo import demo
from cli.devnet import devnet
from cli.governance_cmds import governance
from cli.keys import init, key
from cli.ledger_cmds import (
    audit_cmd,
    export,
    genesis,
    import_,
    proof,
    records_cmd,
    verify_proof,
)
from cli.member_cmds import (
    balance,
    contribution,
    contributions,
    delegate,
    endorse,
    members,
    params,
    register,
    self_cmd,
)
from cli.node_cmds import contribute, node, status
from cli.output import err_console
from cli.proposal_cmds import cancel, proposal, proposals, propose, vote
from cli.simulate import simulate
from ledger.errors import InputFileError, LedgerError
from node.client import Unreachable
from node.errors import ConfigError, NodeError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process ended by Ctrl-C

ERROR_EXITS: tuple[tuple[type[Exception], int], ...] = (
    (InputFileError, EXIT_USAGE),
    (ConfigError, EXIT_USAGE),
    (Unreachable, EXIT_UNREACHABLE),
    (LedgerError, EXIT_REFUSED),
    (NodeError, EXIT_REFUSED),
    (OSError, EXIT_REFUSED),
)
"""The exit code of each error a command may raise, the first that matches. Click's own
errors carry theirs (usage errors 2, an integrity failure 1)."""


def exit_code(error: Exception) -> int | None:
    """The exit code of `error`, or None for an error no command should raise (a bug)."""
    for kind, code in ERROR_EXITS:
        if isinstance(error, kind):
            return code
    return None


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
    records_cmd,
    proof,
    verify_proof,
    governance,
    simulate,
    node,
    status,
    contribute,
    devnet,
    register,
    self_cmd,
    members,
    balance,
    params,
    contributions,
    contribution,
    endorse,
    delegate,
    propose,
    proposals,
    proposal,
    vote,
    cancel,
):
    commons.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code instead of exiting (tests call this in-process)."""
    try:
        result = commons.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.Abort, KeyboardInterrupt):  # click turns Ctrl-C at a prompt into Abort
        err_console.print("interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as e:
        e.show()
        return EXIT_USAGE if isinstance(e, click.UsageError) else e.exit_code
    except Exception as e:
        code = exit_code(e)
        if code is None:
            raise
        err_console.print(f"[red]error:[/] {escape(_message(e))}")
        return code
    return result if isinstance(result, int) else EXIT_OK


def _message(error: Exception) -> str:
    if isinstance(error, OSError) and not isinstance(error, LedgerError):
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return str(error)


def entry() -> None:
    sys.exit(main())
