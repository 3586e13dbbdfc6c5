"""The bot: poll the platform, record mentions, turn each into a reply, post it once.

One thread does the work; the loop can be stopped between steps (graceful shutdown finishes
the mention in hand). Failures are sorted by whose fault they are:
- the platform or the gateway is down (network, 5xx, 503): pause everything with backoff,
  charge no attempt, drop nothing;
- a 429: pause until the reset time the platform gave;
- the mention itself (bad image, gateway 4xx): a polite error reply;
- anything else: an attempt is spent; exponential backoff with jitter; dead letter after
  max_attempts, logged and counted.

With replicas, only the instance holding the lease (bot_service/lease.py) polls and posts;
it checks the lease again right before it records the intent to post and right before
it posts, and the others stand by.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bot_service import compose
from bot_service.gateway_client import GatewayClient, GatewayRejected, GatewayUnavailable
from bot_service.lease import LeaseKeeper
from bot_service.metrics import BotMetrics
from bot_service.platforms import base
from bot_service.settings import BotSettings
from bot_service.store import Item, StateStore

log = logging.getLogger("bot_service")
FETCH_PAGE = 200


class LeaseLost(Exception):
    """This instance no longer holds the lease: it must not post; another one takes over."""


class _Outage(Exception):
    def __init__(self, what: str, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{what}: {detail}")
        self.what, self.retry_after_s = what, retry_after_s


@dataclass
class Summary:
    recorded: int = 0
    replied: int = 0
    failed: int = 0
    pending: int = 0
    waiting_for: str | None = None  # why --once stopped with work left


def _seed_for(mention_id: str) -> int:
    """Same mention, same story: the seed derives from the mention id."""
    return int.from_bytes(hashlib.sha256(mention_id.encode()).digest()[:4], "big")


class Bot:
    def __init__(
        self,
        settings: BotSettings,
        platform: base.Platform,
        gateway: GatewayClient,
        store: StateStore,
        metrics: BotMetrics | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        lease: LeaseKeeper | None = None,
    ) -> None:
        self.settings, self.platform, self.gateway, self.store = settings, platform, gateway, store
        self.lease = lease  # None: the only instance, always active
        self.metrics = metrics or BotMetrics()
        self.clock, self.rng = clock, rng or random.Random()
        store.clock = clock  # one clock for scheduling and for what the store records
        self.filter = compose.WordFilter(settings.word_filter)
        self.stop = threading.Event()
        self.paused_until = 0.0  # platform rate limit
        self.outage_until = 0.0  # gateway or platform down
        self.outage_count = 0
        self.outage_reason: str | None = None
        self.last_poll_at: float | None = None

    # -- scheduling helpers ---------------------------------------------------------------

    def active(self) -> bool:
        """Whether this instance may poll and post now (it holds the lease, or has none)."""
        return self.lease is None or self.lease.holding()

    def _wait_for_lease(self) -> bool:
        """True once this instance may work. False if another instance keeps the lease
        longer than a holder that died could (its lease runs out within a TTL)."""
        if self.lease is None or self.lease.holding():
            return True
        return self.lease.wait_held(self.lease.ttl_s * 4 / 3 + 1, self.stop)

    def _check_lease(self, mention_id: str) -> None:
        if not self.active():
            raise LeaseLost(f"lease lost before posting the reply to {mention_id}")

    def _jittered(self, delay: float) -> float:
        return delay / 2 + self.rng.uniform(0, delay / 2)  # "equal jitter"

    def retry_delay(self, attempts: int) -> float:
        return self._jittered(
            min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2**attempts)
        )

    def _outage(self, exc: _Outage) -> None:
        self.outage_count += 1
        if exc.retry_after_s is not None:
            delay = exc.retry_after_s
        else:
            delay = self._jittered(
                min(
                    self.settings.outage_backoff_max_s,
                    self.settings.backoff_base_s * 2 ** (self.outage_count - 1),
                )
            )
        self.outage_until = self.clock() + delay
        self.outage_reason = str(exc)
        self.metrics.failures.labels(self.platform.name, f"{exc.what}_down").inc()
        log.warning("%s; pausing %.1fs, nothing dropped", exc, delay)

    def _rate_limited(self, exc: base.RateLimited) -> None:
        self.paused_until = max(self.paused_until, exc.reset_at)
        self.metrics.failures.labels(self.platform.name, "rate_limited").inc()
        self.metrics.paused_until.labels(self.platform.name).set(self.paused_until)
        log.warning("%s; waiting %.1fs", exc, max(0.0, exc.reset_at - self.clock()))

    def blocked_until(self) -> float:
        return max(self.paused_until, self.outage_until)

    def _refresh_gauges(self) -> None:
        for state, n in self.store.counts(self.platform.name).items():
            self.metrics.state.labels(self.platform.name, state).set(n)
        if self.paused_until <= self.clock():
            self.metrics.paused_until.labels(self.platform.name).set(0)

    # -- polling --------------------------------------------------------------------------

    def poll(self) -> int:
        """Fetch and record new mentions (before any work on them); returns how many are new."""
        name = self.platform.name
        try:
            cursor = self.store.cursor(name)
            # Fetch whole pages: the cap per poll bounds work, not reading (or mentions are lost).
            batch = self.platform.fetch_mentions(cursor, FETCH_PAGE)
        except base.RateLimited as exc:
            self._rate_limited(exc)
            return 0
        except base.PlatformUnavailable as exc:
            self._outage(_Outage("platform", str(exc)))
            return 0
        added = self.store.record(name, batch.mentions, batch.cursor)
        self.metrics.polls.labels(name).inc()
        self.metrics.recorded.labels(name).inc(added)
        self.last_poll_at = self.clock()
        self.metrics.last_poll.labels(name).set(self.last_poll_at)
        if added:
            log.info("recorded %d new mention(s)", added, extra={"platform": name})
        return added

    # -- one mention ----------------------------------------------------------------------

    def _text(self, item: Item, body: str) -> str:
        p = self.platform
        return compose.reply_text(item.mention.author_handle, body, p.text_limit, p.text_length)

    def _compose(self, item: Item) -> None:
        """new -> captioned: decide the reply (story card, help, error) and store it."""
        s, m, p = self.settings, item.mention, self.platform
        if not m.media:
            if not s.help_reply.strip():
                self.store.mark_skipped(item, "no image, help reply off")
                return
            self.store.mark_composed(
                item,
                kind="help",
                reply_text=self._text(item, s.help_reply),
            )
            return
        try:
            image, content_type = p.download(m.media[0])
            story = None
            for retry in range(s.story_retries_on_filter + 1):
                story = self.gateway.create_story(
                    image,
                    content_type,
                    seed=_seed_for(m.id) + retry,
                    model=s.story_model,
                    max_new_tokens=s.story_max_new_tokens,
                    temperature=s.story_temperature,
                    style=s.story_style,
                )
                blocked = self.filter.blocked(story.caption, story.story)
                if not blocked:
                    break
                log.info("story %s tripped the word filter (%s)", story.id, ", ".join(blocked))
                story = None
        except (base.MediaRejected, GatewayRejected) as exc:
            log.info("mention %s: image refused: %s", m.id, exc)
            self.store.mark_composed(
                item,
                kind="error",
                reply_text=self._text(item, s.error_reply),
                caption=None,
                story=str(exc),
            )
            return
        if story is None:
            self.store.mark_composed(
                item,
                kind="blocked",
                reply_text=self._text(item, s.blocked_reply),
            )
            return
        card, card_type = self.gateway.fetch_card(story)
        self.store.mark_composed(
            item,
            kind="story",
            reply_text=self._text(item, compose.story_body(story.caption, story.story)),
            alt_text=compose.alt_text(story.caption, story.story, p.alt_text_limit),
            caption=story.caption,
            story=story.story,
            story_json=json.dumps(asdict(story)),
            card=card,
            card_type=card_type,
        )

    def _post(self, item: Item) -> None:
        """captioned/replying -> replied, posting at most once."""
        name, m = self.platform.name, item.mention
        if item.state == "replying":
            # An earlier attempt recorded the intent and may have posted before dying.
            existing = self.platform.find_reply(m)
            if existing is not None:
                self.store.mark_replied(item, existing)
                self.metrics.recovered.labels(name).inc()
                log.info("mention %s was already answered by %s", m.id, existing)
                return
        else:
            self._check_lease(m.id)
            if not self.store.mark_intent(item):
                log.warning("mention %s is no longer ready to post here; not posting", m.id)
                return
        self._check_lease(m.id)
        reply = base.Reply(
            text=item.reply_text or "",
            image=item.card,
            image_type=item.card_type or "image/png",
            alt_text=item.alt_text or "",
            key=item.key,
            guard=lambda: self._check_lease(m.id),
        )
        reply_id = self.platform.post_reply(m, reply)
        self.store.mark_replied(item, reply_id)
        self.metrics.replies.labels(name, item.reply_kind or "story").inc()
        log.info("answered mention %s with %s (%s)", m.id, reply_id, item.reply_kind)

    def handle(self, item: Item) -> None:
        name, m = self.platform.name, item.mention
        started = self.clock()
        try:
            if item.state == "new":
                last = self.store.last_reply_at(name, m.author_id, exclude=m.id)
                if last is not None and self.settings.user_cooldown_s > 0:
                    ready_at = last + self.settings.user_cooldown_s
                    if ready_at > self.clock():
                        self.store.defer(item, ready_at, "per-user cooldown")
                        return
                self._compose(item)
                item = self.store.get(name, m.id) or item
            if item.state in ("captioned", "replying"):
                self._post(item)
        except (base.RateLimited, LeaseLost):
            raise
        except base.PlatformUnavailable as exc:
            raise _Outage("platform", str(exc)) from exc
        except GatewayUnavailable as exc:
            raise _Outage("gateway", str(exc), exc.retry_after_s) from exc
        except Exception as exc:  # the mention's own failure: spend an attempt
            reason = "platform_error" if isinstance(exc, base.PlatformError) else "error"
            self.metrics.failures.labels(name, reason).inc()
            attempts = item.attempts + 1
            if attempts >= self.settings.max_attempts:
                self.store.mark_attempt_failed(item, f"{exc.__class__.__name__}: {exc}", None)
                self.metrics.dead_letters.labels(name).inc()
                log.error(
                    "dead letter: mention %s failed %d times: %s",
                    m.id,
                    attempts,
                    exc,
                    extra={"platform": name, "mention_id": m.id, "dead_letter": True},
                    exc_info=not isinstance(exc, base.PlatformError),
                )
            else:
                delay = self.retry_delay(item.attempts)
                self.store.mark_attempt_failed(
                    item, f"{exc.__class__.__name__}: {exc}", self.clock() + delay
                )
                log.warning(
                    "mention %s failed (attempt %d), retry in %.1fs: %s", m.id, attempts, delay, exc
                )
        finally:
            self.metrics.duration.labels(name).observe(self.clock() - started)

    # -- loops ----------------------------------------------------------------------------

    def work(self) -> int:
        """Handle due mentions, at most max_per_poll; stops early when paused or stopping."""
        done = 0
        for item in self.store.due(self.platform.name, self.clock(), self.settings.max_per_poll):
            if self.stop.is_set() or self.blocked_until() > self.clock() or not self.active():
                break
            try:
                self.handle(item)
            except LeaseLost as exc:
                log.warning("%s: standing by", exc)
                break
            except base.RateLimited as exc:
                self._rate_limited(exc)
                break
            except _Outage as exc:
                self._outage(exc)
                break
            done += 1
        else:
            if done:
                self.outage_count = 0  # a clean round: the next outage starts from a short pause
        self._refresh_gauges()
        return done

    def cycle(self) -> None:
        if self.blocked_until() <= self.clock() and self.active():
            self.poll()
        if self.blocked_until() <= self.clock() and self.active():
            self.work()
        if self.outage_until <= self.clock():
            self.outage_reason = None

    def _sleep_until(self, when: float) -> None:
        self.stop.wait(max(0.0, when - self.clock()))

    def run_forever(self) -> None:
        log.info("bot started on %s", self.platform.name)
        while not self.stop.is_set():
            if not self.active():
                self.stop.wait(0.05)  # standing by: the lease keeper says when to take over
                continue
            self.cycle()
            wake = self.clock() + self.settings.poll_interval_s
            next_due = self.store.next_due_at(self.platform.name)
            if next_due is not None:
                wake = min(wake, max(next_due, self.clock() + 0.05))
            wake = max(wake, self.blocked_until())
            self._sleep_until(wake)
        log.info("bot stopped")

    def run_once(self) -> Summary:
        """Poll, handle everything due now (waiting out short rate limits), then return."""
        name = self.platform.name
        before = self.store.counts(name)
        summary = Summary()
        while not self.stop.is_set():
            if not self._wait_for_lease():
                assert self.lease is not None
                summary.waiting_for = f"the lease: {self.lease.current_holder} is the active bot"
                break
            self.cycle()
            now = self.clock()
            if self.outage_until > now:
                summary.waiting_for = self.outage_reason
                break
            if self.paused_until > now:
                if self.paused_until - now > self.settings.max_rate_limit_wait_s:
                    summary.waiting_for = "rate limit"
                    break
                self._sleep_until(self.paused_until)
                continue
            if not self.store.due(name, self.clock(), 1):
                break
        after = self.store.counts(name)
        summary.recorded = sum(after.values()) - sum(before.values())
        summary.replied = after["replied"] - before["replied"]
        summary.failed = after["failed"] - before["failed"]
        summary.pending = after["new"] + after["captioned"] + after["replying"]
        return summary
