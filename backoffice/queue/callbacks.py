"""Result callbacks: an outbox of deliveries, written with the state change, POSTed in the background.

    create (callback_url checked against BACKOFFICE_CALLBACK_ALLOWED_HOSTS)
    complete / dead letter ──record_callback (same transaction)──▶ callback_deliveries (pending)
    CallbackDeliverer (every sidecar) ──claim (lease)──▶ POST ──2xx──▶ delivered
                                                              └─other──▶ pending after a backoff
                                                                         … failed after max attempts

At least once: the outbox row commits or rolls back with the task's change, and a delivery is
done only after a 2xx. A deliverer claims a row for a lease (FOR UPDATE SKIP LOCKED on PostgreSQL,
the single writer on SQLite), so several sidecars never send one delivery at the same time; a
sidecar killed mid-send leaves its claim to run out and another (or its restart) sends again,
with the same X-Backoffice-Delivery id, so receivers de-duplicate on it. The body is fixed at the
first attempt: every retry sends, and signs, the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, Engine, func, insert, literal, or_, select, update

from backoffice.errors import ValidationFailed
from backoffice.queue.models import CallbackDelivery, Task, TaskEvent
from backoffice.queue.records import TaskRecord
from backoffice.settings import Settings

log = logging.getLogger(__name__)

EVENTS = ("task.completed", "task.failed")
THREAD_NAME = "callback-deliverer"
ACTOR = "callbacks"
# A claim outlives the longest send: httpx bounds connect, write, read and pool wait separately.
CLAIM_MARGIN_SECONDS = 5.0

# The outbox insert for PostgreSQL single statements (the hot path's CTEs): append as
# `, callbacks AS (<this>)` after a CTE named by `{source}` that RETURNs id and callback_url.
# Rows without a callback_url add nothing, so every completion can carry it.
RECORD_CALLBACK_SQL_POSTGRESQL = """\
INSERT INTO callback_deliveries
    (delivery_id, task_id, event, url, status, attempts, next_attempt_at, created_at)
