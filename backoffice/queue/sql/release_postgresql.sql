-- Give back tasks claimed for a long-poll whose client went away before the answer reached it:
-- pending again at once, the attempt not counted, a `lock_released` event, waiters woken.
-- Only while the claim's token is still the task's and it is locked (nobody else touched it).
WITH released AS (
    UPDATE tasks AS t
    SET status = 'pending',
        attempts = t.attempts - 1,
        -- a first lock given back leaves the task never locked (its queueing time goes on)
        first_locked_at = CASE WHEN t.attempts = 1 THEN NULL ELSE t.first_locked_at END,
        lock_token = NULL,
        lock_date = NULL,
        locked_until = NULL,
        locked_by = NULL,
        version = t.version + 1,
        updated_at = %(now)s,
        updated_by = %(actor)s
    FROM unnest(CAST(%(ids)s AS uuid[]), CAST(%(tokens)s AS uuid[])) AS i(id, token)
    WHERE t.id = i.id
      AND t.lock_token = i.token
      AND t.status = 'locked'
    RETURNING t.id, t.task_type
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'lock_released', %(actor)s, %(now)s, jsonb_build_object('reason', 'client_gone')
    FROM released
)
SELECT id, pg_notify('backoffice_tasks', task_type) FROM released
