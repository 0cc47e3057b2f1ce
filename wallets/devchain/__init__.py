"""The local dev chain of `make run`: a real anvil node, demo tokens, the demo wallet, live activity.

`start_dev_chain()` (run by `manage.py serve` next to the embedded scheduler, through
`wallets/embedded.py`) starts anvil on 127.0.0.1 (`node.py`), registers it as the chain
"Local dev chain (anvil)", deploys the committed test tokens and links anvil's account 1
to the demo user as a verified wallet (`provision.py`), then sends a demo transaction
every few seconds (`activity.py`). The embedded scheduler scans it like any chain.

It never stops the server: when anvil cannot start, one warning is logged and the server
runs without it. `DevChain.stop()` stops the activity, disables the chain and stops anvil.
"""

from __future__ import annotations

import logging

from ..conf import wallets_settings
from .activity import DemoActivity
from .node import DEV_CHAIN_ID, INSTALL_HINT, AnvilNode, NodeUnavailable, anvil_executable, dev_web3, port_or_free
from .provision import DevSetup, demo_username, dev_chain_disable, provision

__all__ = ["DEV_CHAIN_ID", "DevChain", "start_dev_chain"]

logger = logging.getLogger("wallets.devchain")

#: The beat entry that scans every enabled chain when its poll interval elapsed.
SCAN_TASK = "wallets.tasks.scan_due_chains"


class DevChain:
    """A running dev chain: the node, what was provisioned on it and the activity thread."""

    def __init__(self, node: AnvilNode, setup: DevSetup, activity: DemoActivity) -> None:
        self.node = node
        self.setup = setup
        self.activity = activity

    def stop(self) -> None:
        """Stop sending, stop scanning (the chain row is disabled), then stop anvil."""
        self.activity.stop()
        try:
            dev_chain_disable()
        finally:
            self.node.stop()
        logger.info("dev chain: anvil stopped")


def start_dev_chain() -> DevChain | None:
    """Start the dev chain when `WALLETS["dev_chain"]` is on; None when off or when it cannot start."""
    conf = wallets_settings()
    if not conf.dev_chain:
        return None
    node = AnvilNode(
        executable=anvil_executable(conf.dev_chain_anvil),
        port=port_or_free(conf.dev_chain_port),
        block_time=conf.dev_chain_block_time,
    )
    try:
        node.start()
        w3 = dev_web3(node.url)
        setup = provision(w3, node.url)
        activity = DemoActivity(w3, setup, interval=conf.dev_chain_activity_interval)
        activity.start()
    except NodeUnavailable as exc:
        _give_up(node, f"{exc}")
        return None
    except Exception as exc:  # provisioning failed (e.g. a contract artifact is missing)
        _give_up(node, f"{type(exc).__name__}: {exc}")
        return None
    except BaseException:  # Ctrl-C during start-up: no anvil left behind
        node.stop()
        raise
    owner = f"user {demo_username()!r}" if setup.user_id is not None else "no user"
    logger.info(
        "dev chain: anvil at %s (chain %d, a block every %gs, pid %s); demo wallet %s linked to %s "
        "(sign in to see it on the dashboard); a demo transaction every %gs",
        node.url,
        DEV_CHAIN_ID,
        conf.dev_chain_block_time,
        node.pid,
        setup.demo,
        owner,
        conf.dev_chain_activity_interval,
    )
    _warn_if_unscheduled()
    return DevChain(node, setup, activity)


def _warn_if_unscheduled() -> None:
    """Scans of every chain come from one beat entry (wallets/schedule.py); say so when it is missing."""
    from django_celery_beat.models import PeriodicTask

    if not PeriodicTask.objects.filter(task=SCAN_TASK, enabled=True).exists():
        logger.warning(
            "dev chain: the periodic task %s is missing or disabled, so nothing scans the chain "
            "(run `manage.py setup_schedule`, as `make run` does, or enable it in the admin)",
            SCAN_TASK,
        )


def _give_up(node: AnvilNode, reason: str) -> None:
    node.stop()
    try:
        dev_chain_disable()  # a row left by an earlier run must not be scanned at a dead URL
    except Exception:
        logger.debug("dev chain: could not disable the chain row", exc_info=True)
    logger.warning(
        "local dev chain not started (%s); the server runs without it: the wallets panel stays empty. "
        "Install anvil with `%s`, or set WALLETS_DEV_CHAIN=0 to silence this.",
        reason,
        INSTALL_HINT,
    )
