"""The prices app's feed: venue streams → live aggregation → one batch publication.

`PricesFeed` (run by the feed runner, `realtime_project/feeds.py`) reads the source rows
and mappings, opens a `VenueStream` per streamed venue (Binance, Coinbase, Kraken, OKX),
runs the simulated market as a stream where it is allowed, polls REST where a stream is
missing or down (`fallback.py`), and publishes through `LivePrices`. While it runs, the
beat-scheduled REST tick stands aside (`streams_active()`), so one process aggregates.
Source rows are re-read every `CONFIG_REFRESH` seconds: a change (a source enabled, a
URL or mapping edited in the admin) rebuilds the whole pipeline, warm from the database.
"""

from __future__ import annotations

import asyncio
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections

from realtime_project.clock import SYSTEM_CLOCK, Clock
from realtime_project.events import bus

from .activity import streams_mark_active, streams_mark_inactive
from .conf import PricesSettings, prices_settings
from .fallback import PolledSource, RestPoller
from .live import LivePrices
from .payloads import MarketOverview
from .publishing import apublish_overview, apublish_prices
from .selectors import StreamPlan, global_figures, stream_plan, warm_prices
from .services.overview import market_overview_save, overview_payload
from .services.sources import source_record_poll, sources_record_streams
from .services.tick import Poll
from .sources.registry import get_adapter
from .sources.simulated import SimulatedSource
from .streams.client import StreamSettings, VenueStream
from .streams.registry import protocol_for
from .streams.simulated import SimulatedStream

logger = logging.getLogger("prices.feeds")

#: Seconds between housekeeping rounds (liveness sweep, health rows, the active key).
HOUSEKEEPING = 1.0
#: Source rows and mappings are re-read this often.
CONFIG_REFRESH = 10.0
#: Stream health is written to the source rows this often (the feed runner's own health,
#: in /readyz → apps.feeds, is fresher: FEEDS["HEALTH_INTERVAL"]).
HEALTH_ROWS_EVERY = 5.0
#: The market overview row is saved at most this often (it is published more often).
OVERVIEW_SAVE_EVERY = 5.0
#: Every symbol is re-aggregated this often (heartbeats, REST staleness); symbols whose
#: venues went silent are re-aggregated at once by the liveness sweep.
FULL_SWEEP_EVERY = 5.0
#: The liveness watch wakes just after a connection's deadline, and at least this often.
LIVENESS_SLACK = 0.005
LIVENESS_MAX_WAIT = 1.0


class _Replan(Exception):
    """The configuration changed: rebuild the pipeline (not a failure)."""