SELECT gen_random_uuid(), {source}.id, {event}, {source}.callback_url, 'pending', 0, :now, :now
FROM {source}
WHERE {source}.callback_url IS NOT NULL"""


def record_callback_sql(source: str, event: str, now: str = ":now") -> str:
    """The PostgreSQL outbox insert over CTE `source` for `event` (bound as a SQL literal);
    `now` is the placeholder of the time (`%(now)s` in the hot path's psycopg statements)."""
    if event not in EVENTS or not source.isidentifier() or now not in (":now", "%(now)s"):
        raise ValueError(f"unknown callback event {event!r} or bad CTE name {source!r}")
    return RECORD_CALLBACK_SQL_POSTGRESQL.format(source=source, event=f"'{event}'").replace(":now", now)


def record_callback(conn: Connection, task_id: uuid.UUID, event: str, now: datetime | None = None) -> bool:
    """Queue a callback of `event` for a task that has a callback_url, in the caller's transaction.

    True when a delivery was recorded (False: the task has no callback_url or does not exist)."""
    if event not in EVENTS:
        raise ValueError(f"unknown callback event {event!r}; one of {EVENTS}")
    at = now or datetime.now(UTC)
    source = select(
        literal(uuid.uuid4(), CallbackDelivery.delivery_id.type),
        Task.id,
        literal(event, CallbackDelivery.event.type),
        Task.callback_url,
        literal("pending", CallbackDelivery.status.type),
        literal(0, CallbackDelivery.attempts.type),
        literal(at, CallbackDelivery.next_attempt_at.type),
        literal(at, CallbackDelivery.created_at.type),
    ).where(Task.id == task_id, Task.callback_url.is_not(None))
    columns = [
        "delivery_id",
        "task_id",
        "event",
        "url",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    # RETURNING, not rowcount: psycopg reports -1 for INSERT … SELECT.
    inserted = conn.execute(
        insert(CallbackDelivery).from_select(columns, source).returning(CallbackDelivery.id)
    )
    return inserted.first() is not None


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The host names callbacks may go to (lower case); empty means callbacks are off."""
    return frozenset(
        h.strip().lower().rstrip(".") for h in settings.callback_allowed_hosts.split(",") if h.strip()
    )


def host_allowed(url: str, settings: Settings) -> bool:
    """True when `url` is http(s) to a host on the allow-list."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and host in allowed_hosts(settings)


def check_callback_url(url: str, settings: Settings) -> None:
    """ValidationFailed `callback_not_allowed` unless callbacks are on and `url` goes to an allowed host."""
    if not allowed_hosts(settings) or settings.callback_secret is None:
        raise ValidationFailed(
            "Result callbacks are off on this server (BACKOFFICE_CALLBACK_ALLOWED_HOSTS and "
            "BACKOFFICE_CALLBACK_SECRET must be set); leave out callback_url.",
            code="callback_not_allowed",
        )
    if not host_allowed(url, settings):
        raise ValidationFailed(
            "callback_url must be an http(s) URL whose host is listed in BACKOFFICE_CALLBACK_ALLOWED_HOSTS; "
            "ask an operator to allow the host, or leave out callback_url.",
            code="callback_not_allowed",
        )


def signature(secret: str, body: bytes) -> str:
    """The X-Backoffice-Signature value: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Wait before the next attempt after `attempts` failed ones: base·2^(n-1), capped."""
    return float(
        min(
            settings.callback_backoff_base_seconds * 2 ** max(attempts - 1, 0),
            settings.callback_backoff_max_seconds,
        )
    )


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: an HTTP status, or an error before any status (timeout, refused)."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


class CallbackStore:
    """The outbox's queries: claim due deliveries, record attempts, count the undelivered."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @property
    def lease(self) -> timedelta:
        """How long a claim keeps other deliverers off a delivery."""
        return timedelta(seconds=4 * self.settings.callback_timeout_seconds + CLAIM_MARGIN_SECONDS)

    def claim(self, now: datetime) -> dict[str, Any] | None:
        """Claim the most overdue pending delivery whose claim (if any) ran out; None when none is due."""
        due = (
            select(CallbackDelivery.id)
            .where(
                CallbackDelivery.status == "pending",
                CallbackDelivery.next_attempt_at <= now,
                or_(CallbackDelivery.claimed_until.is_(None), CallbackDelivery.claimed_until <= now),
            )
            .order_by(CallbackDelivery.next_attempt_at)
            .limit(1)
            # Deliverers in other sidecars skip a row being claimed instead of waiting for it;
            # SQLite renders no FOR UPDATE (its single writer serialises the claims).
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    update(CallbackDelivery)
                    .where(CallbackDelivery.id.in_(due.scalar_subquery()))
                    .values(claimed_until=now + self.lease, claim_token=uuid.uuid4())
                    .returning(*CallbackDelivery.__table__.c)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def fix_body(self, claim: dict[str, Any], body: str) -> bool:
        """Store the body of a first attempt; False when the claim was lost meanwhile."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(CallbackDelivery)
                .where(
                    CallbackDelivery.id == claim["id"], CallbackDelivery.claim_token == claim["claim_token"]
                )
                .values(body=body)
            ).rowcount
        return bool(done)

    def finish(self, claim: dict[str, Any], outcome: Outcome, now: datetime, give_up: bool = False) -> None:
        """Record an attempt on the delivery and as an event of the task (fenced by the claim token)."""
        attempts = claim["attempts"] + 1
        details: dict[str, Any] = {
            "delivery_id": str(claim["delivery_id"]),
            "event": claim["event"],
            "attempt": attempts,
            "status": outcome.status,
        }
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status": outcome.status,
            "last_error": outcome.error,
            "claimed_until": None,
            "claim_token": None,
        }
        if outcome.ok:
            values.update(status="delivered", delivered_at=now)
            event = "callback_delivered"
        else:
            event = "callback_failed"
            details["error"] = outcome.error
            if give_up or attempts >= self.settings.callback_max_attempts:
                values["status"] = "failed"
                details["gave_up"] = True
            else:
                retry_at = now + timedelta(seconds=backoff_seconds(attempts, self.settings))
                values["next_attempt_at"] = retry_at
                details["retry_at"] = retry_at.isoformat()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(CallbackDelivery)
                .where(
                    CallbackDelivery.id == claim["id"], CallbackDelivery.claim_token == claim["claim_token"]
                )
                .values(**values)
            ).rowcount
            if done:
                conn.execute(
                    insert(TaskEvent).values(
                        task_id=claim["task_id"], event=event, actor=ACTOR, at=now, details=details
                    )
                )

    def undelivered(self) -> dict[str, int]:
        """Deliveries not delivered: {'pending': n, 'failed': m} (failed: attempts used up)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(CallbackDelivery.status, func.count())
                .where(CallbackDelivery.status.in_(("pending", "failed")))
                .group_by(CallbackDelivery.status)
            ).all()
        counts = {"pending": 0, "failed": 0}
        counts.update({status: n for status, n in rows})
        return counts


class CallbackDeliverer:
    """A daemon thread that sends due deliveries every `callback_poll_seconds` until stopped.

    `find_task` reads a task and `render` turns it into the JSON of GET /api/tasks/{id} (the API
    layer's schema, injected so storage does not depend on it)."""

    def __init__(
        self,
        store: CallbackStore,
        find_task: Callable[[uuid.UUID], TaskRecord | None],
        render: Callable[[TaskRecord], dict[str, Any]],
    ) -> None:
        self.store = store
        self.settings = store.settings
        self.find_task = find_task
        self.render = render
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        """Start delivering (first poll after one interval)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a send under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=4 * self.settings.callback_timeout_seconds + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.callback_poll_seconds):
            try:
                self.deliver_due()
            except Exception as exc:
                # The database may be away (or not migrated yet): keep the timer, try next time.
                log.warning("delivering callbacks failed: %s: %s", type(exc).__name__, exc)

    def deliver_due(self) -> int:
        """Send every delivery due now, one at a time; how many attempts were made."""
        sent = 0
        with httpx.Client(follow_redirects=False, timeout=self.settings.callback_timeout_seconds) as client:
            while not self._stop.is_set():
                claim = self.store.claim(datetime.now(UTC))
                if claim is None:
                    return sent
                self._attempt(client, claim)
                sent += 1
        return sent

    def _attempt(self, client: httpx.Client, claim: dict[str, Any]) -> None:
        secret = self.settings.callback_secret
        # The allow-list as it is now, not as it was at create: a host removed since gets nothing.
        if secret is None or not host_allowed(claim["url"], self.settings):
            refusal = Outcome(None, "the host is no longer allowed (BACKOFFICE_CALLBACK_ALLOWED_HOSTS)")
            self.store.finish(claim, refusal, datetime.now(UTC), give_up=True)
            return
        text = claim["body"]
        if text is None:
            task = self.find_task(claim["task_id"])
            if task is None:
                self.store.finish(
                    claim, Outcome(None, "the task was deleted"), datetime.now(UTC), give_up=True
                )
                return
            text = json.dumps({"event": claim["event"], "task": self.render(task)}, separators=(",", ":"))
            if not self.store.fix_body(claim, text):
                return  # the claim ran out meanwhile: its new holder sends
        body = text.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Backoffice-Event": claim["event"],
            "X-Backoffice-Delivery": str(claim["delivery_id"]),
            "X-Backoffice-Signature": signature(secret.get_secret_value(), body),
        }
        try:
            response = client.post(claim["url"], content=body, headers=headers)
            outcome = Outcome(response.status_code, None if response.is_success else response.reason_phrase)
        except httpx.HTTPError as exc:
            outcome = Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        self.store.finish(claim, outcome, datetime.now(UTC))
