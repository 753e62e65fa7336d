-- Complete one held task in ONE autocommit statement (psycopg placeholders): the fencing check
-- (the token is the task's current one), the consumer's task types and the `completed` event.
-- No row back means "not done": the caller then asks why (a read, off the hot path).
-- {columns} is the returned column list, built once from TaskRecord's fields (async_store.py).
WITH done AS (
    UPDATE tasks AS t
    SET status = 'completed',
        completed_date = %(now)s,
        completed_by = %(actor)s,
        result = CAST(%(result)s AS jsonb),
        lock_token = NULL,
        locked_until = NULL,
        version = t.version + 1,
        updated_at = %(now)s,
        updated_by = %(actor)s
    WHERE t.id = %(id)s
      AND t.lock_token = %(token)s
      -- a dead letter keeps a token only when its lock ran out on the last attempt (see
      -- complete_many_postgresql.sql): that holder may still complete it
      AND t.status IN ('locked', 'expired', 'failed')
      AND (CAST(%(task_types)s AS text[]) IS NULL OR t.task_type = ANY(CAST(%(task_types)s AS text[])))
    RETURNING {columns}
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'completed', %(actor)s, %(now)s, NULL FROM done
)
SELECT * FROM done
