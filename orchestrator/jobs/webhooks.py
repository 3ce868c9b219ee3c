"""Webhooks: a job's status POSTed to its extra.callback_url at every stage change and at its end.

Each POST carries the status JSON (VideoEditStatus.to_dict(), as in status.json) and is signed:
`X-Videoedit-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` under the job's
tenant's secret (WebhookSecrets), with the timestamp in `X-Videoedit-Timestamp` (receivers reject
old ones: replays), the job in `X-Videoedit-Job` and a unique `X-Videoedit-Delivery` (the same on
every retry of one delivery: receivers drop duplicates by it).

Delivery never delays a job, a cancel or a shutdown: `WebhookSender.job_status` only queues
(never blocks; a full queue drops a delivery, logged), and the sender's own threads send. Each
delivery is retried with exponential backoff and jitter (Retry-After honoured up to the cap) on
connection errors, timeouts, 429 and 5xx, for at most `retry_s` from when it was queued; other
answers end it. One job's deliveries go out in order, one at a time (a later stage never before
an earlier one); different jobs' in parallel. At shutdown, pending deliveries get a short grace,
then are dropped. Logs name the receiver's host only: the path and query may carry its secrets.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..config import Settings
from ..errors import FailedPrecondition, InvalidArgument
from ..request import CheckedRequest, VideoEditRequest, VideoEditStatus
from . import webhook_http
from .callback_urls import AllowList, CallbackRefused, CallbackTarget, IPAddress, parse_callback_url, resolve
from .metrics import JobMetrics

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Videoedit-Signature"
TIMESTAMP_HEADER = "X-Videoedit-Timestamp"
JOB_HEADER = "X-Videoedit-Job"
DELIVERY_HEADER = "X-Videoedit-Delivery"
FIELD = "extra[callback_url]"
# Outcomes counted in videoedit_orchestrator_webhook_deliveries_total{outcome}.
DELIVERED, RETRIED, GAVE_UP, REFUSED, DROPPED = "delivered", "retried", "gave_up", "refused", "dropped"


class WebhookSecrets(Protocol):
    """The key a tenant's callbacks are signed with (None: that tenant has none, and its jobs may
    not ask for callbacks)."""

    def secret_for(self, tenant: str) -> bytes | None: ...


@dataclass(frozen=True)
class TenantSecrets:
    """Each tenant's key, derived from VIDEOEDIT_WEBHOOK_SECRET: an HMAC of the tenant's name under
    it (`videoedit-admin webhook-secret --tenant NAME` prints it for the tenant's receiver), so no
    tenant can sign, or verify, another's callbacks, and nothing per tenant needs storing. The
    default tenant's key is the secret itself. Changing the secret changes every tenant's."""

    secret: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantSecrets:
        return cls(settings.webhook_secret.encode() if settings.webhook_secret else None)

    def secret_for(self, tenant: str) -> bytes | None:
        if self.secret is None or not tenant:
            return self.secret
        return (
            hmac.new(self.secret, b"videoedit-webhook-tenant-v1\n" + tenant.encode(), hashlib.sha256)
            .hexdigest()
            .encode()
        )


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Videoedit-Signature value: HMAC-SHA256 over `timestamp`, ".", and the body bytes."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Backoff:
    """Seconds before retry `n` (1, 2, ...): `base` doubling up to `cap`, times a random factor in
    [1 - jitter, 1] (receivers coming back are not hit by every sender at once); a Retry-After
    answer instead, up to `cap`."""

    base_s: float = 1.0
    cap_s: float = 60.0
    jitter: float = 0.5

    def delay(self, n: int, retry_after_s: float | None = None) -> float:
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.cap_s)
        return min(self.cap_s, self.base_s * 2 ** (n - 1)) * (1 - self.jitter * random.random())


@dataclass
class Delivery:
    """One status of one job, to be POSTed (and retried) until delivered or given up."""

    key: str  # the job's (request.key): one job's deliveries go out in order
    job_id: str  # X-Videoedit-Job
    tenant: str
    target: CallbackTarget
    body: bytes
    stage: str  # the status's state, for logs
    queued_at: float  # the sender's clock
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0


@dataclass(frozen=True)
class Attempt:
    """How one try went: `retry_at` (the sender's clock) when it is to be tried again."""

    outcome: str
    why: str
    retry_at: float | None = None


@dataclass(frozen=True)
class SenderLimits:
    workers: int = 4  # deliveries in flight at once (each to another job's receiver)
    max_pending: int = 10_000  # deliveries queued in all, beyond: one is dropped
    timeout_s: float = 10.0  # one request's connect, send and read
    retry_s: float = 300.0  # how long one delivery is retried, from when it was queued
    grace_s: float = 2.0  # at shutdown, for what is pending


# webhook_http.post's shape: (target, the address checked, body, headers, timeout) -> the answer.
Post = Callable[[CallbackTarget, IPAddress, bytes, dict[str, str], float], webhook_http.Answer]


class WebhookSender:
    """The process's webhook deliveries: per job, a queue of deliveries sent in order; jobs with
    one due wait in `_due` (a heap by time); `limits.workers` threads (webhook-N) take the next
    due job, try its first delivery once, and put the job back (now, or at its retry time) or
    drop it when its queue is empty. A job is in `_due` or in a worker's hands, never both: one
    delivery of a job at a time, in order."""

    def __init__(
        self,
        allow: AllowList,
        secrets: WebhookSecrets,
        metrics: JobMetrics,
        limits: SenderLimits = SenderLimits(),
        backoff: Backoff = Backoff(),
        post: Post = webhook_http.post,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.allow, self.secrets, self.metrics, self.limits = allow, secrets, metrics, limits
        self.backoff, self._post, self._clock = backoff, post, clock
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Delivery]] = {}  # job id -> its pending deliveries, the first being sent
        self._due: list[tuple[float, int, str]] = []  # (when, tie-breaker, job id)
        self._ticket = 0
        self._pending = 0
        self._closed = False
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_settings(cls, settings: Settings, secrets: WebhookSecrets, metrics: JobMetrics) -> WebhookSender:
        limits = SenderLimits(retry_s=settings.callback_retry_s)
        return cls(AllowList.parse(settings.callback_allow), secrets, metrics, limits)

    # --- what the jobs call ---

    def check(self, checked: CheckedRequest) -> None:
        """At StartEdit: a job asking for callbacks needs a secret to sign them with and a URL
        whose host leads only to allowed addresses now."""
        url = checked.options.callback_url
        if url is None:
            return
        if self.secrets.secret_for(checked.request.tenant) is None:
            raise FailedPrecondition(
                f"{FIELD}: the server has no webhook secret to sign callbacks with (VIDEOEDIT_WEBHOOK_SECRET)"
            )
        target = parse_callback_url(url)
        try:
            resolve(target, self.allow)
        except CallbackRefused as err:
            raise InvalidArgument(FIELD, str(err)) from None
        except OSError as err:
            raise InvalidArgument(FIELD, f"host {target.host!r} does not resolve ({err})") from None

    def job_status(self, request: VideoEditRequest, status: VideoEditStatus) -> None:
        """Queue `status` for the job's callback, if it has one; never blocks."""
        url = request.extra.get("callback_url")
        if not url:
            return
        try:
            target = parse_callback_url(url)
        except CallbackRefused as err:  # checked at StartEdit: only a request stored before a change
            log.warning("job %s: no callback: %s %s", status.key, FIELD, err)
            return
        body = json.dumps(status.to_dict(), separators=(",", ":")).encode()
        delivery = Delivery(status.key, status.job_id, request.tenant, target, body, status.status.value, self._clock())
        self.enqueue(delivery)

    def enqueue(self, delivery: Delivery) -> None:
        """Queue `delivery` behind its job's earlier ones. A full queue drops the oldest of that
        job's deliveries not yet being sent, else this one."""
        with self._cond:
            if self._closed:
                self._dropped(delivery, "the server is shutting down")
                return
            queue = self._queues.get(delivery.key)
            if self._pending >= self.limits.max_pending:
                if queue is None or len(queue) < 2:  # the first one is being sent: never dropped
                    self._dropped(delivery, f"{self._pending} deliveries are pending (the limit)")
                    return
                older = queue[1]
                del queue[1]
                self._pending -= 1
                self._dropped(older, f"{self._pending + 1} deliveries are pending (the limit); a later one replaces it")
            if queue is None:
                queue = self._queues[delivery.key] = deque()
                self._schedule(delivery.key, self._clock())
            queue.append(delivery)
            self._pending += 1
            self._start_workers()
            self._cond.notify()

    def close(self, grace_s: float | None = None) -> None:
        """Give what is pending `grace_s` (limits.grace_s) to go out, then drop the rest (logged).
        Never waits longer: a request in flight finishes on its own daemon thread."""
        grace = self.limits.grace_s if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        with self._cond:
            self._closed = True
            while self._pending and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            dropped = self._pending
            jobs = sorted(self._queues)
            self._queues.clear()
            self._due.clear()
            self._pending = 0
            self._cond.notify_all()
        if dropped:
            self.metrics.webhook_deliveries.labels(DROPPED).inc(dropped)
            log.warning(
                "shutdown: %d webhook deliveries dropped after a %.1fs grace (jobs %s)",
                dropped,
                grace,
                ", ".join(jobs),
            )

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    # --- the sender's threads ---

    def _start_workers(self) -> None:
        """Started with the first delivery (most orchestrators never have one). Under _cond."""
        while len(self._threads) < self.limits.workers:
            thread = threading.Thread(target=self._work, name=f"webhook-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _schedule(self, key: str, when: float) -> None:
        self._ticket += 1
        heapq.heappush(self._due, (when, self._ticket, key))

    def _next(self) -> Delivery | None:
        """The first delivery of the job due first, once it is due (None: closed). Under _cond."""
        while not (self._closed and not self._pending):
            if self._due:
                when, _, key = self._due[0]
                wait = when - self._clock()
                if wait <= 0:
                    heapq.heappop(self._due)
                    return self._queues[key][0]
                self._cond.wait(wait)
            else:
                self._cond.wait()
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                delivery = self._next()
            if delivery is None:
                return
            try:
                attempt = self._attempt(delivery)
            except Exception as err:  # a bug must not stop the job's later deliveries
                log.exception("job %s: webhook delivery failed: %s", delivery.key, err)
                attempt = Attempt(GAVE_UP, f"an error: {err}")
            self._done(delivery, attempt)

    def _done(self, delivery: Delivery, attempt: Attempt) -> None:
        self.metrics.webhook_deliveries.labels(attempt.outcome).inc()
        with self._cond:
            queue = self._queues.get(delivery.key)
            if queue is None or not queue or queue[0] is not delivery:  # dropped at shutdown meanwhile
                return
            if attempt.retry_at is not None:
                self._schedule(delivery.key, attempt.retry_at)
            else:
                queue.popleft()
                self._pending -= 1
                if queue:
                    self._schedule(delivery.key, self._clock())
                else:
                    del self._queues[delivery.key]
            self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> Attempt:
        """Try `delivery` once: the host checked again (the address it resolves to now, which
        the request then goes to), signed now, sent; how it went, logged."""
        delivery.attempts += 1
        job, host, stage = delivery.key, delivery.target.host, delivery.stage
        secret = self.secrets.secret_for(delivery.tenant)
        if secret is None:
            log.warning("job %s: callback (%s) to %s refused: no webhook secret", job, stage, host)
            return Attempt(REFUSED, "no webhook secret")
        try:
            address = resolve(delivery.target, self.allow)[0]
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "videoedit-webhooks/1",
                SIGNATURE_HEADER: signature(secret, timestamp, delivery.body),
                TIMESTAMP_HEADER: timestamp,
                JOB_HEADER: delivery.job_id,
                DELIVERY_HEADER: delivery.id,
            }
            answer = self._post(delivery.target, address, delivery.body, headers, self.limits.timeout_s)
        except CallbackRefused as err:
            log.warning("job %s: callback (%s) refused: %s", job, stage, err)
            return Attempt(REFUSED, str(err))
        except (OSError, http.client.HTTPException) as err:  # unreachable, reset, timed out, DNS
            return self._failed(delivery, f"{type(err).__name__}: {err}", None)
        if 200 <= answer.status < 300:
            log.info("job %s: callback (%s) delivered to %s (attempt %d)", job, stage, host, delivery.attempts)
            return Attempt(DELIVERED, str(answer.status))
        if answer.status == 429 or answer.status >= 500:
            return self._failed(delivery, f"HTTP {answer.status}", answer.retry_after_s)
        log.warning("job %s: callback (%s) to %s answered HTTP %d: not retried", job, stage, host, answer.status)
        return Attempt(GAVE_UP, f"HTTP {answer.status}")

    def _failed(self, delivery: Delivery, why: str, retry_after_s: float | None) -> Attempt:
        """A try that may succeed later: retried after the backoff, unless that is past the
        delivery's retry time."""
        delay = self.backoff.delay(delivery.attempts, retry_after_s)
        now = self._clock()
        job, stage, host = delivery.key, delivery.stage, delivery.target.host
        if now + delay - delivery.queued_at > self.limits.retry_s:
            log.warning(
                "job %s: callback (%s) to %s gave up after %d attempt(s) in %.1fs: %s",
                job,
                stage,
                host,
                delivery.attempts,
                now - delivery.queued_at,
                why,
            )
            return Attempt(GAVE_UP, why)
        log.info("job %s: callback (%s) to %s failed (%s); retrying in %.1fs", job, stage, host, why, delay)
        return Attempt(RETRIED, why, retry_at=now + delay)

    def _dropped(self, delivery: Delivery, why: str) -> None:
        self.metrics.webhook_deliveries.labels(DROPPED).inc()
        log.warning("job %s: callback (%s) to %s dropped: %s", delivery.key, delivery.stage, delivery.target.host, why)
