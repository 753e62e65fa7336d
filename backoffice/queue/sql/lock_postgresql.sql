-- The asyncio hot path's lock call in ONE autocommit statement (psycopg placeholders): sweep the
-- type's run-out locks, claim up to %(limit)s tasks, log every event. Same outcome as the sync
-- store's sweep transaction followed by its claim (claim_postgresql.sql), in one round trip.
-- A run-out lock records last_error_kind 'timeout'; a dead letter's `failed` event carries
-- error_kind timeout, dead, and its timing (held until the lock ran out), and records the
-- task's result callback. {columns}, {timing:…}, {callback:…}: filled in by claim.statement().
-- Status values are SQL literals (see claim_postgresql.sql: generic plans need them).
WITH run_out AS (
    -- served by ix_tasks_lock_expiry; a row another transaction holds is left to it
    SELECT id, priority, available_at, locked_by, attempts, max_attempts
    FROM tasks
    WHERE task_type = %(task_type)s
      AND status = 'locked'
      AND locked_until <= %(now)s
    FOR UPDATE SKIP LOCKED
),
ready AS (
    -- exactly the claim index's column order: an ordered index scan, no sort
    SELECT id, priority, available_at
    FROM tasks
    WHERE task_type = %(task_type)s
      AND status IN ('pending', 'expired')
      AND available_at <= %(now)s
    ORDER BY priority, available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
-- A run-out lock with attempts left is claimable once swept. PostgreSQL cannot update one row
-- twice in a statement, so such a row is swept and re-locked by the one UPDATE of `claimed`
-- (two versions on), and the rest of run_out by `swept`.
next AS (
    SELECT id, swept
    FROM (
        SELECT id, priority, available_at, false AS swept FROM ready
        UNION ALL
        SELECT id, priority, available_at, true FROM run_out
        WHERE attempts < max_attempts AND available_at <= %(now)s
    ) AS candidates
    ORDER BY priority, available_at, id
    LIMIT %(limit)s
),
claimed AS (
    UPDATE tasks AS t
    SET status = 'locked',
        lock_token = gen_random_uuid(),
        lock_date = %(now)s,
        locked_until = %(locked_until)s,
        locked_by = %(actor)s,
        attempts = t.attempts + 1,
        first_locked_at = COALESCE(t.first_locked_at, %(now)s),
        last_error_kind = CASE WHEN next.swept THEN 'timeout' ELSE t.last_error_kind END,
        version = t.version + CASE WHEN next.swept THEN 2 ELSE 1 END,
        updated_at = %(now)s,
        updated_by = %(actor)s
    FROM next
    WHERE t.id = next.id
    RETURNING {columns}
),
swept AS (
    -- the holder keeps its token: it may still complete until somebody re-locks the task
    UPDATE tasks AS t
    SET status = CASE WHEN t.attempts >= t.max_attempts THEN 'failed' ELSE 'expired' END,
        last_error = CASE WHEN t.attempts >= t.max_attempts
            THEN 'The lock ran out ' || t.attempts || ' times (max_attempts ' || t.max_attempts || ').'
            ELSE t.last_error END,
        last_error_kind = 'timeout',
        version = t.version + 1,
        updated_at = %(now)s
    FROM run_out
    WHERE t.id = run_out.id
      AND t.id NOT IN (SELECT id FROM next)
    RETURNING t.id, t.status, t.last_error, t.attempts, t.task_type, t.created_at, t.not_before,
              t.first_locked_at, t.lock_date, t.locked_until, t.callback_url
),
dead AS (
    SELECT * FROM swept WHERE status = 'failed'
),
callbacks AS (
    {callback:dead:task.failed}
),
logged AS (
    -- one INSERT, ordered, so a re-locked task's lock_expired comes before its locked event
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT task_id, event, actor, %(now)s, details
    FROM (
        SELECT id AS task_id, 'lock_expired' AS event, 'system' AS actor,
               jsonb_build_object('locked_by', locked_by, 'attempt', attempts) AS details, 1 AS step
        FROM run_out
        UNION ALL
        SELECT id, 'failed', 'system',
               jsonb_build_object('error', last_error, 'error_kind', 'timeout', 'dead', true,
                                  'attempt', attempts) || {timing:dead:locked_until}, 2
        FROM dead
        UNION ALL
        SELECT id, 'locked', %(actor)s,
               jsonb_build_object('attempt', attempts, 'locked_until', CAST(%(locked_until_text)s AS text)), 3
        FROM claimed
    ) AS events
    ORDER BY step, task_id
)
SELECT * FROM claimed
