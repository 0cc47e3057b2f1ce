"""`AlertEngine`: keeps the index in step with the rules and evaluates price batches.

Evaluation has two stages: `match` (the index: pure, in memory, O(log n + fired)
per symbol) and `trigger_alert` (the database: one atomic claim per chunk of fired
rules, then one `price_alert` notification each, in the same transaction, delivered
after commit). The index follows rule changes made in any process through a global
revision counter: each evaluation reads it (one indexed query) and loads only the
rules changed since (or everything, after a reset or every FULL_RELOAD_SECONDS).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import connection, transaction

import notifications.api
from realtime_project.clock import SYSTEM_CLOCK, Clock
from realtime_project.runtime import Slot

from . import selectors
from .choices import Kind
from .conf import alert_settings
from .index import AlertIndex, Key, Taken
from .models import AlertRule
from .payloads import price_alert
from .readers import HoldingsReader, PriceReader, PricesAppReader, WalletsAppReader
from .services.claims import alert_rules_claim
from .services.rules import alert_rule_create, alert_rule_delete
from .validation import validate_rule

logger = logging.getLogger("alerts.engine")

#: Reads for a full load are streamed in chunks of this many rows.
LOAD_CHUNK = 5_000
#: On the price-event path (every coalesced publication of the feed process, tens per
#: second) the rule index is synced with the database at most this often: rules changed
#: in another process apply within this delay (those of this process at once, on commit).
#: Reading the revision on every publication was the feed process's largest cost
#: (bench/prices_streams.py, py-spy).
EVENT_SYNC_INTERVAL = 0.25
#: A percent rule's reference price ("the price one window ago") is re-read after
#: window / 120 seconds (30 s for 1 h, 0.5 s floor of 1 s for 1 min).
REFERENCE_TTL_DIVISOR = 120.0


def index_key(rule: AlertRule) -> Key:
    """Where a rule lives in the index (from its immutable fields)."""
    kind = rule.kind
    if kind == Kind.PRICE_ABOVE:
        return ("above", rule.symbol)
    if kind == Kind.PRICE_BELOW:
        return ("below", rule.symbol)
    if kind == Kind.PRICE_CROSS:
        return ({"up": "cross_up", "down": "cross_down"}.get(rule.direction, "cross_any"), rule.symbol)
    if kind == Kind.PERCENT_MOVE:
        window = int(rule.window.total_seconds()) if rule.window is not None else 0
        return ({"up": "pct_up", "down": "pct_down"}.get(rule.direction, "pct_any"), rule.symbol, window)
    if kind == Kind.PORTFOLIO_ABOVE:
        return ("pf_above", rule.user_id)
    return ("pf_below", rule.user_id)


@dataclass(slots=True)
class Evaluation:
    """What one batch did: rules matched by the index, rules that fired (claimed)."""

    matched: int = 0
    fired: list[AlertRule] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)


class AlertEngine:
    def __init__(
        self,
        *,
        prices: PriceReader | None = None,
        holdings: HoldingsReader | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.prices: PriceReader = prices or PricesAppReader()
        self.holdings: HoldingsReader = holdings or WalletsAppReader()
        self.clock = clock
        self.index = AlertIndex()
        #: Last price seen per symbol (crossings compare the previous and current tick).
        self.last_prices: dict[str, float] = {}
        #: Timestamp (ms) of the batch each last price came from.
        self.last_ts: dict[str, int] = {}
        self._lock = threading.RLock()
        #: Clear while `rebuild_in_background()` loads the index.
        self._rebuilt = threading.Event()
        self._rebuilt.set()
        self._revision = -1
        #: When `sync` last ran (monotonic), for `evaluate(max_sync_age=…)`.
        self._synced_at = -1e18
        self._epoch = ""
        self._loaded_at: datetime | None = None
        #: Rules waiting out a cooldown: id -> (re-arm time, key, threshold); heap by time.
        self._cooling: dict[int, tuple[float, Key, float]] = {}
        self._cooling_heap: list[tuple[float, int]] = []
        #: Rules with an expiry: heap of (expiry, id, key, threshold).
        self._expiry_heap: list[tuple[float, int, Key, float]] = []
        self._portfolio_at: datetime | None = None
        #: (symbol, window) -> (valid until, reference price) for percent rules.
        self._references: dict[tuple[str, int], tuple[float, float | None]] = {}

    # --- index maintenance --------------------------------------------------------------

    def _arm(self, rule: AlertRule, now: datetime) -> None:
        """Put a live rule where it belongs: armed, cooling, or nowhere (expired)."""
        key, threshold = index_key(rule), float(rule.threshold)
        if rule.expires_at is not None:
            if rule.expires_at <= now:
                return
            heapq.heappush(self._expiry_heap, (rule.expires_at.timestamp(), rule.pk, key, threshold))
        if rule.next_allowed_at is not None and rule.next_allowed_at > now:
            self._cool(rule.pk, rule.next_allowed_at.timestamp(), key, threshold)
        else:
            self.index.add(key, threshold, rule.pk)

    def _cool(self, rule_id: int, until: float, key: Key, threshold: float) -> None:
        self._cooling[rule_id] = (until, key, threshold)
        heapq.heappush(self._cooling_heap, (until, rule_id))

    def _forget(self, rule: AlertRule) -> None:
        self.index.remove(index_key(rule), float(rule.threshold), rule.pk)
        self._cooling.pop(rule.pk, None)

    def _apply(self, rule: AlertRule, now: datetime) -> None:
        self._forget(rule)
        if rule.active and rule.deleted_at is None:
            self._arm(rule, now)

    def load(self, now: datetime | None = None) -> int:
        """Rebuild the index from the database (start-up, reset, periodic full reload)."""
        now = now or self.clock.now()
        with self._lock:
            epoch, revision = selectors.current_revision()
            self.index = AlertIndex()
            self._cooling, self._cooling_heap, self._expiry_heap = {}, [], []
            armed: list[tuple[Key, float, int]] = []
            count = 0
            for rule in selectors.live_rules().order_by("pk").iterator(chunk_size=LOAD_CHUNK):
                count += 1
                key, threshold = index_key(rule), float(rule.threshold)
                if rule.expires_at is not None:
                    if rule.expires_at <= now:
                        continue
                    heapq.heappush(self._expiry_heap, (rule.expires_at.timestamp(), rule.pk, key, threshold))
                if rule.next_allowed_at is not None and rule.next_allowed_at > now:
                    self._cool(rule.pk, rule.next_allowed_at.timestamp(), key, threshold)
                else:
                    armed.append((key, threshold, rule.pk))
            self.index.bulk_load(armed)
            self._epoch, self._revision, self._loaded_at = epoch, revision, now
            logger.info("alert index loaded: %d rules at revision %d", count, revision)
            return count

    def rebuild(self, now: datetime | None = None, *, latest: dict[str, tuple[float, int | None]] | None = None) -> int:
        """Take over from another process (the feed process that lost its lease): the whole
        index from the database, and the last published price of every symbol as the
        previous tick (`latest`, read now unless given), so a crossing between the old
        leader's last batch and this process's first one still fires. Returns the rules
        loaded."""
        if latest is None:
            latest = self.prices.latest_quotes()
        with self._lock:
            count = self.load(now)
            self._synced_at = self.clock.monotonic()
            self.last_prices = {symbol: price for symbol, (price, _ts) in latest.items()}
            # A crossing since that price fires only if no process fired the rule after it.
            self.last_ts = {symbol: ts for symbol, (_price, ts) in latest.items() if ts is not None}
            self._references = {}
        logger.info("alert engine rebuilt for takeover: %d rules, %d last prices", count, len(latest))
        return count

    def rebuild_in_background(self) -> threading.Thread:
        """`rebuild()` without holding up the caller (the feed process taking over, whose
        prices must not wait for the index to load): the previous tick is read here, before
        this process publishes anything; the index loads on a thread of its own, and
        `evaluate()` waits for it, so no batch is matched against a stale index (the bus
        merges the batches that arrive meanwhile)."""
        latest = self.prices.latest_quotes()
        self._rebuilt.clear()

        def work() -> None:
            try:
                self.rebuild(latest=latest)
            except Exception:  # evaluate() then loads the index itself (a fresh sync)
                logger.exception("alert engine rebuild failed")
                with self._lock:
                    self._revision = -1
            finally:
                self._rebuilt.set()
                connection.close()  # this thread's database connection

        thread = threading.Thread(target=work, name="alerts-rebuild", daemon=True)
        thread.start()
        return thread

    def wait_rebuilt(self, timeout: float | None = None) -> bool:
        """Wait for a rebuild started by `rebuild_in_background()` (True when none runs)."""
        return self._rebuilt.wait(timeout)

    def sync(self, now: datetime | None = None) -> int:
        """Catch up with rule changes made anywhere; returns rules (re)applied."""
        now = now or self.clock.now()
        with self._lock:
            epoch, revision = selectors.current_revision()
            too_old = (
                self._loaded_at is None
                or (now - self._loaded_at).total_seconds() > alert_settings().full_reload_seconds
            )
            if self._revision < 0 or epoch != self._epoch or revision < self._revision or too_old:
                return self.load(now)
            if revision == self._revision:
                return 0
            changed = list(selectors.changed_since(self._revision).filter(revision__lte=revision))
            for rule in changed:
                self._apply(rule, now)
            self._revision = revision
            return len(changed)

    def _housekeeping(self, now: datetime) -> None:
        ts = now.timestamp()
        while self._expiry_heap and self._expiry_heap[0][0] <= ts:
            _, rule_id, key, threshold = heapq.heappop(self._expiry_heap)
            self.index.remove(key, threshold, rule_id)
            self._cooling.pop(rule_id, None)
        while self._cooling_heap and self._cooling_heap[0][0] <= ts:
            until, rule_id = heapq.heappop(self._cooling_heap)
            entry = self._cooling.get(rule_id)
            if entry is not None and entry[0] == until:
                del self._cooling[rule_id]
                self.index.add(entry[1], entry[2], rule_id)

    # --- the public API -----------------------------------------------------------------

    def register_alert(self, *, user_id: int, **fields: Any) -> AlertRule:
        """Validate, persist and index a rule (other processes pick it up on sync)."""
        now = self.clock.now()
        rule_input = validate_rule(now=now, known_symbols=self.prices.known_symbols(), **fields)
        rule = alert_rule_create(user_id=user_id, rule=rule_input)
        with self._lock:
            if self._revision >= 0:
                transaction.on_commit(lambda: self._apply_committed(rule.pk))
        return rule

    def _apply_committed(self, rule_id: int) -> None:
        rule = AlertRule.objects.filter(pk=rule_id).first()
        if rule is not None:
            with self._lock:
                self._apply(rule, self.clock.now())

    def delete_alert(self, *, user_id: int, rule_id: int) -> AlertRule:
        rule = alert_rule_delete(user_id=user_id, rule_id=rule_id, now=self.clock.now())
        with self._lock:
            self._forget(rule)
        return rule

    def get_alerts(self, user_id: int) -> list[AlertRule]:
        return list(selectors.rules_of(user_id))

    def match(self, batch: dict[str, Any], now: datetime | None = None) -> list[Taken]:
        """Take every armed rule the batch fires (index only; no database writes)."""
        now = now or self.clock.now()
        taken: list[Taken] = []
        with self._lock:
            self._housekeeping(now)
            last = self.last_prices
            ts = now.timestamp()
            batch_ts = _batch_ts(batch, now)
            percent, percent_match = self.index.percent_symbols, self.index.match_percents
            for update in batch.get("updates") or ():
                symbol, price = _symbol_price(update)
                if symbol is None or price is None:
                    continue
                groups = self.index.match_price(symbol, last.get(symbol), price)
                if groups:
                    since = self.last_ts.get(symbol)
                    taken += [replace(g, since_ts=since) if str(g.key[0]).startswith("cross") else g for g in groups]
                if symbol in percent:
                    taken += percent_match(symbol, price, partial(self._reference, symbol, now=now, ts=ts))
                last[symbol] = price
                self.last_ts[symbol] = batch_ts
            taken += self._match_portfolios(now)
        return taken

    def _reference(self, symbol: str, window: int, now: datetime, ts: float) -> float | None:
        """The price `window` seconds ago, cached for 1/120 of the window.

        The prices app answers from persisted history (a query). One query per symbol
        and window per tick would cost more than the whole index; the reference point
        of a 1 h window moving by 30 s changes the measured window by under 1 %.
        """
        key = (symbol, window)
        cached = self._references.get(key)
        if cached is not None and cached[0] > ts:
            return cached[1]
        past = self.prices.price_at(symbol, now - timedelta(seconds=window))
        value = float(past) if past is not None and past > 0 else None
        self._references[key] = (ts + max(1.0, window / REFERENCE_TTL_DIVISOR), value)
        return value

    def _match_portfolios(self, now: datetime) -> list[Taken]:
        users = self.index.portfolio_users()
        if not users:
            return []
        interval = alert_settings().portfolio_interval
        if self._portfolio_at is not None and (now - self._portfolio_at).total_seconds() < interval:
            return []
        self._portfolio_at = now
        prices = {s: float(p) for s, p in self.prices.latest_prices().items()}
        prices.update(self.last_prices)
        taken: list[Taken] = []
        for user_id in sorted(users):
            value = portfolio_value(self.holdings.holdings(user_id), prices)
            if value is not None:
                taken += self.index.match_portfolio(user_id, value)
        return taken

    def trigger_alert(self, taken: list[Taken], *, batch_ts: int, now: datetime | None = None) -> Evaluation:
        """Claim the matched rules atomically and notify for each one that fired."""
        now = now or self.clock.now()
        result = Evaluation(matched=sum(len(t.ids) for t in taken))
        if not taken:
            return result
        values: dict[int, Taken] = {}
        for group in taken:
            for rule_id in group.ids:
                values[rule_id] = group
        with transaction.atomic():
            fired = alert_rules_claim(
                rule_ids=list(values),
                batch_ts=batch_ts,
                now=now,
                prices={rid: _trigger_price(g) for rid, g in values.items()},
                not_fired_after={rid: g.since_ts for rid, g in values.items() if g.since_ts is not None},
            )
            if fired:
                sent = notifications.api.send_many(
                    [(rule.user_id, price_alert(rule, values[rule.pk], batch_ts)) for rule in fired]
                )
                result.notifications = [r.notification.pk for r in sent if r.notification is not None]
            unclaimed = set(values) - {rule.pk for rule in fired}
            states = list(AlertRule.objects.filter(pk__in=unclaimed)) if unclaimed else []
        result.fired = fired
        with self._lock:
            for rule in fired:
                # Repeating rules re-arm when the cooldown ends; `once` rules are done.
                if rule.active and rule.next_allowed_at is not None:
                    self._cool(rule.pk, rule.next_allowed_at.timestamp(), index_key(rule), float(rule.threshold))
            for rule in states:
                # Fired elsewhere, cooling, expired or gone: follow what the row says.
                self._apply(rule, now)
        return result

    def evaluate(self, batch: dict[str, Any], *, max_sync_age: float = 0.0) -> Evaluation:
        """Sync the index (unless it was synced less than `max_sync_age` s ago), match, claim, notify."""
        self._rebuilt.wait()  # a takeover's rebuild first
        now = self.clock.now()
        mono = self.clock.monotonic()
        if mono - self._synced_at >= max_sync_age:
            self.sync(now)
            self._synced_at = mono
        taken = self.match(batch, now)
        batch_ts = _batch_ts(batch, now)
        try:
            return self.trigger_alert(taken, batch_ts=batch_ts, now=now)
        except Exception:
            # Nothing was claimed (the transaction rolled back): put the matched rules
            # back, so the next batch tries again instead of losing them until a reload.
            self._restore(taken)
            raise

    def _restore(self, taken: list[Taken]) -> None:
        ids = [rule_id for group in taken for rule_id in group.ids]
        rules = {r.pk: r for r in AlertRule.objects.filter(pk__in=ids)} if ids else {}
        with self._lock:
            for group in taken:
                for rule_id in group.ids:
                    rule = rules.get(rule_id)
                    if rule is not None:
                        self._apply(rule, self.clock.now())

    # --- introspection ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "armed": len(self.index),
            "cooling": len(self._cooling),
            "revision": self._revision,
            "epoch": self._epoch,
            "index_bytes": self.index.nbytes(),
        }


def _batch_ts(batch: dict[str, Any], now: datetime) -> int:
    value = batch.get("timestamp")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    return int(now.timestamp() * 1000)


def _symbol_price(update: Any) -> tuple[str | None, float | None]:
    """The symbol and price an update may be judged on, or (None, None).

    Never a stale or degraded price (issue #11): a stale update repeats an old price with
    no source behind it, a degraded one rests on too few or disagreeing sources. A rule
    that would match waits for the next fresh price, and crossings are judged from the
    last fresh price the engine saw.
    """
    if not isinstance(update, dict) or update.get("stale") or update.get("degraded"):
        return None, None
    symbol, price = update.get("symbol"), update.get("price")
    if not isinstance(symbol, str) or isinstance(price, bool) or not isinstance(price, (int, float, Decimal)):
        return None, None
    price = float(price)
    if not price > 0 or price == float("inf"):
        return None, None
    return symbol.upper(), price


def portfolio_value(holdings: Iterable[dict[str, Any]], prices: dict[str, float]) -> float | None:
    """Sum of amount x price; None when a held symbol has no price (no false alarms)."""
    total = 0.0
    for holding in holdings:
        amount = float(holding.get("amount") or 0)
        if amount == 0:
            continue
        price = prices.get(str(holding.get("symbol", "")).upper())
        if price is None:
            return None
        total += amount * price
    return total


def _trigger_price(group: Taken) -> float:
    # Percent rules keep the change in `value` and the price in `previous`.
    is_percent = str(group.key[0]).startswith("pct")
    return group.previous if is_percent and group.previous is not None else group.value


#: The process's engine (its index loads on the first evaluation), in the runtime object.
ENGINE: Slot[AlertEngine] = Slot("alerts.engine", AlertEngine)


def get_engine() -> AlertEngine:
    return ENGINE.get()


def on_feeds_elected(**_: Any) -> None:
    """`realtime_project.feeds.feeds_elected`: this process now evaluates prices. The
    previous tick is read before the feeds start; the index loads beside them."""
    get_engine().rebuild_in_background()


def on_prices_published(event: Any) -> None:
    """The `PricesPublished` subscriber (`alerts/subscriptions.py`), on the bus's thread."""
    get_engine().evaluate(event.batch(), max_sync_age=EVENT_SYNC_INTERVAL)


__all__ = [
    "AlertEngine",
    "Evaluation",
    "get_engine",
    "on_feeds_elected",
    "on_prices_published",
    "portfolio_value",
]