class PricesFeed:
    name = "prices"

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, rng: random.Random | None = None, **stream_kwargs: Any):
        self.clock = clock
        self.rng = rng or random.Random()
        self.stream_kwargs = stream_kwargs
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prices-db")
        self.live: LivePrices | None = None
        self.streams: dict[str, VenueStream] = {}
        self.simulated: SimulatedStream | None = None
        self.poller: RestPoller | None = None
        self._liveness_changed = asyncio.Event()

    async def _db(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self.db, call)

    # --- the Feed interface ---------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                conf = prices_settings()
                plan = await self._db(stream_plan, conf)
                if not plan.sources:
                    # Nothing to stream or poll (every source off): stand aside for the
                    # REST tick and look again later.
                    await self._db(streams_mark_inactive)
                    await self.clock.sleep(CONFIG_REFRESH)
                    continue
                try:
                    await self._run(plan, conf)
                except* _Replan:
                    logger.info("prices: sources or mappings changed; rebuilding the streams")
        finally:
            await self._db(streams_mark_inactive)

    def health(self) -> dict[str, Any]:
        live = self.live
        venues = {slug: stream.health() for slug, stream in self.streams.items()}
        if self.simulated is not None:
            venues[self.simulated.source.id] = self.simulated.health()
        out: dict[str, Any] = {
            "ok": bool(venues) and all(v["ok"] for v in venues.values()),
            "venues": venues,
            "rest": self.poller.health() if self.poller is not None else {},
        }
        if live is not None:
            out.update(
                publications=live.stats["publications"],
                updates=live.stats["updates"],
                last_publish_age=round(self.clock.time() - live.published_at, 3) if live.published_at else None,
                last_flush_ms=round(live.last_flush_seconds * 1000, 2),
                coalesce_window_ms=live.conf.coalesce_window * 1000,
                publish_lag_ms=live.lag.summary(),
            )
        return out

    # --- one configuration ----------------------------------------------------------------

    async def _run(self, plan: StreamPlan, conf: PricesSettings) -> None:
        live = self.live = LivePrices(
            conf=conf,
            symbol_ids=plan.symbol_ids,
            publish=apublish_prices,
            emit=lambda event: bus.emit(event, after_commit=False),
            clock=self.clock,
            db=self.db,
        )
        for price, at in await self._db(warm_prices, plan.symbol_ids):
            live.seed(price, at)
        settings = StreamSettings(
            connect_timeout=conf.stream_connect_timeout,
            ack_timeout=conf.stream_ack_timeout,
            backoff_base=conf.stream_backoff_base,
            backoff_cap=conf.stream_backoff_cap,
            rate_limit_wait=conf.stream_rate_limit_wait,
            rotate_margin=conf.stream_rotate_margin,
            live_grace=conf.stream_live_grace,
        )
        self.streams, self.simulated, polled = {}, None, []
        self._liveness_changed = asyncio.Event()
        trade_symbols = set(conf.overview_trade_symbols)
        for source in plan.sources:
            live.add_source(source.slug)
            if source.kind == "simulated":
                adapter = get_adapter(source.config)
                assert isinstance(adapter, SimulatedSource)
                self.simulated = SimulatedStream(
                    source=adapter,
                    symbols=source.ids,
                    on_quote=live.on_simulated,
                    on_trade=lambda venue, symbol, trade: live.trades.add(venue, symbol, trade),
                    trade_symbols=frozenset(trade_symbols),
                    clock=self.clock,
                )
                continue
            stream = None
            if source.stream_url:
                by_venue = {venue: symbol for venue, symbol in source.stream_ids.items()}
                protocol = protocol_for(source.kind, trade_ids=[v for v, s in by_venue.items() if s in trade_symbols])
                stream = VenueStream(
                    source=source.slug,
                    protocol=protocol,
                    url=source.stream_url,
                    ids=by_venue,
                    sink=live,
                    settings=settings,
                    clock=self.clock,
                    rng=self.rng,
                    on_liveness=self._liveness_changed.set,
                    **self.stream_kwargs,
                )
                self.streams[source.slug] = stream
            polled.append(
                PolledSource(
                    slug=source.slug,
                    adapter=get_adapter(source.config),
                    ids=source.ids,
                    interval=source.poll_interval,
                    streaming=stream.live if stream is not None else None,
                )
            )
        self.poller = RestPoller(live=live, sources=polled, conf=conf, record=self._record_poll, clock=self.clock)
        async with asyncio.TaskGroup() as group:
            group.create_task(live.run(), name="prices:publish")
            for slug, stream in self.streams.items():
                group.create_task(stream.run(), name=f"prices:stream:{slug}")
            if self.simulated is not None:
                group.create_task(self.simulated.run(), name="prices:simulated")
            group.create_task(self.poller.run(), name="prices:rest")
            group.create_task(self._housekeeping(plan, conf), name="prices:housekeeping")
            if self.streams:
                group.create_task(self._liveness(), name="prices:liveness")

    async def _housekeeping(self, plan: StreamPlan, conf: PricesSettings) -> None:
        live = self.live
        assert live is not None
        clock = self.clock
        last_health = last_config = last_save = last_overview = last_overview_save = last_full = -1e9
        overview: MarketOverview | None = None
        figures: tuple[dict[str, Any], str | None] = ({}, None)
        figures_at = -1e9
        while True:
            now = clock.monotonic()
            full = now - last_full >= FULL_SWEEP_EVERY
            if full:
                last_full = now
            live.sweep(self._live_symbols(now), full=full)
            await self._db(streams_mark_active)
            if now - last_save >= conf.persist_interval:
                last_save = now
                await live.save()
            if now - last_health >= HEALTH_ROWS_EVERY:
                last_health = now
                await self._write_health()
            if now - figures_at >= 30.0:
                figures_at = now
                figures = await self._db(global_figures)
            if now - last_overview >= conf.overview_stream_interval:
                last_overview = now
                payload = overview_payload(
                    figures=figures[0],
                    source=figures[1],
                    prices=live.latest.values(),
                    trades=live.trades.latest(),
                    conf=conf,
                    now=clock.time(),
                )
                if overview is None or _without_time(overview) != _without_time(payload):
                    overview = payload
                    await apublish_overview(payload)
                    if now - last_overview_save >= OVERVIEW_SAVE_EVERY:
                        last_overview_save = now
                        await self._db(market_overview_save, payload=payload, now=clock.time())
            if now - last_config >= CONFIG_REFRESH:
                if last_config > 0 and await self._db(stream_plan, prices_settings()) != plan:
                    raise _Replan
                last_config = now
            await clock.sleep(HOUSEKEEPING)

    async def _liveness(self) -> None:
        """Expire a venue's quotes the moment it stops being live, not at the next sweep.

        Wakes when a connection closes or finishes subscribing, and at the instant the
        first live connection would pass 2 cadences of silence; re-sweeps (cheaply, the
        changed symbols only) when the set of live connections changed. So all venues
        going quiet turns the aggregate stale within 2 of their cadences.
        """
        live = self.live
        assert live is not None
        clock, streams, changed = self.clock, self.streams, self._liveness_changed
        last: dict[str, tuple[int, ...]] | None = None
        while True:
            changed.clear()
            now = clock.monotonic()
            key = {slug: stream.live_key(now) for slug, stream in streams.items()}
            if key != last:
                if last is not None:
                    live.sweep(self._live_symbols(now), full=False)
                last = key
            deadlines = [d for stream in streams.values() if (d := stream.live_deadline(now)) is not None]
            wait = min(min(deadlines) - now + LIVENESS_SLACK, LIVENESS_MAX_WAIT) if deadlines else LIVENESS_MAX_WAIT
            waker = asyncio.ensure_future(changed.wait())
            sleeper = asyncio.ensure_future(clock.sleep(max(wait, LIVENESS_SLACK)))
            try:
                await asyncio.wait({waker, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()
                sleeper.cancel()

    def _live_symbols(self, now: float) -> dict[str, set[str]]:
        live: dict[str, set[str]] = {}
        for slug, stream in self.streams.items():
            live[slug] = {stream.ids[i] for i in stream.live_ids(now) if i in stream.ids}
        if self.simulated is not None:
            live[self.simulated.source.id] = set(self.simulated.symbols)
        return live

    async def _write_health(self) -> None:
        live = self.live
        assert live is not None
        streams = {slug: stream.health() for slug, stream in self.streams.items()}
        rejected, live.rejected = live.rejected, {}
        outliers = live.outliers()
        reconciliation = self.poller.health() if self.poller is not None else {}
        await self._db(
            sources_record_streams,
            streams=streams,
            problems=rejected,
            outliers=outliers,
            reconciliation={slug: h["reconciliation"] for slug, h in reconciliation.items() if h["reconciliation"]},
            rest_modes={slug: h["mode"] for slug, h in reconciliation.items()},
        )

    @staticmethod
    def _record_poll(source: PolledSource, poll: Poll, accepted: int) -> None:
        source_record_poll(
            slug=source.slug,
            now=datetime.now(UTC),
            error=poll.error,
            error_detail=poll.detail,
            accepted=accepted,
            problems=poll.result.problems if poll.result is not None else None,
        )


def _without_time(payload: MarketOverview) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "timestamp"}


def feeds() -> list[Any]:
    """The feed runner's entry point (`realtime_project.feeds.discover_feeds`)."""
    return [PricesFeed()]
