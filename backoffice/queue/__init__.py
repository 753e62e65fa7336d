"""The scheduled-task queue: tasks, their audit events and the function keys that guard them.

    models.py        tables: tasks, task_events, api_keys
    store.py         TaskStore: create, lock (claim), complete, fail, extend, edit, sweep
    claim.py         the claim statements that differ per dialect (sql/*.sql for PostgreSQL)
    queries.py       TaskQueryStore: one task, filtered lists with keyset paging, events, type stats
    records.py       the plain records the stores hand out (no ORM object leaves a store)
    keys.py          KeyStore: function keys, stored as SHA-256 (reserved names refused)
    sessions.py      SessionStore: dashboard sessions, ended by sign-out and key revocation
    sweeper.py       the sweep of run-out locks of every type (a periodic duty: backoffice/duties.py)
    signals.py       wake-ups of long-polling lockers (LISTEN/NOTIFY on PostgreSQL)
    event_counts.py  EventCountStore: audit-event totals for /metrics

Each domain keeps its SQL in its own stores, beside its tables: a change to the queue touches
this folder (and its routes), nothing else. What differs between SQLite and PostgreSQL for all
domains is in `backoffice.dialects`; only the claim itself has a statement per dialect here.
"""
